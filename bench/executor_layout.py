"""Process layout benchmark: a robot's nodes in separate processes vs one process (issue 18).

The candidate cut "a per-robot container: the robot's nodes in one process, one executor"
only pays if rclpy's cost per callback drops when nodes share a process. Measured here
without the stack: N nodes that each take what every robot node takes at the design rates
(/clock at 25 Hz, odometry at 20 Hz, a 20 Hz timer that publishes), fed by one source
process. They run either as N processes, or as one process with one SingleThreadedExecutor
holding all N nodes (one rclpy context, so one DDS participant). Each layout runs --rounds
times, alternating, for --seconds after a warm-up; the figure is the nodes' CPU (user +
system from /proc) as a share of one core, median over the rounds.

Layout `one_process_shared_clock` is the container's best case: one process, and only its
first node takes /clock (one rclpy TimeSource can drive the clocks of all nodes of a
process), so the process takes 25 /clock messages a second instead of N x 25.
`--executor lean` spins as the stack does (kpai_perception's QosWatch and LeanExecutor);
`rclpy` with rclpy's SingleThreadedExecutor and default QoS event handlers.

Run:  python bench/executor_layout.py [--nodes 8] [--seconds 30] [--rounds 2]
          [--executor rclpy|lean] [--layouts processes,one_process,one_process_shared_clock]
Writes bench/results/executor_layout.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from proc_share import share_and_rate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'executor_layout.json'


LAYOUTS = ('processes', 'one_process', 'one_process_shared_clock')


def _count_writer(path: Path, counts: list[int]) -> None:
    """Write the callbacks run so far to path twice a second (a thread: no executor entity)."""
    tmp = path.with_suffix('.tmp')
    while True:
        tmp.write_text(str(counts[0]))
        tmp.replace(path)
        time.sleep(0.5)


def _read_counts(folder: Path) -> float:
    return float(sum(int(f.read_text() or 0) for f in folder.glob('*.count')))


def _nodes_main(names: list[str], executor_kind: str, shared_clock: bool,
                count_file: Path | None) -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Float64

    counts = [0]

    def counted(_msg: object = None) -> None:
        counts[0] += 1

    rclpy.init()
    executor = SingleThreadedExecutor()
    if executor_kind == 'lean':
        from kpai_perception.lean_executor import LeanExecutor
        from kpai_perception.qos_watch import QosWatch
        executor = LeanExecutor()
    for i, name in enumerate(names):
        node = rclpy.create_node(name)
        node.create_subscription(Odometry, '/bench/odom', counted, qos_profile_sensor_data)
        if i == 0 or not shared_clock:
            node.create_subscription(Clock, '/clock', counted, qos_profile_sensor_data)
        pub = node.create_publisher(Float64, f'/bench/{name}/out', 10)

        def tick(p: Any = pub) -> None:
            counted()
            p.publish(Float64(data=1.0))

        node.create_timer(0.05, tick)
        if executor_kind == 'lean':
            QosWatch(node)
        executor.add_node(node)
    if count_file is not None:
        threading.Thread(target=_count_writer, args=(count_file, counts), daemon=True).start()
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _source_main() -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock

    rclpy.init()
    node = rclpy.create_node('bench_source')
    odom = node.create_publisher(Odometry, '/bench/odom', qos_profile_sensor_data)
    clock = node.create_publisher(Clock, '/clock', qos_profile_sensor_data)
    node.create_timer(1.0 / 20.0, lambda: odom.publish(Odometry()))
    node.create_timer(1.0 / 25.0, lambda: clock.publish(Clock()))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _layout(layout: str, nodes: int, seconds: float, warmup: float, executor: str,
            env: dict[str, str]) -> tuple[float, float]:
    """Run one layout; return the nodes' CPU as a share of one core, and the callbacks per
    second the nodes report they ran (a layout that loses messages shows here)."""
    names = [f'bench_node{i}' for i in range(nodes)]
    groups = [[n] for n in names] if layout == 'processes' else [names]
    extra = ['--executor', executor] + (['--shared-clock'] if layout.endswith('clock') else [])
    with tempfile.TemporaryDirectory(prefix='kpai-layout-') as tmp:
        folder = Path(tmp)
        return share_and_rate(
            [sys.executable, __file__, '--role', 'source'],
            [[sys.executable, __file__, '--role', 'nodes', ','.join(g), *extra,
              '--count-file', str(folder / f'{i}.count')] for i, g in enumerate(groups)],
            seconds, warmup, env, counter=lambda: _read_counts(folder))


def callbacks_per_s(layout: str, nodes: int) -> int:
    """Messages and timer callbacks the nodes of a layout run per second."""
    clock_takers = 1 if layout == 'one_process_shared_clock' else nodes
    return 25 * clock_takers + nodes * (20 + 20)


def main() -> int:
    """Run both layouts, alternating; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--role', default='bench', choices=['bench', 'nodes', 'source'])
    parser.add_argument('names', nargs='?', default='')
    parser.add_argument('--nodes', type=int, default=8)
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--warmup', type=float, default=15.0)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--domain', type=int, default=121)
    parser.add_argument('--executor', default='rclpy', choices=['rclpy', 'lean'])
    parser.add_argument('--shared-clock', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--count-file', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--layouts', default='processes,one_process',
                        help=f'comma-separated, from {", ".join(LAYOUTS)}')
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == 'nodes':
        _nodes_main(args.names.split(','), args.executor, args.shared_clock, args.count_file)
        return 0
    if args.role == 'source':
        _source_main()
        return 0
    from kpai_bringup.middleware import apply_middleware_defaults

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    apply_middleware_defaults(env)  # the stack's own transport settings
    layouts = [x for x in args.layouts.split(',') if x]
    unknown = sorted(set(layouts) - set(LAYOUTS))
    if unknown or not layouts:
        parser.error(f'--layouts: unknown {unknown}; expected some of {", ".join(LAYOUTS)}')
    runs: dict[str, list[float]] = {x: [] for x in layouts}
    ran: dict[str, list[float]] = {x: [] for x in layouts}
    for r in range(args.rounds):
        for layout in runs:
            share, rate = _layout(layout, args.nodes, args.seconds, args.warmup, args.executor,
                                  env)
            runs[layout].append(round(100.0 * share, 1))
            ran[layout].append(round(rate, 1))
            expected = callbacks_per_s(layout, args.nodes)
            print(f'round {r + 1}: {args.nodes} nodes, {layout}: {100.0 * share:.1f} % of a '
                  f'core, {rate:.0f} callbacks/s run (expected {expected})', flush=True)
    callbacks = {x: callbacks_per_s(x, args.nodes) for x in layouts}
    medians = {k: round(statistics.median(v), 2) for k, v in runs.items()}
    first = layouts[0]
    result = {
        'nodes': args.nodes, 'seconds': args.seconds, 'rounds': args.rounds,
        'executor': args.executor,
        'callbacks_per_s': callbacks,
        'callbacks_per_s_run': ran,
        'cpu_pct_runs': runs,
        'cpu_pct_median': medians,
        'cpu_ms_per_callback_median': {k: round(10.0 * v / callbacks[k], 3)
                                       for k, v in medians.items()},
        f'ratio_to_{first}': {k: round(v / medians[first], 3) for k, v in medians.items()},
        'notes': 'each node: /clock 25 Hz (in one_process_shared_clock only the first node) '
                 'and odometry 20 Hz subscriptions, a 20 Hz timer publishing std_msgs/Float64; '
                 'the source process is not counted',
        'cpus': os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
