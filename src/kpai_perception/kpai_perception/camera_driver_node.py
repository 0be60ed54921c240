"""Lifecycle node `camera_driver`: OpenCV source -> camera/image_raw + camera/camera_info."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from kpai_perception.backoff import Backoff
from kpai_perception.calibration import Calibration, load_calibration
from kpai_perception.capture import CaptureLoop
from kpai_perception.errors import CameraSourceError, PerceptionError
from kpai_perception.image_conv import frame_to_image
from kpai_perception.node_util import Diagnostics, GrowthWatch, declare, run_node
from kpai_perception.sources import classify_source, open_source

__all__ = ['CameraDriverNode', 'main']


@dataclass(frozen=True)
class DriverParams:
    """Validated camera driver parameters."""

    source: str
    loop: bool
    fps: float
    encoding: str
    frame_id: str
    camera_info_url: str
    width: int
    height: int
    reconnect_initial: float
    reconnect_max: float
    reliable: bool

    def __post_init__(self) -> None:
        if self.encoding not in ('rgb8', 'bgr8', 'mono8'):
            raise CameraSourceError(f'encoding must be rgb8, bgr8 or mono8, got {self.encoding}')
        if not 0 <= self.fps <= 1000:
            raise CameraSourceError(f'fps must be in [0, 1000] (0: source rate), got {self.fps}')
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            raise CameraSourceError('need 0 < reconnect_initial_delay <= reconnect_max_delay')
        if self.width < 0 or self.height < 0:
            raise CameraSourceError('width and height must be >= 0')


class CameraDriverNode(LifecycleNode):
    """Capture frames in a thread; rate-limit; reconnect live sources with backoff."""

    def __init__(self) -> None:
        super().__init__('camera_driver')
        self.params = DriverParams(
            source=declare(self, 'source', '0', 'V4L2 index or /dev path, video file, '
                           'rtsp/http URL, image folder or glob'),
            loop=declare(self, 'loop', False, 'restart files and image folders at their end'),
            fps=declare(self, 'fps', 0.0, 'publish rate limit in Hz; 0: the source rate'),
            encoding=declare(self, 'encoding', 'rgb8', 'rgb8, bgr8 or mono8'),
            frame_id=declare(self, 'frame_id', 'camera_optical', 'optical frame of the images'),
            camera_info_url=declare(self, 'camera_info_url', '',
                                    'camera_info YAML path or file:// URL; empty: uncalibrated'),
            width=declare(self, 'width', 0, 'requested device width; 0: default'),
            height=declare(self, 'height', 0, 'requested device height; 0: default'),
            reconnect_initial=declare(self, 'reconnect_initial_delay', 0.5,
                                      'first reconnect delay (s), doubled on each failure'),
            reconnect_max=declare(self, 'reconnect_max_delay', 10.0, 'longest delay (s)'),
            reliable=declare(self, 'reliable', False,
                             'reliable QoS instead of best-effort sensor QoS'))
        autostart = declare(self, 'autostart', True, 'configure and activate at start')
        self.calibration: Calibration | None = None
        self.image_pub: Any = None
        self.info_pub: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames_published = 0
        self._loop: CaptureLoop | None = None
        self.config_error = ''
        self._watch = GrowthWatch()
        self.diagnostics = Diagnostics(self, self._diagnostics)
        if autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise CameraSourceError(self.config_error or 'configure failed')
            self.trigger_activate()

    def _diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        loop = self._loop
        values: dict[str, Any] = {
            'source': self.params.source, 'frames': self.frames_published,
            'reconnects': loop.reconnects if loop else 0,
            'open_failures': loop.open_failures if loop else 0}
        grown = self._watch.grown(values, ('reconnects', 'open_failures'))
        if self.config_error:
            return 2, self.config_error, values
        if grown:
            return 1, f'source {self.params.source!r} unavailable: reconnecting', values
        if self._thread is None:
            return 0, 'inactive', values
        return 0, f'{self.frames_published} frames published', values

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the source string and load the calibration; create publishers."""
        p = self.params
        try:
            classify_source(p.source)
            self.calibration = load_calibration(p.camera_info_url) if p.camera_info_url else None
        except PerceptionError as err:
            self.config_error = str(err)
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        if self.calibration is None:
            self.get_logger().warning('no camera_info_url: publishing uncalibrated camera_info')
        qos = QoSProfile(depth=2, history=HistoryPolicy.KEEP_LAST,
                         reliability=(ReliabilityPolicy.RELIABLE if p.reliable
                                      else ReliabilityPolicy.BEST_EFFORT))
        self.image_pub = self.create_lifecycle_publisher(Image, 'camera/image_raw', qos)
        self.info_pub = self.create_lifecycle_publisher(CameraInfo, 'camera/camera_info', qos)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the capture thread."""
        result = super().on_activate(state)
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture_loop, name='capture', daemon=True)
        self._thread.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the capture thread and release the source."""
        self._halt()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers."""
        self._halt()
        for pub in (self.image_pub, self.info_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self.image_pub = self.info_pub = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop capturing."""
        self._halt()
        return TransitionCallbackReturn.SUCCESS

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def _log(self, level: str, message: str) -> None:
        if level == 'info':
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    def _capture_loop(self) -> None:
        p = self.params
        self._loop = CaptureLoop(
            lambda: open_source(p.source, loop=p.loop, width=p.width, height=p.height),
            self._publish, self._log, rate=p.fps,
            backoff=Backoff(p.reconnect_initial, p.reconnect_max), stop=self._stop,
            name=repr(p.source))
        self._loop.run()

    def _publish(self, frame: Any) -> None:
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params.frame_id)
        try:
            image = frame_to_image(frame, self.params.encoding, header=header)
        except PerceptionError as err:
            self.get_logger().warning(f'frame dropped: {err}', throttle_duration_sec=5.0)
            return
        if self.calibration is not None:
            info = self.calibration.to_camera_info(header)
            if (info.width, info.height) != (image.width, image.height):
                self.get_logger().warning(
                    f'calibration is for {info.width}x{info.height} but frames are '
                    f'{image.width}x{image.height}', throttle_duration_sec=10.0)
        else:
            info = CameraInfo(header=header, width=image.width, height=image.height)
        self.image_pub.publish(image)
        self.info_pub.publish(info)
        self.frames_published += 1


def main(args: list[str] | None = None) -> None:
    """Run the camera driver node."""
    sys.exit(run_node(CameraDriverNode, args))
