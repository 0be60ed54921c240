"""Unit tests: camera_info YAML parsing, frame sources, reconnect backoff, frame conversion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from kpai_perception.backoff import Backoff
from kpai_perception.calibration import dump_calibration, load_calibration, parse_calibration
from kpai_perception.errors import CalibrationError, CameraSourceError, ImageConversionError
from kpai_perception.geometry import CameraModel
from kpai_perception.image_conv import frame_to_image, image_to_numpy, image_to_rgb8
from kpai_perception.sources import classify_source, open_source

GOOD = """\
image_width: 640
image_height: 480
camera_name: front
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 319.5, 0.0, 501.0, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.01, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [500.0, 0.0, 319.5, 0.0, 0.0, 501.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_parse_good_calibration_and_round_trip(tmp_path: Path) -> None:
    cal = parse_calibration(GOOD)
    assert (cal.width, cal.height, cal.camera_name) == (640, 480, 'front')
    assert cal.k[4] == 501.0 and cal.d[0] == -0.1 and len(cal.p) == 12
    info = cal.to_camera_info()
    model = CameraModel.from_msg(info)
    assert model.k[1, 1] == 501.0 and model.has_distortion
    path = tmp_path / 'cam.yaml'
    path.write_text(dump_calibration(cal))
    assert load_calibration(f'file://{path}') == cal
    assert load_calibration(str(path)) == cal


@pytest.mark.parametrize(('old', 'new', 'reason'), [
    ('image_width: 640', 'image_width: 0', 'image size'),
    ('image_width: 640\n', '', 'missing image_width'),
    ('data: [500.0, 0.0, 319.5, 0.0, 501.0', 'data: [.nan, 0.0, 319.5, 0.0, 501.0', 'NaN or inf'),
    ('data: [500.0, 0.0, 319.5, 0.0, 501.0', 'data: [.inf, 0.0, 319.5, 0.0, 501.0', 'NaN or inf'),
    ('data: [-0.1, 0.01, 0.0, 0.0, 0.0]', 'data: [-0.1, 0.01, 0.0]', 'says 1x5'),
    ('cols: 5\n  data: [-0.1, 0.01, 0.0, 0.0, 0.0]', 'cols: 3\n  data: [-0.1, 0.01, 0.0]',
     'needs 5'),
    ('distortion_model: plumb_bob', 'distortion_model: fancy', 'unsupported'),
    ('data: [500.0, 0.0, 319.5, 0.0, 501.0', 'data: [0.0, 0.0, 319.5, 0.0, 501.0', 'focal'),
    ('data: [500.0, 0.0, 319.5, 0.0, 501.0', 'data: [abc, 0.0, 319.5, 0.0, 501.0',
     'non-numeric'),
    ('rows: 3\n  cols: 4', 'rows: 4\n  cols: 3', 'must be 3x4'),
])
def test_invalid_calibrations(old: str, new: str, reason: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(CalibrationError, match=reason):
        parse_calibration(text, source='cam.yaml')


def test_calibration_not_yaml_or_missing(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match='not valid YAML'):
        parse_calibration('a: [1, 2')
    with pytest.raises(CalibrationError, match='mapping'):
        parse_calibration('- 1\n- 2\n')
    with pytest.raises(CalibrationError, match='cannot read'):
        load_calibration(str(tmp_path / 'missing.yaml'))
    with pytest.raises(CalibrationError, match='file paths'):
        load_calibration('package://cam/cal.yaml')


def test_classify_source(tmp_path: Path) -> None:
    (tmp_path / 'a.png').write_bytes(b'')
    video = tmp_path / 'v.avi'
    video.write_bytes(b'')
    assert classify_source('0').kind == 'device'
    assert classify_source('/dev/video2').kind == 'device'
    assert classify_source('rtsp://10.0.0.5/stream').kind == 'stream'
    assert classify_source('http://cam.local/mjpg').kind == 'stream'
    assert classify_source(str(tmp_path)).kind == 'images'
    assert classify_source(str(tmp_path / '*.png')).kind == 'images'
    assert classify_source(str(video)).kind == 'video'
    assert classify_source(f'file://{video}').kind == 'video'
    for bad in ('', str(tmp_path / 'nothing.avi'), 'ftp://x/y'):
        with pytest.raises(CameraSourceError):
            classify_source(bad)


def _write_video(path: Path, frames: int = 12) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48))
    for k in range(frames):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, k * 4:k * 4 + 8] = (0, 0, 255)  # a red bar moving right (BGR)
        writer.write(img)
    writer.release()


def test_video_file_source_and_loop(tmp_path: Path) -> None:
    path = tmp_path / 'clip.avi'
    _write_video(path)
    src = open_source(str(path))
    assert not src.live and src.nominal_fps == pytest.approx(25)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    looping = open_source(str(path), loop=True)
    assert sum(looping.read() is not None for _ in range(30)) == 30
    looping.close()


def test_image_folder_source_skips_unreadable(tmp_path: Path) -> None:
    for k in range(3):
        cv2.imwrite(str(tmp_path / f'{k:03d}.png'), np.full((8, 8, 3), k * 50, np.uint8))
    (tmp_path / '001b.png').write_bytes(b'not an image')
    src = open_source(str(tmp_path))
    values = [int(src.read()[0, 0, 0]) for _ in range(3)]  # type: ignore[index]
    assert values == [0, 50, 100] and src.read() is None
    assert src.unreadable == 1
    looped = open_source(str(tmp_path / '*.png'), loop=True)
    assert [int(looped.read()[0, 0, 0]) for _ in range(4)] == [0, 50, 100, 0]  # type: ignore[index]
    with pytest.raises(CameraSourceError, match='no images'):
        open_source(str(tmp_path / '*.jpg'))


def test_unopenable_device_raises() -> None:
    with pytest.raises(CameraSourceError, match='cannot open'):
        open_source('/dev/video_kpai_missing')


def test_backoff() -> None:
    b = Backoff(0.5, 4.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay() == 0.5
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)


def test_frame_to_image_encodings() -> None:
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 2] = 200  # red
    rgb_msg = frame_to_image(bgr, 'rgb8')
    assert rgb_msg.encoding == 'rgb8' and tuple(image_to_numpy(rgb_msg)[0, 0]) == (200, 0, 0)
    bgr_msg = frame_to_image(bgr, 'bgr8')
    assert tuple(image_to_rgb8(bgr_msg)[0, 0]) == (200, 0, 0)
    mono = image_to_numpy(frame_to_image(bgr, 'mono8'))
    assert mono.shape == (4, 6) and mono[0, 0] == round(0.299 * 200)
    grey = image_to_numpy(frame_to_image(np.full((2, 2), 7, np.uint8), 'rgb8'))
    assert grey.shape == (2, 2, 3) and (grey == 7).all()
    with pytest.raises(ImageConversionError):
        frame_to_image(np.zeros((2, 2, 3), np.float32), 'rgb8')
