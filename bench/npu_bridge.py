"""NPU bridge benchmark: what the ROS bridge costs on top of the model itself.

Model: a YOLOv8n-size detector (kpai_npu_bridge.models.build_yolov8n_like, 640x640, random
weights) on onnxruntime CPU. Frames: 640x480 rgb8. Phases, each bounded in time:
1. raw: Pipeline.infer on one frame per call in a plain loop (no ROS) -> raw_fps and
   model_latency_p50_ms (pre + infer + post of one frame); run before and after phase 2 (the
   machine is shared) and averaged.
2. throughput: camera process publishing faster than the model (1.25 x raw fps) -> npu_bridge
   process -> detections counted in this process -> bridge_fps; throughput_ratio = bridge/raw.
3. latency: camera at half the raw fps, so frames meet an idle worker; the bridge's own
   per-frame receive->publish time minus the model's pre + infer + post, as p50
   (added_latency_p50_ms; diagnostics key added_latency_p50_ms).
4. cameras: 4 camera topics, each at raw fps, max_batch 1 vs 4 -> batched_gain_4cams =
   detections/s batched / unbatched. For reference, the raw loop with 4 frames per call gives
   raw_batch4_gain: what batching can gain on this backend at most.
The camera publisher and the detections subscriber are separate processes from the bridge.
On 2 shared cores every process competes with onnxruntime's intra-op threads; --threads sets
them (0 = onnxruntime's default, one per core) for the raw loop and the bridge alike.

Middleware: by default every process uses the stack's Fast DDS profile
src/kpai_bringup/config/fastdds_localhost.xml (16 MB shared-memory segment); with
--middleware builtin the environment's Fast DDS builtin
transports are used as they are, and best-effort 640x480 frames are partly lost in transport.

Run:  python bench/npu_bridge.py [--seconds 10] [--threads 0] [--middleware profile]
Writes bench/results/npu_bridge.json and prints the figures.

With --shipped [--rate 10] it measures only the stack's own case (issue 18): the shipped
detector (src/kpai_data/models/kpai_detector.onnx), one 320x240 camera like the simulated
robots' at --rate, the stack's own middleware settings; the bridge's p50/p99 of image
received -> detections published, of that minus the model's own time, and the bridge's CPU;
for the bridge's default backend options, onnxruntime's own default (spinning threads) and the
simulated robots' one thread. Writes bench/results/npu_bridge_shipped.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from kpai_bringup.middleware import PROFILE_VARS, apply_middleware_defaults

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'npu_bridge.json'
# Fast DDS profile with a shared-memory segment large enough for 640x480 frames: with the
# builtin transports, best-effort images over 0.5 MB are partly lost (ros2/rmw_fastrtps#739).
LARGE_IMAGES_PROFILE = ROOT / 'src' / 'kpai_bringup' / 'config' / 'fastdds_localhost.xml'
sys.path.insert(0, str(ROOT / 'tests'))

from kpai_testing import RosGraph  # noqa: E402

WIDTH, HEIGHT = 640, 480
SIM_FRAME = (320, 240)  # the simulated robots' cameras
SHIPPED_RESULTS = ROOT / 'bench' / 'results' / 'npu_bridge_shipped.json'


def make_frames(n: int = 8, seed: int = 0, width: int = WIDTH,
                height: int = HEIGHT) -> list[np.ndarray]:
    """Return n different RGB frames (smooth gradients plus noise), 640x480 by default."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for _ in range(n):
        base = (xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)) % 256
        img = np.stack([base, base[::-1], base[:, ::-1]], axis=2)
        img = img + rng.normal(0, 12, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def raw_loop(model: Path, options: dict[str, Any], seconds: float,
             cache_dir: Path, batch: int = 1) -> dict[str, float]:
    """Run Pipeline.infer on `batch` frames per call for `seconds`; frames/s, call p50 ms."""
    from kpai_npu_bridge.pipeline import Pipeline

    frames = make_frames()
    with Pipeline.open(model, backend='onnxruntime', cache_dir=cache_dir,
                       options=options) as pipe:
        for k in range(2):
            pipe.infer(frames[k:k + batch])
        lat = []
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < seconds or i < 5:
            _, t = pipe.infer([frames[(i + k) % len(frames)] for k in range(batch)])
            lat.append(t.pre_ms + t.infer_ms + t.post_ms)
            i += 1
        elapsed = time.perf_counter() - t0
    return {'fps': i * batch / elapsed, 'latency_p50_ms': float(np.percentile(lat, 50)),
            'frames': i * batch}


def camera_main(args: argparse.Namespace) -> None:
    """Camera process: publish frames on N topics at a fixed rate each until killed."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('bench_camera')
    frames = make_frames(width=args.width, height=args.height)
    msgs = []
    for f in frames:
        m = Image(height=args.height, width=args.width, encoding='rgb8', step=3 * args.width)
        m.data = f.tobytes()
        m.header.frame_id = 'camera_optical'
        msgs.append(m)
    pubs = [node.create_publisher(Image, f'cam{k}/image_raw', qos_profile_sensor_data)
            for k in range(args.cameras)]
    state = {'i': 0}

    def tick() -> None:
        for k, pub in enumerate(pubs):
            m = msgs[(state['i'] + k) % len(msgs)]
            m.header.stamp = node.get_clock().now().to_msg()
            pub.publish(m)
        state['i'] += 1

    node.create_timer(1.0 / args.rate, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def bridge_phase(graph: RosGraph, *, model: Path, cameras: int, rate: float, max_batch: int,
                 seconds: float, warmup: float, threads: int, cache_dir: Path,
                 tag: str, frame: tuple[int, int] = (WIDTH, HEIGHT),
                 options: tuple[str, ...] = ()) -> dict[str, float]:
    """Run camera -> npu_bridge -> this process for one configuration; return its figures."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection2DArray

    ns = f'/{tag}'
    topics = '[' + ', '.join(f'cam{k}/image_raw' for k in range(cameras)) + ']'
    opts_list = [*([f'intra_op_num_threads={threads}'] if threads else []), *options]
    opts = ', '.join(repr(o) for o in opts_list) if opts_list else "''"
    bridge = graph.start_node(
        'kpai_npu_bridge', 'npu_bridge', '-r', f'__ns:={ns}', '-p', f'model_path:={model}',
        '-p', f'image_topics:={topics}', '-p', f'max_batch:={max_batch}',
        '-p', 'max_wait_ms:=5.0', '-p', f'cache_dir:={cache_dir}',
        '-p', f'backend_options:=[{opts}]', '-p', f'stats_window:={seconds}',
        '-p', 'stats_period:=0.5', name=f'bridge-{tag}')
    camera = graph.start([sys.executable, __file__, '--role', 'camera', '--cameras',
                          str(cameras), '--rate', str(rate), '--width', str(frame[0]),
                          '--height', str(frame[1]), '--ros-args', '-r',
                          f'__ns:={ns}'], name=f'camera-{tag}')
    node = graph.node
    counts = {'n': 0}
    e2e: list[float] = []
    diag: dict[str, str] = {}

    def on_dets(msg: Detection2DArray) -> None:
        counts['n'] += 1
        now = node.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        e2e.append((now - stamp) / 1e6)

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.startswith(f'{ns}/npu_bridge'):
                diag.clear()
                diag.update({kv.key: kv.value for kv in s.values})

    subs = [node.create_subscription(
        Detection2DArray, f'{ns}/cam{k}/detections', on_dets, QoSProfile(depth=50))
        for k in range(cameras)]
    subs.append(node.create_subscription(DiagnosticArray, '/diagnostics', on_diag,
                                         QoSProfile(depth=20)))
    try:
        graph.spin_until(lambda: counts['n'] > 0, timeout=60, what=f'{tag}: first detections')
        t_end = time.monotonic() + warmup
        graph.spin_until(lambda: time.monotonic() > t_end, timeout=warmup + 5)
        counts['n'] = 0
        e2e.clear()
        t0 = time.monotonic()
        cpu0 = _tree_cpu_s(bridge.pid)
        t_end = t0 + seconds
        graph.spin_until(lambda: time.monotonic() > t_end, timeout=seconds + 5)
        n = counts['n']
        elapsed = time.monotonic() - t0
        bridge_cpu = (_tree_cpu_s(bridge.pid) - cpu0) / elapsed
        t_end = time.monotonic() + 0.7  # one more diagnostics report covering the window
        graph.spin_until(lambda: time.monotonic() > t_end, timeout=5)
        snap = dict(diag)
    finally:
        for s in subs:
            node.destroy_subscription(s)
        camera.stop()
        bridge.stop()
    model_ms = sum(float(snap.get(f'{k}_latency_p50_ms', 'nan')) for k in ('pre', 'infer',
                                                                           'post'))
    return {
        'fps': n / elapsed,
        'frames': n,
        'added_latency_p50_ms': float(snap.get('added_latency_p50_ms', 'nan')),
        'added_latency_p99_ms': float(snap.get('added_latency_p99_ms', 'nan')),
        'model_latency_p50_ms': model_ms,
        'infer_latency_p50_ms': float(snap.get('infer_latency_p50_ms', 'nan')),
        'total_latency_p50_ms': float(snap.get('total_latency_p50_ms', 'nan')),
        'total_latency_p99_ms': float(snap.get('total_latency_p99_ms', 'nan')),
        'end_to_end_latency_p50_ms': float(np.percentile(e2e, 50)) if e2e else float('nan'),
        'mean_batch_size': float(snap.get('mean_batch_size', 'nan')),
        'frames_dropped': int(snap.get('frames_dropped', '0')),
        'bridge_cpu_pct': 100.0 * bridge_cpu,
    }


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of pid and its descendants so far."""
    from kpai_bringup.proc_cpu import read_tree

    return sum(s.stat.ticks for s in read_tree(pid)) / os.sysconf('SC_CLK_TCK')


def use_middleware(graph: RosGraph, middleware: str) -> None:
    """Give this process and the graph's children the same Fast DDS transport settings."""
    if middleware == 'stack':  # the robot stack's own choice, as its launch files make it
        for env in (os.environ, graph.env):
            for var in (*PROFILE_VARS, 'FASTDDS_BUILTIN_TRANSPORTS'):
                env.pop(var, None)
            env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
            apply_middleware_defaults(env)
    elif middleware == 'profile':
        for env in (os.environ, graph.env):
            env.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
            for var in PROFILE_VARS:  # Fast DDS 2.x reads one name, 3.x the other
                env[var] = str(LARGE_IMAGES_PROFILE)


def run(*, seconds: float = 10.0, warmup: float = 3.0, threads: int = 0,
        workdir: Path | None = None, input_size: int = 640,
        middleware: str = 'profile') -> dict[str, Any]:
    """Run all phases and return the results dictionary."""
    from kpai_npu_bridge.models import build_yolov8n_like

    tmp = Path(workdir or tempfile.mkdtemp(prefix='kpai-bench-npu-'))
    model = tmp / 'yolov8n_like.onnx'
    build_yolov8n_like(model, input_size)
    cache_dir = tmp / 'cache'
    options = {'intra_op_num_threads': threads} if threads else {}
    raw = raw_loop(model, options, seconds, cache_dir)
    print(f'raw: {raw["fps"]:.2f} fps, model p50 {raw["latency_p50_ms"]:.1f} ms', flush=True)
    common = dict(model=model, seconds=seconds, warmup=warmup, threads=threads,
                  cache_dir=cache_dir)
    with_graph = RosGraph()
    use_middleware(with_graph, middleware)
    try:
        thr = bridge_phase(with_graph, cameras=1, rate=min(60.0, 1.25 * raw['fps']),
                           max_batch=1, tag='throughput', **common)
        print(f'bridge: {thr["fps"]:.2f} fps', flush=True)
        # the machine is shared: measure the raw loop again right after, use the mean
        raw_after = raw_loop(model, options, seconds, cache_dir)
        print(f'raw again: {raw_after["fps"]:.2f} fps', flush=True)
        lat = bridge_phase(with_graph, cameras=1, rate=max(1.0, 0.5 * raw['fps']),
                           max_batch=1, tag='latency', **common)
        print(f'latency: added p50 {lat["added_latency_p50_ms"]:.2f} ms of model '
              f'{lat["model_latency_p50_ms"]:.1f} ms', flush=True)
        raw4 = raw_loop(model, options, seconds / 2, cache_dir, batch=4)
        print(f'raw, 4 frames per call: {raw4["fps"]:.2f} fps', flush=True)
        cam_rate = min(30.0, max(1.0, raw['fps']))
        single = bridge_phase(with_graph, cameras=4, rate=cam_rate, max_batch=1,
                              tag='unbatched', **common)
        batched = bridge_phase(with_graph, cameras=4, rate=cam_rate, max_batch=4,
                               tag='batched', **common)
        print(f'4 cameras: unbatched {single["fps"]:.2f} fps, batched {batched["fps"]:.2f} '
              f'fps (mean batch {batched["mean_batch_size"]:.2f})', flush=True)
    finally:
        with_graph.close()
    raw_fps = 0.5 * (raw['fps'] + raw_after['fps'])
    return {
        'raw_fps': round(raw_fps, 3),
        'raw_fps_before_after': [round(raw['fps'], 3), round(raw_after['fps'], 3)],
        'bridge_fps': round(thr['fps'], 3),
        'throughput_ratio': round(thr['fps'] / raw_fps, 3),
        'model_latency_p50_ms': round(
            0.5 * (raw['latency_p50_ms'] + raw_after['latency_p50_ms']), 3),
        'added_latency_p50_ms': round(lat['added_latency_p50_ms'], 3),
        'added_latency_share_of_model': round(
            lat['added_latency_p50_ms'] / lat['model_latency_p50_ms'], 4),
        'bridge_model_latency_p50_ms': round(lat['model_latency_p50_ms'], 3),
        'end_to_end_latency_p50_ms': round(lat['end_to_end_latency_p50_ms'], 3),
        'batched_gain_4cams': round(batched['fps'] / single['fps'], 3),
        'fps_4cams_unbatched': round(single['fps'], 3),
        'fps_4cams_batched': round(batched['fps'], 3),
        'mean_batch_size_4cams': round(batched['mean_batch_size'], 3),
        'raw_fps_batch4': round(raw4['fps'], 3),
        'raw_batch4_gain': round(raw4['fps'] / raw_fps, 3),
        'targets': {'throughput_ratio': '>= 0.9', 'added_latency_share_of_model': '<= 0.05',
                    'batched_gain_4cams': '>= 1.15'},
        'config': {
            'model': f'build_yolov8n_like({input_size})', 'backend': 'onnxruntime CPU',
            'frame': f'{WIDTH}x{HEIGHT} rgb8', 'intra_op_num_threads': threads or 'default',
            'middleware': (f'Fast DDS profile {LARGE_IMAGES_PROFILE.name} (16 MB SHM segment)'
                           if middleware == 'profile' else
                           os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', 'builtin')),
            'seconds_per_phase': seconds, 'warmup_s': warmup, 'cpus': os.cpu_count(),
            'throughput_camera_hz': round(min(60.0, 1.25 * raw['fps']), 2),
            'latency_camera_hz': round(max(1.0, 0.5 * raw['fps']), 2),
            'camera_hz_4cams': round(cam_rate, 2),
        },
    }


# --shipped compares these backend_options in one run: the bridge's defaults, onnxruntime's
# own default (threads spin after each run) and the simulated robots' setting
SHIPPED_VARIANTS: dict[str, tuple[str, ...]] = {
    'bridge defaults': (),
    'allow_spinning=true (onnxruntime default)': ('allow_spinning=true',),
    'intra_op_num_threads=1 (sim robots)': ('intra_op_num_threads=1',),
}


def run_shipped(*, seconds: float, warmup: float, rate: float,
                variants: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The bridge's latency and CPU with the shipped detector, one 320x240 camera at rate."""
    model = ROOT / 'src' / 'kpai_data' / 'models' / 'kpai_detector.onnx'
    tmp = Path(tempfile.mkdtemp(prefix='kpai-bench-npu-'))
    graph = RosGraph()
    use_middleware(graph, 'stack')
    runs = {}
    try:
        for i, (label, options) in enumerate(variants.items()):
            lat = bridge_phase(graph, model=model, cameras=1, rate=rate, max_batch=1,
                               seconds=seconds, warmup=warmup, threads=0,
                               cache_dir=tmp / 'cache', tag=f'shipped{i}', frame=SIM_FRAME,
                               options=options)
            fig = {k: round(v, 3) for k, v in lat.items() if isinstance(v, float)}
            runs[label] = {'backend_options': list(options), **fig, 'frames': lat['frames'],
                           'frames_dropped': lat['frames_dropped']}
            print(f'{label}: image received -> detections published p50 '
                  f'{fig["total_latency_p50_ms"]} ms, p99 {fig["total_latency_p99_ms"]} ms; '
                  f'model (pre + infer + post) p50 {fig["model_latency_p50_ms"]} ms; '
                  f'bridge-added p50 {fig["added_latency_p50_ms"]} ms, p99 '
                  f'{fig["added_latency_p99_ms"]} ms; bridge CPU {fig["bridge_cpu_pct"]} % '
                  'of a core', flush=True)
    finally:
        graph.close()
    return {
        'runs': runs,
        'targets': {'added_latency_p50_ms': '<= 5 (issue 18, at 10 Hz)'},
        'config': {
            'model': 'src/kpai_data/models/kpai_detector.onnx (shipped)',
            'backend': 'onnxruntime CPU', 'frame': f'{SIM_FRAME[0]}x{SIM_FRAME[1]} rgb8',
            'camera_hz': rate,
            'middleware': "the stack's Fast DDS profile (UDPv4 only, 4 MiB buffers)",
            'seconds': seconds, 'warmup_s': warmup, 'cpus': os.cpu_count(),
            'notes': 'total = image received by the bridge -> detections published; added = '
                     "total minus the model's pre + infer + post of the same batch; "
                     'end_to_end = camera stamp -> detections received by another process; '
                     'bridge_cpu_pct = the bridge process, user + system, over the window',
        },
    }


def main() -> None:
    """Parse arguments, run the benchmark (or the camera role), write and print results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument('--seconds', type=float, default=10.0, help='measurement per phase')
    parser.add_argument('--warmup', type=float, default=3.0, help='warm-up per bridge phase')
    parser.add_argument('--threads', type=int, default=0,
                        help='onnxruntime intra-op threads (0 = its default)')
    parser.add_argument('--middleware', default='profile', choices=['profile', 'builtin'],
                        help='profile: the large-image Fast DDS profile; builtin: env as is')
    parser.add_argument('--role', default='bench', choices=['bench', 'camera'])
    parser.add_argument('--cameras', type=int, default=1)
    parser.add_argument('--rate', type=float, default=10.0,
                        help='camera rate (camera role, and --shipped)')
    parser.add_argument('--width', type=int, default=WIDTH)
    parser.add_argument('--height', type=int, default=HEIGHT)
    parser.add_argument('--shipped', action='store_true',
                        help="only the bridge's latency with the shipped detector at --rate "
                             f'(writes {SHIPPED_RESULTS.name})')
    parser.add_argument('--output', type=Path, default=None)
    argv = sys.argv[1:]
    if '--ros-args' in argv:  # the camera role passes ROS arguments through to rclpy
        argv = argv[:argv.index('--ros-args')]
    args = parser.parse_args(argv)
    if args.role == 'camera':
        camera_main(args)
        return
    if args.shipped:
        result = run_shipped(seconds=args.seconds, warmup=args.warmup, rate=args.rate,
                             variants=SHIPPED_VARIANTS)
        args.output = args.output or SHIPPED_RESULTS
    else:
        result = run(seconds=args.seconds, warmup=args.warmup, threads=args.threads,
                     middleware=args.middleware)
        args.output = args.output or RESULTS
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
