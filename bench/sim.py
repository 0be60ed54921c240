"""Simulation benchmark: real-time factor of the MuJoCo factory with every topic on ROS.

Setup (the issue's figure): 2 robots, camera 320x240 at 10 Hz, lidar 360 beams at 10 Hz,
odometry 50 Hz, IMU 100 Hz, ground truth 10 Hz, 4 people walking, /clock every 10 ms; the
`sim` node runs in its own process and this process subscribes to all camera, detection, scan,
odometry and clock topics (so every message is really serialised and delivered).
Phases, each bounded in wall time:
1. free-running (real_time_factor:=0): real_time_factor = sim seconds / wall seconds from
   /clock, and the received camera / scan rates per sim second;
2. locked (real_time_factor:=1): locked_real_time_factor, which should sit at 1.0.
The sim process's CPU use (fraction of one core) is read from /proc for both phases.

Run:  python bench/sim.py [--seconds 20] [--locked-seconds 10] [--robots 2]
Writes bench/results/sim.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'sim.json'
sys.path.insert(0, str(ROOT / 'tests'))

from kpai_testing import RosGraph  # noqa: E402

WARMUP_S = 3.0


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used so far by a process."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run_phase(robots: int, rtf: float, seconds: float) -> dict[str, Any]:
    """Run the sim node for seconds of wall time at a target rtf; return measured figures."""
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, LaserScan
    from vision_msgs.msg import Detection2DArray

    graph = RosGraph()
    try:
        proc = graph.start_node(
            'kpai_sim', 'sim', '-p', f'robots:={robots}', '-p', 'camera_width:=320',
            '-p', 'camera_height:=240', '-p', 'camera_rate:=10.0', '-p', 'lidar_beams:=360',
            '-p', 'lidar_rate:=10.0', '-p', f'real_time_factor:={rtf}')
        node = graph.node
        clock: list[tuple[float, float]] = []
        counts: dict[str, int] = {}

        def counter(key: str) -> Any:
            def cb(_msg: Any) -> None:
                counts[key] = counts.get(key, 0) + 1
            return cb

        node.create_subscription(
            Clock, '/clock',
            lambda m: clock.append((time.monotonic(), m.clock.sec + m.clock.nanosec * 1e-9)), 10)
        for i in range(1, robots + 1):
            ns = f'/robot{i}/'
            node.create_subscription(Image, ns + 'camera/image_raw', counter('image'),
                                     qos_profile_sensor_data)
            node.create_subscription(LaserScan, ns + 'scan', counter('scan'),
                                     qos_profile_sensor_data)
            node.create_subscription(Odometry, ns + 'odom', counter('odom'), 10)
            node.create_subscription(Detection2DArray, ns + 'ground_truth/detections',
                                     counter('detections'), 10)
        graph.spin_until(lambda: counts.get('image', 0) >= robots, timeout=30.0,
                         what='first camera frames')
        end_warmup = time.monotonic() + WARMUP_S
        graph.spin_until(lambda: time.monotonic() > end_warmup, timeout=WARMUP_S + 5)
        start_counts = dict(counts)
        start_clock = clock[-1]
        cpu0 = cpu_seconds(proc.pid)
        end = time.monotonic() + seconds
        graph.spin_until(lambda: time.monotonic() > end, timeout=seconds + 5)
        cpu1 = cpu_seconds(proc.pid)
        wall = clock[-1][0] - start_clock[0]
        sim = clock[-1][1] - start_clock[1]
        per_sim_s = {k: (counts.get(k, 0) - start_counts.get(k, 0)) / sim / robots
                     for k in ('image', 'scan', 'odom', 'detections')}
        return {
            'target_real_time_factor': rtf,
            'real_time_factor': round(sim / wall, 3),
            'sim_seconds': round(sim, 2),
            'wall_seconds': round(wall, 2),
            'camera_hz_per_robot': round(per_sim_s['image'], 2),
            'scan_hz_per_robot': round(per_sim_s['scan'], 2),
            'odom_hz_per_robot': round(per_sim_s['odom'], 2),
            'detections_hz_per_robot': round(per_sim_s['detections'], 2),
            'sim_process_cpu_cores': round((cpu1 - cpu0) / wall, 3),
        }
    finally:
        graph.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='free-running phase, s')
    parser.add_argument('--locked-seconds', type=float, default=10.0, help='locked phase, s')
    parser.add_argument('--robots', type=int, default=2)
    args = parser.parse_args()
    free = run_phase(args.robots, 0.0, args.seconds)
    locked = run_phase(args.robots, 1.0, args.locked_seconds)
    result = {
        'real_time_factor': free['real_time_factor'],
        'locked_real_time_factor': locked['real_time_factor'],
        'robots': args.robots,
        'camera': '320x240 @ 10 Hz', 'lidar': '360 beams @ 10 Hz',
        'cores': os.cpu_count(),
        'load_average_1min_at_end': round(os.getloadavg()[0], 2),
        'free_running': free,
        'locked': locked,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    print(f'wrote {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
