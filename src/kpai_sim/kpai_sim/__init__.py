"""Embedded MuJoCo factory simulation: robots, sensors, people, clock and ground truth."""
