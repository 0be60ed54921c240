"""Respawn scenario for test_respawn_delivery: run as a script, one role per process.

`python respawn_scenario.py run N` starts 20 filler participants, a hub (a latched 90 KB map,
a 10 Hz limit, 20 Hz scans and 10 Hz 230 KB images) and 5 watchers. A subscriber counts 30
images in a row (how many were lost). Then N times: it starts a victim subscriber (map, limit,
scans; a publisher the watchers follow), waits until it has the map, a limit and a scan (20 s
at most), kills it with -9 a random moment later, waits a respawn delay (1 s; the launch
files' is 0.5 s) and starts the next. It prints one line per incarnation and ends with
`result {json}`.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from typing import Any

KINDS = ('MAP', 'LIMIT', 'SCAN')


def _ros_role(role: str, arg: str) -> None:  # noqa: C901 - one small program per role
    import rclpy
    from nav_msgs.msg import OccupancyGrid
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image, LaserScan
    from std_msgs.msg import Float32

    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)
    if role == 'fillers':
        nodes = []
        for i in range(int(arg)):
            ctx = rclpy.Context()
            rclpy.init(context=ctx)
            nodes.append(Node(f'filler{i}', context=ctx))
        print('READY', flush=True)
        signal.pause()
    rclpy.init()
    node = Node(role)
    if role == 'hub':
        grid = OccupancyGrid()
        grid.header.frame_id = 'map'
        grid.info.width = grid.info.height = 300
        grid.data = [0] * 90000
        node.create_publisher(OccupancyGrid, '/respawn_map', latched).publish(grid)
        limit = node.create_publisher(Float32, '/respawn_limit', 10)
        scans = node.create_publisher(LaserScan, '/respawn_scan', qos_profile_sensor_data)
        images = node.create_publisher(Image, '/respawn_image', qos_profile_sensor_data)
        scan = LaserScan(ranges=[1.0] * 720)
        frame = Image(width=320, height=240, encoding='rgb8', step=960, data=bytes(230400))
        count = [0]

        def tick() -> None:
            limit.publish(Float32(data=0.5))
            count[0] += 1
            frame.header.stamp.sec = count[0]  # a sequence number: subscribers count gaps
            images.publish(frame)

        node.create_timer(0.1, tick)
        node.create_timer(0.05, lambda: scans.publish(scan))
    elif role == 'watcher':
        node.create_subscription(Float32, '/respawn_out', lambda m: None, 10)
        node.create_subscription(OccupancyGrid, '/respawn_map', lambda m: None, latched)
        node.create_subscription(Float32, '/respawn_limit', lambda m: None, 10)
    elif role == 'frames':
        frames: list[int] = []

        def image(msg: Image) -> None:
            frames.append(msg.header.stamp.sec)
            if len(frames) == 30:
                print(f'FRAMES {len(set(frames))} {frames[-1] - frames[0] + 1}', flush=True)

        node.create_subscription(Image, '/respawn_image', image, qos_profile_sensor_data)
    elif role == 'victim':
        seen: set[str] = set()

        def got(kind: str) -> None:
            if kind not in seen:
                seen.add(kind)
                print(kind, flush=True)

        node.create_subscription(OccupancyGrid, '/respawn_map', lambda m: got('MAP'), latched)
        node.create_subscription(Float32, '/respawn_limit', lambda m: got('LIMIT'), 10)
        node.create_subscription(LaserScan, '/respawn_scan', lambda m: got('SCAN'),
                                 qos_profile_sensor_data)
        out = node.create_publisher(Float32, '/respawn_out', 10)
        node.create_timer(0.1, lambda: out.publish(Float32(data=1.0)))
    print('READY', flush=True)
    rclpy.spin(node)


def _start(role: str, arg: str = '') -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, role, arg], stdout=subprocess.PIPE,
                            text=True)


def _read_until(proc: subprocess.Popen[str], want: set[str], deadline: float,
                lines: list[str]) -> set[str]:
    """Collect proc's output lines until every word of want was printed or deadline."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    buf = ''
    while time.monotonic() < deadline and not want <= {ln.split(' ')[0] for ln in lines}:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            buf += proc.stdout.read() or ''
            *done, buf = buf.split('\n')
            lines.extend(done)
    return {ln.split(' ')[0] for ln in lines}


def run(respawns: int) -> None:
    """Run the scenario; print a line per incarnation and the result as JSON."""
    rng = random.Random(1)
    background = [_start('fillers', '20'), _start('hub')]
    background += [_start('watcher') for _ in range(5)]
    result: dict[str, Any] = {'incarnations': []}
    try:
        for p in background:
            if 'READY' not in _read_until(p, {'READY'}, time.monotonic() + 90, []):
                raise SystemExit('a background participant did not start')
        # camera frames of 230 KB, 30 in a row, to a subscriber of their own
        frames = _start('frames')
        lines: list[str] = []
        _read_until(frames, {'FRAMES'}, time.monotonic() + 60, lines)
        frames.kill()
        frames.wait()
        counts = [ln.split() for ln in lines if ln.startswith('FRAMES')]
        result['frames'] = {'got': int(counts[0][1]), 'sent': int(counts[0][2])} if counts \
            else None
        print('frames', result['frames'], flush=True)
        for i in range(respawns):
            t0 = time.monotonic()
            victim = _start('victim')
            seen = _read_until(victim, set(KINDS), t0 + 20, [])
            entry = {'missing': sorted(set(KINDS) - seen),
                     'seconds': round(time.monotonic() - t0, 2)}
            result['incarnations'].append(entry)
            print(i, entry, flush=True)
            time.sleep(rng.uniform(0.0, 2.0))  # the crash: a moment after start-up or later
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            time.sleep(1.0)  # a respawn delay (the launch files wait 0.5 s)
    finally:
        for p in background:
            p.kill()
            p.wait()
    print('result', json.dumps(result), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'run':
        run(int(sys.argv[2]))
    else:
        _ros_role(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else '')
