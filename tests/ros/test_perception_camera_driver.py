"""ROS tests: the camera driver publishes a video file with its calibration; bad sources."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from kpai_perception.calibration import Calibration, dump_calibration
from kpai_perception.image_conv import image_to_rgb8
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

CALIBRATION = Calibration(
    640, 480, 'test', (500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0), (0.0,) * 5,
    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    (500.0, 0.0, 319.5, 0.0, 0.0, 500.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0), 'plumb_bob')


def _video(path: Path, frames: int = 20) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, (640, 480))
    for k in range(frames):
        img = np.full((480, 640, 3), 40, np.uint8)
        img[100:200, 10 * k:10 * k + 50] = (0, 0, 255)  # red in BGR
        writer.write(img)
    writer.release()


def test_video_file_with_calibration(graph, tmp_path: Path) -> None:
    video, cal = tmp_path / 'clip.avi', tmp_path / 'cam.yaml'
    _video(video)
    cal.write_text(dump_calibration(CALIBRATION))
    graph.start_node('kpai_perception', 'camera_driver', '-p', f'source:={video}',
                     '-p', 'loop:=true', '-p', 'fps:=20.0', '-p', f'camera_info_url:={cal}',
                     '-p', 'frame_id:=robot1/camera_optical', '-p', 'reliable:=true')
    images: list[Image] = []
    infos: list[CameraInfo] = []
    graph.node.create_subscription(Image, 'camera/image_raw', images.append, QoSProfile(depth=50))
    graph.node.create_subscription(CameraInfo, 'camera/camera_info', infos.append,
                                   QoSProfile(depth=50))
    graph.spin_until(lambda: len(images) >= 25 and infos, timeout=20, what='25 frames')
    img = images[-1]
    assert (img.width, img.height, img.encoding) == (640, 480, 'rgb8')
    assert img.header.frame_id == 'robot1/camera_optical'
    row = image_to_rgb8(images[0])[150].astype(int)  # the bar moves; find it on one row
    assert ((row[:, 0] > 200) & (row[:, 2] < 60)).sum() >= 40  # red stays red (BGR -> RGB)
    assert not ((row[:, 2] > 200) & (row[:, 0] < 60)).any()
    info = infos[-1]
    assert list(info.k)[:3] == [500.0, 0.0, 319.5] and info.distortion_model == 'plumb_bob'
    stamps_img = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in images}
    assert any((m.header.stamp.sec, m.header.stamp.nanosec) in stamps_img for m in infos)
    # looped past the 20 frames of the file, at the requested 20 Hz (not the file's 30)
    t = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    assert float(np.median(np.diff(t))) == pytest.approx(0.05, abs=0.01)


def test_missing_file_is_a_config_error(graph, tmp_path: Path) -> None:
    proc = graph.start_node('kpai_perception', 'camera_driver', '-p',
                            f'source:={tmp_path / "missing.mp4"}')
    assert proc.proc.wait(timeout=20) == 2
    assert 'missing.mp4' in proc.output()


def test_unavailable_device_retries_with_backoff(graph) -> None:
    proc = graph.start_node('kpai_perception', 'camera_driver', '-p',
                            'source:=/dev/video_kpai_missing', '-p',
                            'reconnect_initial_delay:=0.1', '-p', 'reconnect_max_delay:=0.4')
    graph.spin_until(lambda: proc.output().count('retrying in') >= 3, timeout=20,
                     what='retries')
    out = proc.output()
    assert 'retrying in 0.1 s' in out and 'retrying in 0.2 s' in out
    assert proc.alive()
