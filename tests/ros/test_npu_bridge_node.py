"""ROS tests of npu_bridge: detections, bad input, hot swap, configure errors, CPU fallback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from kpai_npu_bridge.models import build_constant_detector
from lifecycle_msgs.srv import GetState
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from kpai_msgs.msg import InferenceStats
from kpai_msgs.srv import GetInferenceStats, LoadModel, SwitchBackend

SIZE = 128  # square camera frames: the 64 px model input is an exact 0.5 scale, no padding
BOXES = [(8, 8, 24, 40, 0.9, 0), (32, 16, 56, 48, 0.8, 1)]  # model-input pixels
# the same boxes in camera pixels (x2), as (label, score, cx, cy, w, h)
EXPECTED = [('person', 0.9, 32.0, 48.0, 32.0, 64.0), ('pallet', 0.8, 88.0, 64.0, 48.0, 64.0)]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / 'const.onnx'
    build_constant_detector(path, boxes=BOXES, num_classes=2, input_size=64,
                            labels=['person', 'pallet'])
    return path


def _image(i: int, *, encoding: str = 'rgb8', size: int = SIZE) -> Image:
    msg = Image()
    msg.header.stamp.sec = 1000 + i
    msg.header.stamp.nanosec = 1000 * i
    msg.header.frame_id = 'robot1/camera_optical'
    msg.height = msg.width = size
    msg.encoding = encoding
    msg.step = 3 * size
    msg.data = np.full((size, size, 3), i % 255, np.uint8).tobytes()
    return msg


def _key(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


class Rig:
    """The in-test side: camera publisher, detections/diagnostics/stats subscribers."""

    def __init__(self, graph: Any, ns: str = '') -> None:
        self.graph = graph
        node = graph.node
        self.ns = ns
        self.dets: list[Detection2DArray] = []
        self.diags: list[DiagnosticStatus] = []
        self.stats: list[InferenceStats] = []
        self.pub = node.create_publisher(Image, f'{ns}/camera/image_raw', QoSProfile(depth=10))
        node.create_subscription(Detection2DArray, f'{ns}/detections', self.dets.append,
                                 QoSProfile(depth=100))
        node.create_subscription(DiagnosticArray, '/diagnostics',
                                 lambda m: self.diags.extend(m.status), QoSProfile(depth=50))
        node.create_subscription(InferenceStats, f'{ns}/inference_stats', self.stats.append,
                                 QoSProfile(depth=50))
        self.sent: list[tuple[int, int]] = []
        self._index = 100
        self._next_at = 0.0

    def client(self, srv_type: Any, name: str) -> Any:
        cli = self.graph.node.create_client(srv_type, f'{self.ns}/npu_bridge/{name}')
        self.graph.spin_until(lambda: cli.service_is_ready(), timeout=15, what=name)
        return cli

    def call(self, cli: Any, req: Any, *, timeout: float = 60.0, resend: bool = True,
             during: Callable[[], None] = lambda: None) -> Any:
        """Call a bridge service; queries are sent again if an answer was lost (RosGraph.call)."""
        return self.graph.call(cli, req, timeout=timeout, during=during,
                               resend_after=3.0 if resend else None)

    def wait_active(self) -> None:
        self.graph.spin_until(lambda: self.pub.get_subscription_count() > 0, timeout=30,
                              what='bridge subscribed to images')
        self.graph.spin_until(
            lambda: self.graph.node.count_publishers(f'{self.ns}/detections') > 0, timeout=10,
            what='detections publisher')
        # the bridge's detections publisher may match our subscription later than we see it,
        # and the first inferences after a load are slow (a camera frame arriving meanwhile
        # replaces the one waiting, as on a robot): probe until a result comes back for a frame
        # sent after the first result arrived, then the pipeline is matched and warm
        self._index = 1000
        self.stream(0.5, lambda: self.dets)
        mark = len(self.sent)
        self.stream(0.5, lambda: set(self.sent[mark:]) & self.got())
        self.dets.clear()
        self.sent.clear()
        self._index = 100

    def send(self, i: int, **kw: Any) -> None:
        msg = _image(i, **kw)
        self.pub.publish(msg)
        if kw.get('encoding', 'rgb8') == 'rgb8':
            self.sent.append(_key(msg))

    def got(self) -> set[tuple[int, int]]:
        return {_key(d) for d in self.dets}

    def tick(self, period: float) -> None:
        """Publish the next frame if period s passed since the last one (a steady camera)."""
        now = time.monotonic()
        if now >= self._next_at:
            self.send(self._index)
            self._index += 1
            self._next_at = max(self._next_at + period, now - period)

    def stream(self, period: float, until: Callable[[], Any]) -> None:
        """Publish a frame every period s while spinning until until() is truthy."""

        def step() -> Any:
            self.tick(period)
            return until()

        self.graph.spin_until(step, timeout=60, what='stream condition')


def _check_boxes(msg: Detection2DArray) -> None:
    got = sorted((d.results[0].hypothesis.class_id, d.results[0].hypothesis.score,
                  d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x,
                  d.bbox.size_y) for d in msg.detections)
    want = sorted(EXPECTED)
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0]
        assert g[1:] == pytest.approx(w[1:], abs=1e-3), (g, w)
    for d in msg.detections:
        assert _key(d) == _key(msg) and d.header.frame_id == msg.header.frame_id


def _bridge(graph: Any, model: Path | str, *extra: str, **env: str) -> Any:
    return graph.start_node(
        'kpai_npu_bridge', 'npu_bridge', '-p', f'model_path:={model}',
        '-p', 'stats_period:=0.3', '-p', 'max_wait_ms:=2.0', *extra, **env)


def test_detections_bad_input_and_hot_swap(graph: Any, model: Path, tmp_path: Path) -> None:
    proc = _bridge(graph, model, '-p', f'cache_dir:={tmp_path / "cache"}')
    rig = Rig(graph)
    rig.wait_active()

    # frames -> detections with the expected boxes and the source header
    for i in range(5):
        rig.send(i)
        graph.spin_until(lambda i=i: len(rig.dets) > i, timeout=10, what=f'detections #{i}')
    for msg in rig.dets:
        _check_boxes(msg)
        assert msg.header.frame_id == 'robot1/camera_optical'
    assert [_key(m) for m in rig.dets] == rig.sent

    # bad images are counted as rejected; the node keeps working
    bad = _image(90, encoding='bogus8')
    rig.pub.publish(bad)
    short = _image(91)
    short.data = short.data[:-7]  # step * height != len(data)
    rig.pub.publish(short)
    empty = _image(92)
    empty.height = empty.width = empty.step = 0
    empty.data = b''
    rig.pub.publish(empty)
    stats_cli = rig.client(GetInferenceStats, 'get_stats')
    graph.spin_until(
        lambda: rig.stats and rig.stats[-1].frames_rejected >= 3, timeout=10, what='rejected')
    stats = rig.call(stats_cli, GetInferenceStats.Request()).stats
    dropped_before_swap = stats.frames_dropped  # a slow first inference may replace a frame
    assert stats.frames_rejected == 3
    assert stats.backend == 'onnxruntime' and stats.model_name == 'const.onnx'
    assert len(stats.model_sha256) == 64 and stats.frames_inferred >= 5
    assert stats.inference.p50_ms > 0.0 and stats.total.p50_ms >= stats.inference.p50_ms
    assert proc.alive()
    assert 'rejected image on camera/image_raw' in proc.output()

    # hot swap onnxruntime -> openvino -> onnxruntime under a 10 Hz stream: no frame lost
    switch = rig.client(SwitchBackend, 'switch_backend')
    rig.stream(0.1, lambda: len(rig.sent) >= 10)
    for backend in ('openvino', 'onnxruntime'):
        resp = rig.call(switch, SwitchBackend.Request(backend=backend), resend=False,
                        during=lambda: rig.tick(0.1))
        assert resp.success, resp.message
        n = len(rig.sent)
        rig.stream(0.1, lambda n=n: len(rig.sent) >= n + 5)
        rig.stream(0.1, lambda b=backend: rig.stats and rig.stats[-1].backend == b)
    try:
        graph.spin_until(lambda: set(rig.sent) <= rig.got(), timeout=10,
                         what='a detections message for every frame')
    except TimeoutError as err:
        # say which frames and what the bridge counted (received, dropped as replaced by a
        # newer one, inferred), to tell a frame lost in transit from one the bridge dropped
        late = rig.call(stats_cli, GetInferenceStats.Request()).stats
        raise AssertionError(
            f'no detections for frames {sorted(set(rig.sent) - rig.got())} of '
            f'{len(rig.sent)} sent; bridge: received {late.frames_received}, dropped '
            f'{late.frames_dropped} ({dropped_before_swap} before the swaps), inferred '
            f'{late.frames_inferred}, rejected {late.frames_rejected}, errors {late.errors}'
        ) from err
    assert len(rig.got()) == len(rig.sent)
    for msg in rig.dets:
        _check_boxes(msg)
    stats = rig.call(stats_cli, GetInferenceStats.Request()).stats
    assert stats.backend == 'onnxruntime' and stats.errors == 0
    assert stats.frames_dropped == dropped_before_swap
    ok = [s for s in rig.diags if s.name.endswith('npu_bridge: inference')]
    assert ok and ok[-1].level == DiagnosticStatus.OK
    values = {kv.key: kv.value for kv in ok[-1].values}
    assert values['backend'] == 'onnxruntime' and values['model_sha256'] == stats.model_sha256
    assert float(values['infer_latency_p50_ms']) > 0.0


@pytest.mark.parametrize('problem', ['missing model', 'corrupt manifest'])
def test_configure_fails_with_reason_then_load_model_recovers(
        graph: Any, model: Path, tmp_path: Path, problem: str) -> None:
    if problem == 'missing model':
        target, reason = tmp_path / 'nope.onnx', 'model file not found'
        target.with_suffix('.yaml').write_text(model.with_suffix('.yaml').read_text())
    else:
        target = tmp_path / 'bad.onnx'
        target.write_bytes(model.read_bytes())
        target.with_suffix('.yaml').write_text('task: [this is not\n')
        reason = 'bad.yaml'
    proc = _bridge(graph, target)
    rig = Rig(graph)
    graph.spin_until(lambda: 'configure failed' in proc.output(), timeout=30,
                     what='configure failure')
    line = next(ln for ln in proc.output().splitlines() if 'configure failed' in ln)
    assert reason in line, line
    graph.spin_until(lambda: any(s.level == DiagnosticStatus.ERROR for s in rig.diags),
                     timeout=10, what='ERROR diagnostics')
    err = next(s for s in rig.diags if s.level == DiagnosticStatus.ERROR)
    assert reason in err.message
    state = rig.call(rig.client(GetState, 'get_state'), GetState.Request())
    assert state.current_state.label == 'unconfigured'
    assert proc.alive()

    resp = rig.call(rig.client(LoadModel, 'load_model'),
                    LoadModel.Request(model_path=str(model)), resend=False)
    assert resp.success, resp.message
    assert len(resp.model_sha256) == 64
    rig.wait_active()
    rig.send(1)
    graph.spin_until(lambda: rig.dets, timeout=10, what='detections after recovery')
    _check_boxes(rig.dets[0])


FLAKY = '''
from __future__ import annotations

import os
import time
from dataclasses import replace

from kpai_npu_bridge.backends.onnxruntime_backend import OnnxRuntimeBackend
from kpai_npu_bridge.errors import BackendError


class FlakyBackend(OnnxRuntimeBackend):
    """onnxruntime that fails every run while the flag file exists (a device that hangs)."""

    def load(self, model_path, *, progress=None, **kw):
        if progress is not None:
            progress('flaky: compiling for the test device', 0.5)
        release = os.environ.get('KPAI_FLAKY_RELEASE', '')
        deadline = time.monotonic() + 60.0
        while release and not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)  # a slow compiler: done when the test says so
        return super().load(model_path, progress=progress, **kw)

    def run(self, batch):
        if os.path.exists(os.environ['KPAI_FLAKY_FLAG']):
            raise BackendError('flaky: device not responding')
        return super().run(batch)

    def info(self):
        return replace(super().info(), name='flaky', vendor='test vendor')
'''


def _install_flaky_plugin(site: Path) -> None:
    """Register a backend through the entry-point group, as a vendor package would."""
    site.mkdir()
    (site / 'kpai_flaky_backend.py').write_text(FLAKY)
    dist = site / 'kpai_flaky_backend-0.1.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: kpai-flaky-backend\nVersion: 0.1\n')
    (dist / 'entry_points.txt').write_text(
        '[kpai_npu_bridge.backends]\nflaky = kpai_flaky_backend:FlakyBackend\n')


def test_backend_failures_fall_back_to_cpu_and_return(
        graph: Any, model: Path, tmp_path: Path) -> None:
    site, flag = tmp_path / 'site', tmp_path / 'fail.flag'
    _install_flaky_plugin(site)
    release = tmp_path / 'compiled.flag'
    env = {'KPAI_FLAKY_FLAG': str(flag), 'KPAI_FLAKY_RELEASE': str(release),
           'PYTHONPATH': f'{site}:{graph.env.get("PYTHONPATH", "")}'}
    proc = _bridge(graph, model, '-p', 'backend:=flaky', '-p', 'fallback_after_failures:=3',
                   **env)
    rig = Rig(graph)
    # while the first model compiles, diagnostics already say so
    progress = 'compiling: flaky: compiling for the test device (50%)'
    graph.spin_until(lambda: any(progress in s.message for s in rig.diags), timeout=15,
                     what='compiling diagnostics')
    compiling = next(s for s in rig.diags if progress in s.message)
    assert {kv.key: kv.value for kv in compiling.values}['compiling'] == 'true'
    release.touch()  # compilation ends
    rig.wait_active()
    rig.stream(0.05, lambda: len(rig.dets) >= 3)
    graph.spin_until(lambda: rig.stats and rig.stats[-1].backend == 'flaky', timeout=5,
                     what='stats on flaky')

    flag.touch()  # the device starts failing mid-stream
    # a stats message may fall between the fallback's start and the switch of the running
    # backend (fallback_active with backend 'flaky'): wait for the switched one
    rig.stream(0.05, lambda: rig.stats and rig.stats[-1].fallback_active
               and rig.stats[-1].backend == 'onnxruntime')
    n = len(rig.dets)
    rig.stream(0.05, lambda: len(rig.dets) >= n + 3)  # detections continue
    _check_boxes(rig.dets[-1])
    st = rig.stats[-1]
    assert st.backend == 'onnxruntime' and st.errors >= 3
    assert 'flaky: device not responding' in st.fallback_reason
    graph.spin_until(lambda: rig.diags and rig.diags[-1].level == DiagnosticStatus.WARN,
                     timeout=5, what='WARN diagnostics')
    assert 'fallback' in rig.diags[-1].message
    assert 'falling back to CPU onnxruntime' in proc.output()

    flag.unlink()  # the device is back; the operator asks to return
    resp = rig.call(rig.client(Trigger, 'reset_fallback'), Trigger.Request())
    assert resp.success, resp.message
    graph.spin_until(lambda: rig.stats and not rig.stats[-1].fallback_active
                     and rig.stats[-1].backend == 'flaky', timeout=5, what='back on flaky')
    n = len(rig.dets)
    rig.stream(0.05, lambda: len(rig.dets) >= n + 3)
    graph.spin_until(lambda: rig.diags and rig.diags[-1].level == DiagnosticStatus.OK,
                     timeout=5, what='OK diagnostics')
    assert proc.alive()


@pytest.mark.parametrize('how', ['stop flag', 'context shutdown'])
def test_control_spin_thread_ends_without_error(how: str) -> None:
    """The npu_bridge control executor's thread leaves rclpy before main tears down."""
    import threading

    import rclpy
    from kpai_perception.node_util import spin_until_stopped
    from rclpy.executors import MultiThreadedExecutor

    errors: list[BaseException | None] = []
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    node = rclpy.create_node('spin_until_probe', context=context)
    ticks: list[float] = []
    node.create_timer(0.01, lambda: ticks.append(time.monotonic()))
    executor.add_node(node)
    stop = threading.Event()
    thread = threading.Thread(target=spin_until_stopped, args=(executor, stop), daemon=True)
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        while len(ticks) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(ticks) >= 5, 'the control executor did not run its timer'
        if how == 'stop flag':
            stop.set()
        else:
            context.try_shutdown()
        thread.join(timeout=5)
        assert not thread.is_alive(), f'spin thread still running after the {how}'
        assert errors == []
    finally:
        threading.excepthook = old_hook
        stop.set()
        executor.shutdown(timeout_sec=2)
        node.destroy_node()
        context.try_shutdown()


