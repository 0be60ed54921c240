"""Frame sources for the camera driver (OpenCV): devices, video files, streams, image folders."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kpai_perception.errors import CameraSourceError

__all__ = ['FrameSource', 'ImageSequenceSource', 'SourceSpec', 'VideoCaptureSource',
           'classify_source', 'open_source']

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm')


class FrameSource(Protocol):
    """Something that yields BGR frames."""

    live: bool            # a device or network stream (reconnect on failure) vs a file
    nominal_fps: float    # the source's own rate, 0 when unknown

    def read(self) -> np.ndarray | None:
        """Return the next BGR (or grey) frame; None at the end of a file or on failure."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


@dataclass(frozen=True)
class SourceSpec:
    """A classified source string."""

    kind: str   # 'device', 'stream', 'video', 'images'
    target: str


def classify_source(source: str) -> SourceSpec:
    """Tell what kind of source a string names (index, /dev path, URL, file, folder, glob)."""
    s = source.strip()
    if not s:
        raise CameraSourceError('source is empty')
    if s.isdigit():
        return SourceSpec('device', s)
    if s.startswith('/dev/'):
        return SourceSpec('device', s)
    if '://' in s:
        scheme = s.split('://', 1)[0].lower()
        if scheme in ('rtsp', 'rtsps', 'http', 'https', 'udp', 'tcp', 'rtmp'):
            return SourceSpec('stream', s)
        if scheme == 'file':
            return classify_source(s[len('file://'):])
        raise CameraSourceError(f'unsupported URL scheme {scheme!r} in {s!r}')
    if any(c in s for c in '*?['):
        return SourceSpec('images', s)
    p = Path(s).expanduser()
    if p.is_dir():
        return SourceSpec('images', str(p))
    if p.is_file():
        kind = 'images' if p.suffix.lower() in IMAGE_EXTENSIONS else 'video'
        return SourceSpec(kind, str(p))
    raise CameraSourceError(f'source {s!r} is not a device, URL, file, folder or glob')


class VideoCaptureSource:
    """cv2.VideoCapture on a device, a video file (optionally looping) or a network stream."""

    def __init__(self, spec: SourceSpec, *, loop: bool = False, width: int = 0,
                 height: int = 0) -> None:
        import cv2

        self._cv2 = cv2
        self.spec = spec
        self.loop = loop
        self.live = spec.kind in ('device', 'stream')
        if spec.kind == 'device':
            target: int | str = int(spec.target) if spec.target.isdigit() else spec.target
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(spec.target)
        if not cap.isOpened():
            cap.release()
            raise CameraSourceError(f'cannot open {spec.kind} {spec.target!r}')
        if width > 0 and height > 0 and spec.kind == 'device':
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.nominal_fps = fps if 0 < fps < 1000 else 0.0

    def read(self) -> np.ndarray | None:
        """Return the next frame; a looping file starts over at its end."""
        ok, frame = self._cap.read()
        if ok and frame is not None and frame.size:
            return np.asarray(frame)
        if self.loop and self.spec.kind == 'video':
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            if ok and frame is not None and frame.size:
                return np.asarray(frame)
        return None

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


class ImageSequenceSource:
    """Images of a folder or a glob pattern, in name order, optionally looping."""

    live = False
    nominal_fps = 0.0

    def __init__(self, spec: SourceSpec, *, loop: bool = False) -> None:
        if os.path.isdir(spec.target):
            names = [str(p) for p in sorted(Path(spec.target).iterdir())
                     if p.suffix.lower() in IMAGE_EXTENSIONS]
        elif os.path.isfile(spec.target):
            names = [spec.target]
        else:
            names = sorted(f for f in glob.glob(os.path.expanduser(spec.target))
                           if f.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise CameraSourceError(f'no images found in {spec.target!r}')
        self.files = names
        self.loop = loop
        self.index = 0
        self.unreadable = 0

    def read(self) -> np.ndarray | None:
        """Return the next readable image; unreadable files are skipped and counted."""
        import cv2

        for _ in range(len(self.files)):
            if self.index >= len(self.files):
                if not self.loop:
                    return None
                self.index = 0
            path = self.files[self.index]
            self.index += 1
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is not None and img.size:
                return np.asarray(img)
            self.unreadable += 1
        return None

    def close(self) -> None:
        """Nothing to release."""


def open_source(source: str, *, loop: bool = False, width: int = 0, height: int = 0
                ) -> FrameSource:
    """Open the source a string names; CameraSourceError with the reason when impossible."""
    spec = classify_source(source)
    if spec.kind == 'images':
        return ImageSequenceSource(spec, loop=loop)
    return VideoCaptureSource(spec, loop=loop, width=width, height=height)
