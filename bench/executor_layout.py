"""Process layout benchmark: a robot's nodes in separate processes vs one process (issue 18).

The candidate cut "a per-robot container: the robot's nodes in one process, one executor"
only pays if rclpy's cost per callback drops when nodes share a process. Measured here
without the stack: N nodes that each take what every robot node takes at the design rates
(/clock at 25 Hz, odometry at 20 Hz, a 20 Hz timer that publishes), fed by one source
process. They run either as N processes, or as one process with one SingleThreadedExecutor
holding all N nodes (one rclpy context, so one DDS participant). Each layout runs --rounds
times, alternating, for --seconds after a warm-up; the figure is the nodes' CPU (user +
system from /proc) as a share of one core, median over the rounds.

Run:  python bench/executor_layout.py [--nodes 8] [--seconds 30] [--rounds 2]
Writes bench/results/executor_layout.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from proc_share import share_of_core

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'executor_layout.json'


def _nodes_main(names: list[str]) -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Float64

    rclpy.init()
    executor = SingleThreadedExecutor()
    for name in names:
        node = rclpy.create_node(name)
        node.create_subscription(Odometry, '/bench/odom', lambda _m: None,
                                 qos_profile_sensor_data)
        node.create_subscription(Clock, '/clock', lambda _m: None, qos_profile_sensor_data)
        pub = node.create_publisher(Float64, f'/bench/{name}/out', 10)
        node.create_timer(0.05, lambda p=pub: p.publish(Float64(data=1.0)))
        executor.add_node(node)
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


def _layout(layout: str, nodes: int, seconds: float, warmup: float,
            env: dict[str, str]) -> float:
    """Run one layout; return the nodes' CPU as a share of one core."""
    names = [f'bench_node{i}' for i in range(nodes)]
    groups = [[n] for n in names] if layout == 'processes' else [names]
    return share_of_core([sys.executable, __file__, '--role', 'source'],
                         [[sys.executable, __file__, '--role', 'nodes', ','.join(g)]
                          for g in groups], seconds, warmup, env)


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
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == 'nodes':
        _nodes_main(args.names.split(','))
        return 0
    if args.role == 'source':
        _source_main()
        return 0
    from kpai_bringup.middleware import apply_middleware_defaults

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    apply_middleware_defaults(env)  # the stack's own transport settings
    runs: dict[str, list[float]] = {'processes': [], 'one_process': []}
    for r in range(args.rounds):
        for layout in runs:
            share = _layout(layout, args.nodes, args.seconds, args.warmup, env)
            runs[layout].append(round(100.0 * share, 1))
            print(f'round {r + 1}: {args.nodes} nodes, {layout}: {100.0 * share:.1f} % of a '
                  'core', flush=True)
    callbacks = args.nodes * (25 + 20 + 20)
    medians = {k: round(statistics.median(v), 2) for k, v in runs.items()}
    result = {
        'nodes': args.nodes, 'seconds': args.seconds, 'rounds': args.rounds,
        'callbacks_per_s': callbacks,
        'cpu_pct_runs': runs,
        'cpu_pct_median': medians,
        'cpu_ms_per_callback_median': {k: round(10.0 * v / callbacks, 3)
                                       for k, v in medians.items()},
        'ratio_one_process_to_processes': round(medians['one_process'] / medians['processes'],
                                                3),
        'notes': 'each node: /clock 25 Hz and odometry 20 Hz subscriptions, a 20 Hz timer '
                 'publishing std_msgs/Float64; the source process is not counted',
        'cpus': os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