def test_unavailable_vendor_backend_configures_on_the_cpu_fallback(
        graph: Any, model: Path, tmp_path: Path) -> None:
    # The FuriosaAI plug-in installed as a distribution, no SDK, toolchain or device.
    src = Path(__file__).resolve().parents[2] / 'src'
    site = tmp_path / 'site'
    dist = site / 'kpai_npu_furiosa-0.1.0.dist-info'
    dist.mkdir(parents=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: kpai_npu_furiosa\n'
                                   'Version: 0.1.0\n')
    (dist / 'entry_points.txt').write_text(
        '[kpai_npu_bridge.backends]\n'
        'furiosa-rngd = kpai_npu_furiosa.backend:FuriosaRngdBackend\n')
    env = {'PYTHONPATH': f'{site}:{src / "kpai_npu_furiosa"}:{graph.env.get("PYTHONPATH", "")}',
           'KPAI_ROOT': str(tmp_path / 'ws'), 'KPAI_FURIOSA_PYTHON': ''}
    proc = _bridge(graph, model, '-p', 'backend:=furiosa-rngd',
                   '-p', f'cache_dir:={tmp_path / "cache"}', **env)
    rig = Rig(graph)
    rig.wait_active()
    rig.stream(0.05, lambda: len(rig.dets) >= 3)
    _check_boxes(rig.dets[-1])
    graph.spin_until(lambda: rig.stats and rig.stats[-1].fallback_active, timeout=5,
                     what='stats on the fallback')
    st = rig.stats[-1]
    assert st.backend == 'onnxruntime'
    assert 'backend furiosa-rngd unavailable' in st.fallback_reason
    assert 'no RNGD card' in st.fallback_reason
    assert 'falling back to CPU onnxruntime' in proc.output()
    graph.spin_until(lambda: rig.diags and rig.diags[-1].level == DiagnosticStatus.WARN,
                     timeout=5, what='WARN diagnostics')
    resp = rig.call(rig.client(Trigger, 'reset_fallback'), Trigger.Request())
    assert not resp.success and 'still on fallback' in resp.message
    assert proc.alive()
