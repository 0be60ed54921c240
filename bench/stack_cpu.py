"""Stack CPU benchmark: where the 2-robot demo's CPU goes, per node (issue 18, item 1).

Runs this checkout's demo (`python -m kpai_bringup.demo --robots N --no-record`) on a private
ROS domain, waits for "[demo] fleet is up" and a settling time, then reads utime+stime of
every process of the demo's tree from /proc once a second over a window. Per node (a robot's
node, or an infrastructure process: sim, fleet server, broker, launcher, the demo itself):
- cpu_pct: percent of one core over the window (wall time);
- cpu_s_per_sim_s: CPU seconds per simulated second, from /clock read by a small rclpy node
  here. The machine may be shared: a slow simulation does less work per wall second, and
  this figure stays comparable where cpu_pct does not;
- the node's entities in the ROS graph (subscriptions, services and clients are what the
  executor waits on each turn; publishers for reference). Timers are not in the ROS graph.
With --py-spy ROBOT/NODE[,...] it then profiles those nodes (at the same time) with py-spy for
--py-spy-seconds and reports their top functions and the share of samples in the nodes'
callbacks vs rclpy's executor (wait-set building, taking messages, dispatching).
After the window it counts, for --census-seconds, the messages of every topic a robot node
subscribes to: each robot node's received messages per second and its CPU per message.

With --executor rclpy the stack's nodes run rclpy's own SingleThreadedExecutor and default
QoS event handlers (KPAI_EXECUTOR=rclpy), the baseline of bench/executor_ab.py.

Run:  python bench/stack_cpu.py [--window 20] [--robots 2] [--py-spy robot1/mission_executor]
          [--py-spy-native] [--demo-arg=--camera-rate=10 ...] [--executor lean|rclpy]
          [--out FILE]
Writes bench/results/stack_cpu.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kpai_bringup.proc_cpu import CpuAccount, label_for, read_tree
from kpai_bringup.pyspy_profile import parse_raw, split_by_role, top_functions
from kpai_perception.node_util import EXECUTOR_ENV, EXECUTORS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'stack_cpu.json'
CLK_TCK = os.sysconf('SC_CLK_TCK')
FLEET_UP = re.compile(r'^\[demo\] fleet is up')
RTF_LINE = re.compile(r'real-time factor ([0-9.]+)')
RATES_LINE = re.compile(r'^\[demo\] rates: camera ([0-9.]+) Hz, odometry ([0-9.]+) Hz, '
                        r'clock ([0-9.]+) Hz')


class DemoRun:
    """The demo as a child process; its output goes to a log and is watched for marks."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.up = threading.Event()
        self.rtf: float | None = None
        self.rates: dict[str, float] = {}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, name='demo-output', daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, 'w') as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()
                if FLEET_UP.search(line):
                    self.up.set()
                found = RTF_LINE.search(line)
                if found:
                    self.rtf = float(found.group(1))
                chosen = RATES_LINE.search(line)
                if chosen:
                    self.rates = {k: float(v) for k, v in
                                  zip(('camera', 'odom', 'clock'), chosen.groups(), strict=True)}

    def stop(self, timeout: float = 90.0) -> int:
        """Ask the demo to stop (SIGINT, as Ctrl-C) and wait; SIGKILL it if it does not."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f'[bench] the demo (pid {self.proc.pid}) did not stop; killing it',
                      file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5.0)
        return self.proc.returncode


class ClockWatch:
    """An rclpy node that keeps the latest /clock time and reads the ROS graph."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock

        self._rclpy = rclpy
        rclpy.init(args=None)
        self.node = rclpy.create_node('kpai_bench_stack_cpu')
        self._lock = threading.Lock()
        self.sim_time: float | None = None
        self.node.create_subscription(Clock, '/clock', self._on_clock, qos_profile_sensor_data)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name='clock', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.2)

    def _on_clock(self, msg: Any) -> None:
        with self._lock:
            self.sim_time = msg.clock.sec + msg.clock.nanosec * 1e-9

    def now(self) -> float | None:
        with self._lock:
            return self.sim_time

    def entities(self) -> dict[tuple[str, str], dict[str, int]]:
        """Return per (robot, node) the counts of its subscriptions, publishers, services,
        clients in the graph (robot '' for nodes outside /robotN)."""
        n = self.node
        out: dict[tuple[str, str], dict[str, int]] = {}
        for name, ns in n.get_node_names_and_namespaces():
            if name.startswith(('kpai_bench_', 'kpai_demo_monitor')):
                continue
            counts = {
                'subscriptions': len(n.get_subscriber_names_and_types_by_node(name, ns)),
                'publishers': len(n.get_publisher_names_and_types_by_node(name, ns)),
                'services': len(n.get_service_names_and_types_by_node(name, ns)),
                'clients': len(n.get_client_names_and_types_by_node(name, ns)),
            }
            counts['wait_set'] = counts['subscriptions'] + counts['services'] + counts['clients']
            out[(ns.strip('/'), name)] = counts
        return out

    def subscriptions(self) -> dict[tuple[str, str], list[str]]:
        """Return per (robot, node) the topics it subscribes to."""
        n = self.node
        out: dict[tuple[str, str], list[str]] = {}
        for name, ns in n.get_node_names_and_namespaces():
            if name.startswith(('kpai_bench_', 'kpai_demo_monitor')):
                continue
            out[(ns.strip('/'), name)] = sorted(
                t for t, _types in n.get_subscriber_names_and_types_by_node(name, ns))
        return out

    def topic_rates(self, topics: list[str], seconds: float) -> dict[str, float]:
        """Count the messages of each topic for seconds (raw: nothing is deserialised)."""
        from kpai_data.errors import DataError
        from kpai_data.ros_types import message_class
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)
        types = dict(self.node.get_topic_names_and_types())
        counts = dict.fromkeys(topics, 0)
        subs = []

        def counter(topic: str) -> Any:
            def on_message(_raw: bytes) -> None:
                with self._lock:
                    counts[topic] += 1
            return on_message

        for topic in topics:
            if not types.get(topic):
                continue
            try:
                msg_type = message_class(types[topic][0])
            except DataError as err:
                print(f'[bench] not counted: {topic} ({err})', flush=True)
                continue
            subs.append(self.node.create_subscription(msg_type, topic, counter(topic), qos,
                                                      raw=True))
        time.sleep(2.0)  # matching
        with self._lock:
            start = dict(counts)
        t0 = time.monotonic()
        time.sleep(seconds)
        with self._lock:
            end = dict(counts)
        wall = time.monotonic() - t0
        for sub in subs:
            self.node.destroy_subscription(sub)
        return {t: round((end[t] - start[t]) / wall, 1) for t in topics}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self._rclpy.try_shutdown()


