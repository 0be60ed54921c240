"""AprilTag tag36h11 bitmaps built from the code table of the apriltag C library."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import SimError

__all__ = ['tag36h11_bitmap', 'tag36h11_count']


@lru_cache(maxsize=1)
def _family() -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int, int]:
    """Read codes and bit layout of tag36h11 from the library bundled with pupil-apriltags."""
    try:
        from pupil_apriltags import Detector
    except ImportError as err:  # pragma: no cover - dependency of the stack
        raise SimError('pupil-apriltags is required to generate AprilTag textures') from err
    detector = Detector(families='tag36h11')
    fam = detector.tag_families['tag36h11'].contents
    nbits = int(fam.nbits)
    codes = tuple(int(fam.codes[i]) for i in range(int(fam.ncodes)))
    bit_x = tuple(int(fam.bit_x[i]) for i in range(nbits))
    bit_y = tuple(int(fam.bit_y[i]) for i in range(nbits))
    width_at_border, total_width = int(fam.width_at_border), int(fam.total_width)
    # pupil-apriltags' __del__ frees the families before the detector that still walks them
    # (a use after free): detach them first
    detector.libc.apriltag_detector_clear_families.restype = None
    detector.libc.apriltag_detector_clear_families(detector.tag_detector_ptr)
    return codes, bit_x, bit_y, nbits, width_at_border, total_width


def tag36h11_count() -> int:
    """Return how many distinct tag36h11 ids exist."""
    return len(_family()[0])


def tag36h11_bitmap(tag_id: int) -> np.ndarray:
    """Return the tag as a (10, 10) uint8 image: 0 black, 255 white, with its white quiet ring."""
    codes, bit_x, bit_y, nbits, width_at_border, total_width = _family()
    if not 0 <= tag_id < len(codes):
        raise SimError(f'tag36h11 id {tag_id} out of range 0..{len(codes) - 1}')
    img = np.full((total_width, total_width), 255, np.uint8)
    start = (total_width - width_at_border) // 2
    img[start:start + width_at_border, start:start + width_at_border] = 0
    code = codes[tag_id]
    for i in range(nbits):
        if code >> (nbits - 1 - i) & 1:
            img[start + bit_y[i], start + bit_x[i]] = 255
    return img
