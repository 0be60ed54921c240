"""Camera driver, image conversion, tracking, ground-plane localisation, safety monitor and fiducials."""
