"""Unit tests for kpai_perception.image_conv (pure image <-> numpy conversion)."""

from __future__ import annotations

import numpy as np
import pytest
from kpai_perception.errors import ImageConversionError
from kpai_perception.image_conv import (
    SUPPORTED_ENCODINGS,
    encoding_info,
    image_to_numpy,
    image_to_rgb8,
    numpy_to_image,
    rgb8_to_encoding,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def _msg(encoding: str, height: int, width: int, step: int, data: bytes,
         big: bool = False) -> Image:
    msg = Image()
    msg.encoding, msg.height, msg.width, msg.step = encoding, height, width, step
    msg.is_bigendian = int(big)
    msg.data = data
    return msg


def _random(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    rng = np.random.default_rng(7)
    if np.dtype(dtype).kind == 'f':
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize(('encoding', 'dtype', 'channels'), [
    ('rgb8', np.uint8, 3), ('bgr8', np.uint8, 3), ('rgba8', np.uint8, 4),
    ('bgra8', np.uint8, 4), ('mono8', np.uint8, 1), ('mono16', np.uint16, 1),
    ('16UC1', np.uint16, 1), ('32FC1', np.float32, 1), ('8UC1', np.uint8, 1),
    ('8UC3', np.uint8, 3), ('8UC4', np.uint8, 4), ('64FC2', np.float64, 2),
    ('16SC3', np.int16, 3), ('bayer_rggb8', np.uint8, 1), ('bayer_gbrg16', np.uint16, 1),
    ('yuv422', np.uint8, 2), ('rgb16', np.uint16, 3),
])
def test_round_trip(encoding: str, dtype: type, channels: int) -> None:
    shape = (5, 6) if channels == 1 else (5, 6, channels)
    arr = _random(shape, dtype)
    header = Header(frame_id='cam')
    msg = numpy_to_image(arr, encoding, header=header)
    assert msg.encoding == encoding and msg.header.frame_id == 'cam'
    assert (msg.height, msg.width) == (5, 6)
    assert msg.step == 6 * channels * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * msg.height
    back = image_to_numpy(msg)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, arr)


def test_row_padding_is_skipped() -> None:
    arr = _random((3, 4, 3), np.uint8)
    step = 4 * 3 + 5
    rows = [arr[r].tobytes() + b'\xee' * 5 for r in range(3)]
    back = image_to_numpy(_msg('rgb8', 3, 4, step, b''.join(rows)))
    np.testing.assert_array_equal(back, arr)


def test_row_padding_odd_step_16bit() -> None:
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    step = 4 * 2 + 1  # odd padding makes rows unaligned for uint16
    data = b''.join(arr[r].astype('<u2').tobytes() + b'\x00' for r in range(3))
    np.testing.assert_array_equal(image_to_numpy(_msg('16UC1', 3, 4, step, data)), arr)


def test_big_endian_is_swapped_to_native() -> None:
    arr = np.array([[1, 258], [65535, 4096]], dtype=np.uint16)
    msg = _msg('mono16', 2, 2, 4, arr.astype('>u2').tobytes(), big=True)
    back = image_to_numpy(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    depth = np.array([[1.5, -2.25]], dtype=np.float32)
    back = image_to_numpy(_msg('32FC1', 1, 2, 8, depth.astype('>f4').tobytes(), big=True))
    np.testing.assert_array_equal(back, depth)


@pytest.mark.parametrize(('kwargs', 'reason'), [
    ({'height': 0}, 'zero-size'),
    ({'width': 0}, 'zero-size'),
    ({'step': 5}, 'smaller than one row'),
    ({'data': b'\x00' * 17}, 'does not match'),
    ({'data': b'\x00' * 19}, 'does not match'),
    ({'encoding': 'rgb9'}, 'unknown image encoding'),
    ({'encoding': ''}, 'unknown image encoding'),
])
def test_inconsistent_messages_raise(kwargs: dict, reason: str) -> None:
    fields = {'encoding': 'rgb8', 'height': 3, 'width': 2, 'step': 6, 'data': b'\x00' * 18}
    fields.update(kwargs)
    with pytest.raises(ImageConversionError, match=reason):
        image_to_numpy(_msg(**fields))
    with pytest.raises(ImageConversionError, match=reason):
        image_to_rgb8(_msg(**fields))


def test_yuv_odd_width_rejected() -> None:
    with pytest.raises(ImageConversionError, match='even width'):
        image_to_numpy(_msg('uyvy', 1, 3, 6, b'\x00' * 6))


def test_rgb8_colour_orders() -> None:
    rgb = _random((4, 5, 3), np.uint8)
    for enc in ('rgb8', 'bgr8', 'rgba8', 'bgra8'):
        msg = numpy_to_image(rgb8_to_encoding(rgb, enc), enc)
        out = image_to_rgb8(msg)
        assert out.flags.c_contiguous and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rgb, err_msg=enc)
    bgr = rgb8_to_encoding(rgb, 'bgr8')
    np.testing.assert_array_equal(bgr[..., 0], rgb[..., 2])


def test_mono_expanded_and_16bit_scaled() -> None:
    mono = np.array([[0, 128, 255]], np.uint8)
    out = image_to_rgb8(numpy_to_image(mono, 'mono8'))
    assert out.shape == (1, 3, 3)
    np.testing.assert_array_equal(out[..., 1], mono)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    deep = np.array([[0, 0x80FF, 0xFFFF]], np.uint16)
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(deep, 'mono16'))[0, :, 0],
                                  [0, 0x80, 0xFF])


