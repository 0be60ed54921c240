"""Data feedback loop: MCAP recording and playback, Foxglove live view, dataset export, detector training."""
