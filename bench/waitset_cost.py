"""What a robot node's executor costs per callback, by the size of its wait set (issue 18, item 1).

rclpy's SingleThreadedExecutor rebuilds its wait set in Python on every wake-up: each
subscription, timer, service and guard condition of the node is entered and added again. Every
node carries entities it rarely uses: six parameter services, the type-description service
(Jazzy and later), and lifecycle nodes five more services. This benchmark measures what they
cost: N processes, one node each, that take what a robot node takes at the design rates
(sim time from /clock at 25 Hz, odometry at 20 Hz, a 20 Hz sim-time timer that publishes), in
several variants of the node:
- `default`: as rclpy builds it (parameter services, type-description service);
- `lean`: `start_parameter_services=False` and `start_type_description_service:=false`
  (8 entities fewer per node; `ros2 param` no longer reaches the node);
- `heavy`: the default plus 10 idle services (a lifecycle node and an action server's worth);
- `stack`: the default node spun as the stack's nodes spin it (kpai_perception.node_util:
  QosWatch instead of rclpy's per-entity QoS event handlers, LeanExecutor);
- `floor`: no executor: the same subscriptions taken by a bare loop over rclpy's C wait set
  (one wait set built once, the messages taken and dropped, the 20 Hz publish from the loop),
  what receiving costs below any Python executor.
Variants run --rounds times, alternating, for --seconds after a warm-up; the figure is the
nodes' CPU (user + system from /proc) as a share of one core, median over the rounds, and the
CPU per callback it implies (70 callbacks per node per second).

Run:  python bench/waitset_cost.py [--nodes 4] [--seconds 20] [--rounds 2]
Writes bench/results/waitset_cost.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from proc_share import share_of_core

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'waitset_cost.json'
VARIANTS = ('default', 'lean', 'heavy', 'stack', 'floor')
CALLBACKS_PER_NODE = 25 + 20 + 20  # /clock, odometry, timer (per second)


def _node_main(name: str, variant: str) -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from std_msgs.msg import Float64
    from std_srvs.srv import Trigger

    rclpy.init()
    overrides = [Parameter('use_sim_time', Parameter.Type.BOOL, True)]
    if variant == 'lean':
        overrides.append(Parameter('start_type_description_service', Parameter.Type.BOOL,
                                   False))
    node = rclpy.create_node(name, parameter_overrides=overrides,
                             start_parameter_services=variant != 'lean')
    node.create_subscription(Odometry, '/bench/odom', lambda _m: None, qos_profile_sensor_data)
    pub = node.create_publisher(Float64, f'/bench/{name}/out', 10)
    node.create_timer(0.05, lambda: pub.publish(Float64(data=1.0)))  # sim time: 20 Hz
    if variant == 'heavy':
        for i in range(10):
            node.create_service(Trigger, f'~/idle{i}', lambda _req, resp: resp)
    if variant == 'floor':
        _floor_loop(node, pub)
        return
    executor: Any = SingleThreadedExecutor()
    if variant == 'stack':
        from kpai_perception.lean_executor import LeanExecutor
        from kpai_perception.qos_watch import QosWatch
        QosWatch(node)
        executor = LeanExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _floor_loop(node: Any, pub: Any) -> None:
    """Take the node's subscriptions' messages with one C wait set, no executor; publish every
    50 ms of wall time (the timer's rate)."""
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    from std_msgs.msg import Float64

    subs = list(node.subscriptions)  # /bench/odom and the TimeSource's /clock
    ws = _rclpy.WaitSet(len(subs), 0, 0, 0, 0, 0, node.context.handle)
    out = Float64(data=1.0)
    due = time.monotonic()
    try:
        while node.context.ok():
            ws.clear_entities()
            for sub in subs:
                ws.add_subscription(sub.handle)
            ws.wait(int(max(0.0, due - time.monotonic()) * 1e9))
            for i, sub in enumerate(subs):
                if ws.is_ready('subscription', i):
                    sub.handle.take_message(sub.msg_type, False)
            if time.monotonic() >= due:
                pub.publish(out)
                due += 0.05
    except KeyboardInterrupt:
        pass


def _source_main() -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock

    rclpy.init()
    node = rclpy.create_node('bench_source')
    odom = node.create_publisher(Odometry, '/bench/odom', qos_profile_sensor_data)
    clock = node.create_publisher(Clock, '/clock', QoSProfile(depth=1))
    start = time.monotonic()

    def tick() -> None:  # sim time = wall time since start: the timers fire at their rates
        t = time.monotonic() - start
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = int(t), int((t % 1.0) * 1e9)
        clock.publish(msg)

    node.create_timer(1.0 / 20.0, lambda: odom.publish(Odometry()))
    node.create_timer(1.0 / 25.0, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _run(variant: str, nodes: int, seconds: float, warmup: float,
         env: dict[str, str]) -> float:
    """Run one variant; return the nodes' CPU as a share of one core."""
    return share_of_core([sys.executable, __file__, '--role', 'source'],
                         [[sys.executable, __file__, '--role', 'node', '--variant', variant,
                           f'bench_node{i}'] for i in range(nodes)], seconds, warmup, env)


def main() -> int:
    """Run the variants, alternating; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--role', default='bench', choices=['bench', 'node', 'source'])
    parser.add_argument('name', nargs='?', default='')
    parser.add_argument('--variant', default='default', choices=VARIANTS)
    parser.add_argument('--nodes', type=int, default=4)
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--warmup', type=float, default=10.0)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--variants', default=','.join(VARIANTS),
                        help=f'comma-separated, default all: {",".join(VARIANTS)}')
    parser.add_argument('--domain', type=int, default=123)
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == 'node':
        _node_main(args.name, args.variant)
        return 0
    if args.role == 'source':
        _source_main()
        return 0
    from kpai_bringup.middleware import apply_middleware_defaults

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    apply_middleware_defaults(env)  # the stack's own transport settings
    chosen = [v for v in args.variants.split(',') if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or 'default' not in chosen:
        parser.error(f'--variants: unknown {unknown}' if unknown else
                     '--variants must include default (the ratios are to it)')
    runs: dict[str, list[float]] = {v: [] for v in chosen}
    for r in range(args.rounds):
        for variant in chosen:
            share = _run(variant, args.nodes, args.seconds, args.warmup, env)
            runs[variant].append(round(100.0 * share, 2))
            print(f'round {r + 1}: {args.nodes} nodes, {variant}: {100.0 * share:.1f} % of a '
                  'core', flush=True)
    callbacks = args.nodes * CALLBACKS_PER_NODE
    medians = {k: round(statistics.median(v), 2) for k, v in runs.items()}
    result = {
        'nodes': args.nodes, 'seconds': args.seconds, 'rounds': args.rounds,
        'callbacks_per_s': callbacks,
        'cpu_pct_runs': runs,
        'cpu_pct_median': medians,
        'cpu_ms_per_callback_median': {k: round(10.0 * v / callbacks, 3)
                                       for k, v in medians.items()},
        **{f'ratio_{v}_to_default': round(medians[v] / medians['default'], 3)
           for v in chosen if v != 'default'},
        'notes': 'each node: use_sim_time with /clock at 25 Hz, odometry at 20 Hz, a 20 Hz '
                 'sim-time timer publishing std_msgs/Float64; lean = no parameter services, '
                 'no type-description service; heavy = default + 10 idle services; stack = '
                 'default entities, QosWatch + LeanExecutor; floor = a bare C wait-set loop '
                 'taking the same messages and publishing at 20 Hz; the source process is not '
                 'counted',
        'cpus': os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