def wait_for_clock(watch: ClockWatch, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = watch.now()
        if t is not None:
            return t
        time.sleep(0.1)
    raise SystemExit('no /clock message from the demo')


def measure(demo: DemoRun, watch: ClockWatch, window: float) -> tuple[CpuAccount, float, float]:
    """Sample the demo's process tree once a second over window s: (account, wall, sim)."""
    account = CpuAccount()
    sim0 = wait_for_clock(watch, 30.0)
    wall0 = time.monotonic()
    account.observe(read_tree(demo.proc.pid))
    while time.monotonic() - wall0 < window:
        time.sleep(min(1.0, max(0.0, window - (time.monotonic() - wall0))))
        account.observe(read_tree(demo.proc.pid))
    wall = time.monotonic() - wall0
    sim1 = watch.now()
    assert sim1 is not None
    return account, wall, sim1 - sim0


def profile(pid: int, seconds: float, rate: int, out: Path, native: bool = False
            ) -> dict[str, Any]:
    """py-spy record one process (without pausing it); return its summary."""
    exe = shutil.which('py-spy')
    if exe is None:
        return {'error': 'py-spy is not installed (scripts/setup.sh installs it)'}
    cmd = [exe, 'record', '-p', str(pid), '-d', str(int(seconds)), '-r', str(rate),
           '-f', 'raw', '-o', str(out)]
    # native frames need the process paused for each sample; otherwise do not pause it
    cmd += ['--native'] if native else ['--nonblocking']
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not out.is_file():
        return {'error': f'py-spy failed ({done.returncode}): {done.stderr.strip()[-300:]}'}
    stacks = parse_raw(out.read_text())
    roles = split_by_role(stacks)
    total = roles['total'] or 1
    return {
        'seconds': seconds, 'rate_hz': rate, 'samples': roles['total'],
        # samples of running threads / samples possible: about the CPU share of one core
        'active_fraction': round(roles['total'] / (rate * seconds), 3),
        'share': {k: round(v / total, 3) for k, v in roles.items() if k != 'total'},
        'top_functions': top_functions(stacks, 15),
    }


def profile_nodes(root: int, targets: list[str], seconds: float, rate: int,
                  run_dir: Path, native: bool = False) -> list[dict[str, Any]]:
    """py-spy the ROBOT/NODE targets at the same time; return one summary each."""
    tree = read_tree(root)
    out: list[dict[str, Any]] = []
    jobs: list[tuple[dict[str, Any], threading.Thread]] = []
    for target in targets:
        robot, _, node = target.rpartition('/')
        procs = [s for s in tree if label_for(s.argv) == (robot, node)]
        entry: dict[str, Any] = {'target': target}
        out.append(entry)
        if not procs:
            entry['error'] = 'no such node process'
            continue
        # the latest started runs the node (a wheels' re-exec parent would be the other one)
        pid = max(procs, key=lambda s: s.stat.starttime).stat.pid
        entry['pid'] = pid
        raw = run_dir / f'py-spy-{target.replace("/", "-")}.txt'
        job = threading.Thread(target=lambda e=entry, p=pid, r=raw: e.update(
            profile(p, seconds, rate, r, native)))
        jobs.append((entry, job))
    print(f'[bench] py-spy on {", ".join(e["target"] for e, _ in jobs)} for {seconds:g} s',
          flush=True)
    for _, job in jobs:
        job.start()
    for _, job in jobs:
        job.join()
    return out


def per_node(account: CpuAccount, wall: float, sim: float,
             entities: dict[tuple[str, str], dict[str, int]],
             alive: dict[tuple[int, int], object]) -> list[dict[str, Any]]:
    ticks = account.ticks_by_label()
    procs = account.processes_by_label()
    rss = account.rss_by_label(alive)
    rows = []
    for (robot, name), t in sorted(ticks.items(), key=lambda kv: -kv[1]):
        cpu_s = t / CLK_TCK
        rows.append({
            'robot': robot, 'node': name, 'processes': procs[(robot, name)],
            'cpu_s': round(cpu_s, 2), 'cpu_pct': round(100.0 * cpu_s / wall, 1),
            'cpu_s_per_sim_s': round(cpu_s / sim, 3) if sim > 0 else None,
            'rss_mib': round(rss.get((robot, name), 0) / 2**20, 1),
            'graph': entities.get((robot, name)),
        })
    return rows


def message_census(watch: ClockWatch, rows: list[dict[str, Any]], seconds: float
                   ) -> dict[str, Any]:
    """Messages per second each robot node receives, and its CPU per received message.

    Adds to each robot row `msgs_per_s` (the sum of its subscribed topics' rates, wall time)
    and `cpu_ms_per_msg` (its CPU over the window divided by that: timers' and the work's cost
    included, so an upper bound of the per-callback overhead).
    """
    subs = watch.subscriptions()
    topics = sorted({t for (robot, _n), ts in subs.items() if robot for t in ts})
    rates = watch.topic_rates(topics, seconds)
    for r in rows:
        ts = subs.get((r['robot'], r['node']))
        if not r['robot'] or ts is None:
            continue
        per_s = sum(rates.get(t, 0.0) for t in ts)
        r['subscribed'] = {t: rates.get(t, 0.0) for t in ts}
        r['msgs_per_s'] = round(per_s, 1)
        r['cpu_ms_per_msg'] = round(10.0 * r['cpu_pct'] / per_s, 3) if per_s > 0 else None
    robot_rows = [r for r in rows if r.get('msgs_per_s')]
    total_msgs = sum(r['msgs_per_s'] for r in robot_rows)
    total_pct = sum(r['cpu_pct'] for r in robot_rows)
    return {
        'seconds': seconds,
        'topic_hz': rates,
        'robot_nodes_msgs_per_s': round(total_msgs, 1),
        'robot_nodes_cpu_ms_per_msg': (round(10.0 * total_pct / total_msgs, 3)
                                       if total_msgs else None),
    }


def by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return robot node kinds with their mean and per-robot figures."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r['robot']:
            kinds.setdefault(r['node'], []).append(r)
    out = {}
    for kind, rs in sorted(kinds.items()):
        out[kind] = {
            'cpu_pct_mean': round(sum(r['cpu_pct'] for r in rs) / len(rs), 1),
            'cpu_s_per_sim_s_mean': round(sum(r['cpu_s_per_sim_s'] or 0 for r in rs) / len(rs), 3),
            'per_robot_cpu_pct': {r['robot']: r['cpu_pct'] for r in rs},
        }
    return out


def print_table(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    print(f'\n{"robot":8} {"node":26} {"proc":>4} {"cpu %":>6} {"cpu s/sim s":>11} '
          f'{"RSS MiB":>8} {"subs":>4} {"srv":>4} {"cli":>4} {"pub":>4} {"msg/s":>6} '
          f'{"ms/msg":>6}')
    for r in rows:
        g = r['graph'] or {}
        print(f'{r["robot"] or "-":8} {r["node"][:26]:26} {r["processes"]:4d} '
              f'{r["cpu_pct"]:6.1f} {r["cpu_s_per_sim_s"] or 0:11.3f} {r["rss_mib"]:8.1f} '
              + ' '.join(f'{g.get(k, "-"):>4}' for k in
                         ('subscriptions', 'services', 'clients', 'publishers'))
              + f' {r.get("msgs_per_s", "-")!s:>6} {r.get("cpu_ms_per_msg", "-")!s:>6}')
    t = result['totals']
    print(f'\ntotal {t["cpu_pct"]} % of one core ({t["cpu_s_per_sim_s"]} CPU s per sim s) over '
          f'{result["window_s"]} s wall = {result["sim_s"]} s sim (real-time factor '
          f'{result["real_time_factor"]}); per robot: '
          + ', '.join(f'{k} {v["cpu_pct"]} % ({v["cpu_s_per_sim_s"]} s/sim s)'
                      for k, v in result['per_robot'].items()))
    for prof in result.get('py_spy', []):
        if 'top_functions' not in prof:
            print(f'\npy-spy {prof["target"]}: {prof.get("error")}')
            continue
        print(f'\npy-spy {prof["target"]}: {prof["samples"]} samples, active '
              f'{prof["active_fraction"]}, share {prof["share"]}')
        for f in prof['top_functions'][:10]:
            print(f'  {f["self_share"]:6.1%} self {f["inclusive_share"]:6.1%} incl  '
                  f'{f["function"]}')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--robots', type=int, default=2)
    p.add_argument('--window', type=float, default=20.0, help='sampling window, s (default 20)')
    p.add_argument('--settle', type=float, default=10.0,
                   help='s to wait after the fleet is up before sampling (default 10)')
    p.add_argument('--py-spy', dest='py_spy', default='', metavar='ROBOT/NODE[,...]',
                   help='profile these nodes with py-spy after the window, all at once (e.g. '
                        'robot1/mission_executor,robot1/npu_bridge)')
    p.add_argument('--py-spy-seconds', type=float, default=10.0)
    p.add_argument('--py-spy-rate', type=int, default=100)
    p.add_argument('--py-spy-native', action='store_true',
                   help="also sample C/C++ frames (rclpy's and the middleware's)")
    p.add_argument('--domain', type=int, default=0,
                   help='ROS_DOMAIN_ID of the run (default: a random one in 101..200)')
    p.add_argument('--demo-arg', action='append', default=[], metavar='ARG',
                   help='extra argument for the demo, e.g. --demo-arg=--camera-rate=10')
    p.add_argument('--census-seconds', type=float, default=10.0,
                   help='after the window, count the messages of every topic a robot node '
                        'subscribes to for this long (0 = off)')
    p.add_argument('--executor', choices=EXECUTORS, default='lean',
                   help=f"the robot nodes' executor ({EXECUTOR_ENV}; default lean: the stack's, "
                        "rclpy: rclpy's SingleThreadedExecutor with its default QoS handlers)")
    p.add_argument('--keep', action='store_true', help='keep the run directory')
    p.add_argument('--out', type=Path, default=RESULTS, help=f'JSON file (default {RESULTS})')
    args = p.parse_args()
    if args.window < 5:
        p.error('--window must be >= 5 s')
    domain = args.domain or random.SystemRandom().randint(101, 200)
    os.environ['ROS_DOMAIN_ID'] = str(domain)  # before rclpy starts: this process's node too
    run_dir = Path(tempfile.mkdtemp(prefix='kpai-bench-stack-cpu-'))
    budget = (args.settle + args.window + args.census_seconds
              + (args.py_spy_seconds if args.py_spy else 0) + 60)
    cmd = [sys.executable, '-m', 'kpai_bringup.demo', '--robots', str(args.robots),
           '--duration', f'{budget:.0f}', '--no-record', '--run-dir', str(run_dir / 'run'),
           *args.demo_arg]
    print(f'[bench] {" ".join(cmd[1:])}  (ROS_DOMAIN_ID={domain}; output in '
          f'{run_dir / "demo.log"})', flush=True)
    watch = ClockWatch()
    demo = DemoRun(cmd, {**os.environ, EXECUTOR_ENV: args.executor}, run_dir / 'demo.log')
    result: dict[str, Any] = {}
    try:
        while not demo.up.wait(1.0):
            if demo.proc.poll() is not None:
                raise SystemExit(f'the demo ended before the fleet was up; see {demo.log}')
        print(f'[bench] fleet is up; settling {args.settle:g} s, then sampling '
              f'{args.window:g} s', flush=True)
        time.sleep(args.settle)
        account, wall, sim = measure(demo, watch, args.window)
        alive_now = {s.key: s for s in read_tree(demo.proc.pid)}
        entities = watch.entities()
        rows = per_node(account, wall, sim, entities, alive_now)
        census: dict[str, Any] = {}
        if args.census_seconds > 0:
            census = message_census(watch, rows, args.census_seconds)
        total_s = sum(r['cpu_s'] for r in rows)
        per_robot: dict[str, dict[str, float]] = {}
        for r in rows:
            if r['robot']:
                acc = per_robot.setdefault(r['robot'], {'cpu_s': 0.0})
                acc['cpu_s'] += r['cpu_s']
        for v in per_robot.values():
            v['cpu_pct'] = round(100.0 * v['cpu_s'] / wall, 1)
            v['cpu_s_per_sim_s'] = round(v['cpu_s'] / sim, 3) if sim > 0 else 0.0
            v['cpu_s'] = round(v['cpu_s'], 2)
        rates = dict(demo.rates)  # as the demo printed them (it may choose for the machine)
        result = {
            'commit': subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                                     capture_output=True, text=True).stdout.strip(),
            'dirty': bool(subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                                         cwd=ROOT, capture_output=True, text=True).stdout.strip()),
            'command': 'python bench/stack_cpu.py ' + ' '.join(sys.argv[1:]),
            'demo_command': ' '.join(cmd[1:]).replace(str(run_dir), '<tmp>'),
            'cores': os.cpu_count(),
            'load_avg_1m_at_end': round(os.getloadavg()[0], 2),
            'robots': args.robots,
            'executor': args.executor,
            'rates_hz': rates,
            'window_s': round(wall, 1),
            'sim_s': round(sim, 2),
            'real_time_factor': round(sim / wall, 2),
            'samples': account.observations,
            'totals': {'cpu_s': round(total_s, 2), 'cpu_pct': round(100.0 * total_s / wall, 1),
                       'cpu_s_per_sim_s': round(total_s / sim, 3) if sim > 0 else None},
            'per_robot': per_robot,
            'by_kind': by_kind(rows),
            'message_census': census,
            'nodes': rows,
            'notes': 'cpu_pct: percent of one core over the wall-time window; '
                     'cpu_s_per_sim_s: CPU seconds per simulated second (comparable on a '
                     'shared machine). graph.wait_set = subscriptions + services + clients '
                     '(what the executor waits on, besides timers and guard conditions, which '
                     'the ROS graph does not show). processes: how many processes had the '
                     'label in the window (a respawn or a re-exec parent adds one). py_spy: '
                     'samples of threads not sleeping, so on a loaded machine they include '
                     'time runnable but waiting for a core (active_fraction above the '
                     'cpu_pct/100 of the same node); shares are of those samples.',
        }
        if args.py_spy:
            result['py_spy'] = profile_nodes(demo.proc.pid, args.py_spy.split(','),
                                             args.py_spy_seconds, args.py_spy_rate, run_dir,
                                             args.py_spy_native)
            result['py_spy_native'] = args.py_spy_native
    finally:
        code = demo.stop()
        watch.close()
        if args.keep:
            print(f'[bench] run directory kept: {run_dir}')
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    if not result:
        return 1
    result['demo_exit_code'] = code
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + '\n')
    print_table(result['nodes'], result)
    print(f'written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
