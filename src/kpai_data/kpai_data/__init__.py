"""Data feedback loop: MCAP recording/playback, Foxglove view, datasets, detector training."""
