"""Convert sensor_msgs/Image <-> numpy without cv_bridge (pure; never imports rclpy)."""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpai_perception.errors import ImageConversionError

__all__ = [
    'SUPPORTED_ENCODINGS',
    'EncodingInfo',
    'encoding_info',
    'frame_to_image',
    'image_to_numpy',
    'image_to_rgb8',
    'numpy_to_image',
    'rgb8_to_encoding',
]


@dataclass(frozen=True)
class EncodingInfo:
    """Element type and channel count of one image encoding."""

    dtype: np.dtype[Any]
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        """Return the size of one pixel in bytes."""
        return int(self.dtype.itemsize) * self.channels


def _build_table() -> dict[str, EncodingInfo]:
    u1, u2 = np.dtype(np.uint8), np.dtype(np.uint16)
    table = {
        'rgb8': EncodingInfo(u1, 3), 'bgr8': EncodingInfo(u1, 3),
        'rgba8': EncodingInfo(u1, 4), 'bgra8': EncodingInfo(u1, 4),
        'mono8': EncodingInfo(u1, 1), 'mono16': EncodingInfo(u2, 1),
        'rgb16': EncodingInfo(u2, 3), 'bgr16': EncodingInfo(u2, 3),
        'rgba16': EncodingInfo(u2, 4), 'bgra16': EncodingInfo(u2, 4),
        # packed 4:2:2, two bytes per pixel; 'yuv422' is UYVY in ROS, 'yuv422_yuy2' is YUYV
        'yuv422': EncodingInfo(u1, 2), 'uyvy': EncodingInfo(u1, 2),
        'yuv422_yuy2': EncodingInfo(u1, 2), 'yuyv': EncodingInfo(u1, 2),
    }
    for pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
        table[f'bayer_{pattern}8'] = EncodingInfo(u1, 1)
        table[f'bayer_{pattern}16'] = EncodingInfo(u2, 1)
    kinds = {'8U': np.uint8, '8S': np.int8, '16U': np.uint16, '16S': np.int16,
             '32S': np.int32, '32F': np.float32, '64F': np.float64}
    for prefix, kind in kinds.items():
        for n in range(1, 5):
            table[f'{prefix}C{n}'] = EncodingInfo(np.dtype(kind), n)
    return table


_TABLE = _build_table()
SUPPORTED_ENCODINGS: frozenset[str] = frozenset(_TABLE)

_YUV = {'yuv422': 'UYVY', 'uyvy': 'UYVY', 'yuv422_yuy2': 'YUY2', 'yuyv': 'YUY2'}
# ROS names the 2x2 pattern from the top-left pixel; OpenCV names it from the second row's
# second pixel, hence the shifted constants.
_BAYER_CV = {'rggb': 'BayerBG2RGB', 'bggr': 'BayerRG2RGB', 'gbrg': 'BayerGR2RGB',
             'grbg': 'BayerGB2RGB'}


def encoding_info(encoding: str) -> EncodingInfo:
    """Return the element type and channel count of encoding; ImageConversionError if unknown."""
    info = _TABLE.get(encoding)
    if info is None:
        raise ImageConversionError(
            f'unknown image encoding {encoding!r} (supported: {", ".join(sorted(_TABLE))})')
    return info