def test_float_depth_normalised_nonfinite_black() -> None:
    depth = np.array([[1.0, 3.0, np.nan, np.inf, 2.0]], np.float32)
    out = image_to_rgb8(numpy_to_image(depth, '32FC1'))[0, :, 0]
    np.testing.assert_array_equal(out, [0, 255, 0, 0, 128])
    all_nan = np.full((2, 2), np.nan, np.float32)
    assert not image_to_rgb8(numpy_to_image(all_nan, '32FC1')).any()


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_demosaic_recovers_flat_colour(pattern: str) -> None:
    colour = {'r': 200, 'g': 100, 'b': 40}
    mosaic = np.zeros((8, 8), np.uint8)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[pattern[2 * dy + dx]]
    raw = image_to_numpy(numpy_to_image(mosaic, f'bayer_{pattern}8'))
    np.testing.assert_array_equal(raw, mosaic)  # raw access stays a mono mosaic
    rgb = image_to_rgb8(numpy_to_image(mosaic, f'bayer_{pattern}8'))
    np.testing.assert_allclose(rgb[3:5, 3:5].reshape(-1, 3), [[200, 100, 40]] * 4, atol=2)


def test_yuv422_uyvy_and_yuy2_grey() -> None:
    # Y=128, U=V=128 (neutral chroma) is mid grey whichever byte order
    uyvy = np.full((2, 4, 2), 128, np.uint8)
    for enc in ('yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv'):
        out = image_to_rgb8(numpy_to_image(uyvy, enc))
        assert out.shape == (2, 4, 3)
        np.testing.assert_allclose(out, 128, atol=2)
    # a bright luma in the Y positions only: UYVY puts Y at odd bytes, YUY2 at even bytes
    packed = np.zeros((1, 2, 2), np.uint8)
    packed[..., 0], packed[..., 1] = 128, 235  # UYVY: U/V=128, Y=235
    assert image_to_rgb8(numpy_to_image(packed, 'uyvy')).min() > 230
    # read as YUY2 the same bytes are Y=128 with strong chroma: far from grey
    wrong = image_to_rgb8(numpy_to_image(packed, 'yuyv')).astype(int)
    assert (wrong.max(axis=2) - wrong.min(axis=2)).min() > 100


def test_numpy_to_image_rejects_mismatch() -> None:
    with pytest.raises(ImageConversionError, match='channel'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ImageConversionError, match='dtype'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'mono16')
    with pytest.raises(ImageConversionError, match='dtype'):
        numpy_to_image(np.zeros((2, 2), np.int32), '32FC1')
    with pytest.raises(ImageConversionError, match='zero-size'):
        numpy_to_image(np.zeros((0, 4, 3), np.uint8), 'rgb8')
    with pytest.raises(ImageConversionError, match='unknown'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'mono7')
    with pytest.raises(ImageConversionError, match='2-D or 3-D'):
        numpy_to_image(np.zeros(4, np.uint8), 'mono8')


def test_non_native_array_is_written_native() -> None:
    arr = np.array([[1, 2]], dtype='>u2')
    msg = numpy_to_image(arr, 'mono16')
    np.testing.assert_array_equal(image_to_numpy(msg), [[1, 2]])


def test_two_channel_refused_for_rgb() -> None:
    with pytest.raises(ImageConversionError, match='2-channel'):
        image_to_rgb8(numpy_to_image(np.zeros((2, 2, 2), np.float32), '32FC2'))


def test_encoding_table() -> None:
    assert {'rgb8', 'bgr8', 'mono16', '32FC1', 'bayer_grbg8'} <= SUPPORTED_ENCODINGS
    assert encoding_info('bgra16').bytes_per_pixel == 8
    with pytest.raises(ImageConversionError):
        encoding_info('jpeg')
