"""Camera driver, image conversion, tracking, ground localisation, safety monitor, fiducials."""