def image_to_numpy(msg: Any) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image as HxW or HxWxC array in native byte order.

    The result may share memory with msg.data (no copy when no byte swap is needed). Bayer
    images come back as raw single-channel mosaics, packed YUV 4:2:2 as HxWx2 uint8.
    """
    encoding = str(msg.encoding)
    info = encoding_info(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'zero-size image ({width}x{height}, encoding {encoding})')
    if encoding in _YUV and width % 2:
        raise ImageConversionError(f'{encoding} needs an even width, got {width}')
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than one row ({width} px * {info.bytes_per_pixel} B = '
            f'{row_bytes} B) for {encoding}')
    try:
        raw = np.frombuffer(msg.data, dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise ImageConversionError(f'image data is not a byte buffer: {err}') from err
    if raw.size != step * height:
        raise ImageConversionError(
            f'data length {raw.size} B does not match step * height = {step} * {height} = '
            f'{step * height} B')
    rows = raw.reshape(height, step)[:, :row_bytes]
    dtype = info.dtype
    big = bool(msg.is_bigendian)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder('>' if big else '<')
    if step % dtype.itemsize or rows.ctypes.data % dtype.alignment:
        rows = rows.copy()  # unaligned rows: copy before viewing as wider elements
    pixels = rows.view(dtype)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    pixels = pixels.reshape(shape)
    if dtype.itemsize > 1 and not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder('='))
    return pixels


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale any numeric array to uint8: 16-bit by >> 8, others min-max over finite values."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return (values >> 8).astype(np.uint8)
    data = values.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = float(data[finite].min()), float(data[finite].max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.where(finite, (data - lo) * scale, 0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def image_to_rgb8(msg: Any) -> np.ndarray:
    """Return a C-contiguous HxWx3 uint8 RGB array for any supported encoding.

    Mono and single-channel images are expanded to grey; 16-bit data keeps its top 8 bits;
    float and signed data are scaled min-max over finite values (non-finite become 0); Bayer
    mosaics are demosaiced; 8UC3/8UC4 are taken as RGB/RGBA; 2-channel data is refused.
    """
    encoding = str(msg.encoding)
    pixels = image_to_numpy(msg)
    if encoding in _YUV:
        import cv2

        code = getattr(cv2, f'COLOR_YUV2RGB_{_YUV[encoding]}')
        return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(pixels), code))
    if encoding.startswith('bayer_'):
        import cv2

        pattern = encoding[len('bayer_'):].rstrip('0123456789')
        mosaic = np.ascontiguousarray(_to_uint8(pixels))
        code = getattr(cv2, f'COLOR_{_BAYER_CV[pattern]}')
        return np.ascontiguousarray(cv2.cvtColor(mosaic, code))
    channels = encoding_info(encoding).channels
    if channels == 2:
        raise ImageConversionError(f'cannot show 2-channel encoding {encoding} as RGB')
    pixels = _to_uint8(pixels)
    if channels == 1:
        return np.ascontiguousarray(np.repeat(pixels[:, :, None], 3, axis=2))
    if encoding.startswith('bgr'):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def rgb8_to_encoding(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an HxWx3 uint8 RGB array to rgb8, bgr8, rgba8, bgra8 or mono8 layout."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(f'expected HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}')
    if encoding == 'rgb8':
        return rgb
    if encoding == 'bgr8':
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if encoding in ('rgba8', 'bgra8'):
        out = np.full(rgb.shape[:2] + (4,), 255, np.uint8)
        out[:, :, :3] = rgb if encoding == 'rgba8' else rgb[:, :, ::-1]
        return out
    if encoding in ('mono8', '8UC1'):
        # ITU-R BT.601 luma, as OpenCV's RGB2GRAY
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    raise ImageConversionError(f'cannot convert RGB to {encoding!r}')


def numpy_to_image(arr: np.ndarray, encoding: str, *, header: Any = None) -> Any:
    """Build a sensor_msgs/Image from an HxW or HxWxC array whose dtype matches encoding."""
    from sensor_msgs.msg import Image

    info = encoding_info(encoding)
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise ImageConversionError(f'expected a 2-D or 3-D array, got shape {arr.shape}')
    channels = 1 if arr.ndim == 2 else int(arr.shape[2])
    if channels != info.channels:
        raise ImageConversionError(
            f'{encoding} needs {info.channels} channel(s), array has {channels} '
            f'(shape {arr.shape})')
    if arr.dtype.kind != info.dtype.kind or arr.dtype.itemsize != info.dtype.itemsize:
        raise ImageConversionError(f'{encoding} needs dtype {info.dtype}, array has {arr.dtype}')
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise ImageConversionError(f'zero-size array {arr.shape}')
    if encoding in _YUV and width % 2:
        raise ImageConversionError(f'{encoding} needs an even width, got {width}')
    native = np.ascontiguousarray(arr, dtype=info.dtype.newbyteorder('='))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = width * info.bytes_per_pixel
    buf = array.array('B')
    buf.frombytes(native.tobytes())
    msg.data = buf
    return msg


def frame_to_image(frame: np.ndarray, encoding: str, *, header: Any = None) -> Any:
    """Build an Image in rgb8, bgr8 or mono8 from an OpenCV frame (BGR HxWx3 or grey HxW)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ImageConversionError(f'expected a uint8 frame, got {frame.dtype}')
    if frame.ndim == 2:
        if encoding == 'mono8':
            return numpy_to_image(frame, 'mono8', header=header)
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]  # BGRA -> BGR
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ImageConversionError(f'unexpected frame shape {frame.shape}')
    if encoding == 'bgr8':
        return numpy_to_image(frame, 'bgr8', header=header)
    return numpy_to_image(rgb8_to_encoding(np.ascontiguousarray(frame[:, :, ::-1]), encoding),
                          encoding, header=header)
