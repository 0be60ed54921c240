"""`make demo`: run the simulated factory fleet, dispatch transport tasks, print a summary.

Starts `sim_fleet.launch.yaml` through the kpai launcher (simulation, N robot stacks, MQTT
broker, fleet server, Foxglove server, recorder), watches the robots' ROS topics from a small
monitor node, keeps the robots busy with transport tasks through the fleet server's REST API,
and on Ctrl-C or after DURATION seconds stops everything and prints what happened. Output of
all processes goes to <run_dir>/launch.log; the summary is also written as summary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kpai_fleet.server.dispatch import NOT_READY_ERRORS

from .chaos import (
    LIFECYCLE_NODES,
    ROBOT_NODES,
    ChaosMonkey,
    Kill,
    NodeProc,
    robot_node_processes,
)
from .demo_estimate import DEFAULT_RATES, LAYOUTS, choose_rates, estimate
from .demo_summary import DemoTally, format_summary, process_tree_memory_bytes
from .demo_tasks import choose_task

__all__ = ['main']

MAX_ROBOTS = 4


PROBE_RETRY_S = 0.25  # a respawned node's readiness probe: a new call this often (s)
PROBE_PENDING = 8  # and answers to this many outstanding calls count
CHAOS_SETTLE_S = 30.0  # after the run, how long the last killed nodes have to come back


def _port(preferred: int) -> int:
    """Return preferred if it is free on loopback, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError('no free TCP port on 127.0.0.1')


# The stack's design rates (those of the simulation alone). Measured on 2 cores: 2 robots in
# real time (bench/results/stack_cpu_design_rates.json); 4 robots at a real-time factor of
# about 0.64, where the light rates 5/10/10 Hz keep real time (kpai_bringup.demo_estimate).
# When no rate is given the demo runs these where the machine is expected to hold them and the
# light rates otherwise (demo_estimate.choose_rates); a rate given fills the others from these.
DEMO_CAMERA_RATE, DEMO_ODOM_RATE, DEMO_CLOCK_RATE = DEFAULT_RATES
# camera: every frame costs ~10 Python callbacks down the stack; odometry: ~10 nodes read it or
# /tf, each message costs each one; clock: every use_sim_time node (about 20) handles each one
MEMORY_SAMPLE_S = 5.0  # peak memory sampled this often (s)


def rates_line(rates: tuple[float, float, float], reason: str) -> str:
    """The line that tells the demo's rates (bench/stack_cpu.py reads it)."""
    return (f'[demo] rates: camera {rates[0]:g} Hz, odometry {rates[1]:g} Hz, clock '
            f'{rates[2]:g} Hz ({reason})')


class Monitor:
    """An rclpy node that tallies what the robots do, spinning in a background thread."""

    def __init__(self, robots: list[str], tally: DemoTally) -> None:
        import rclpy
        from kpai_perception.node_util import spin_until_stopped
        from rclpy.executors import SingleThreadedExecutor

        self._rclpy = rclpy
        self.tally = tally
        self.robots = list(robots)
        self._lock = threading.Lock()
        self._clock: list[tuple[float, float]] = []  # (wall, sim) first and latest
        # (robot, node) -> (client, [(pending call, when it was sent)]) of node_ready
        self._calls: dict[tuple[str, str], tuple[Any, list[tuple[Any, float]]]] = {}
        rclpy.init(args=None)
        self.node = rclpy.create_node('kpai_demo_monitor')
        self._subscribe(robots)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        # short waits and a flag, not executor.spin(): a spin thread still waiting while the
        # main thread shuts rclpy down deadlocked the demo at exit (rclpy's logging teardown)
        self._thread = threading.Thread(target=spin_until_stopped, name='monitor',
                                        args=(self._executor, self._stop, 0.2), daemon=True)
        self._thread.start()

    def _subscribe(self, robots: list[str]) -> None:
        from nav_msgs.msg import Odometry
        from rclpy.qos import qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock
        from vision_msgs.msg import Detection2DArray

        from kpai_msgs.msg import Collision, InferenceStats, SafetyStatus

        n = self.node
        for name in robots:
            r = self.tally.robot(name)
            n.create_subscription(Odometry, f'/{name}/odom', self._odom(r), 10)
            n.create_subscription(Detection2DArray, f'/{name}/detections', self._dets(r), 10)
            n.create_subscription(SafetyStatus, f'/{name}/safety/status', self._safety(r), 10)
            n.create_subscription(Collision, f'/{name}/collisions', self._collision(r), 10)
            n.create_subscription(InferenceStats, f'/{name}/inference_stats', self._stats, 10)
        n.create_subscription(Clock, '/clock', self._on_clock, qos_profile_sensor_data)

    def _odom(self, r: Any) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            p = msg.pose.pose.position
            with self._lock:
                r.add_position(p.x, p.y)
        return cb

    def _dets(self, r: Any) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            labels = [d.results[0].hypothesis.class_id for d in msg.detections if d.results]
            with self._lock:
                r.add_detections(labels)
        return cb

    def _safety(self, r: Any) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self._lock:
                r.add_safety_state(msg.state == msg.PROTECTIVE_STOP)
        return cb

    def _collision(self, r: Any) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self._lock:
                r.add_collision(float(msg.impact_speed), with_robot=msg.other in self.robots)
            print(f'[demo] collision: {msg.robot} hit {msg.other} at {msg.impact_speed:.2f} m/s '
                  f'(x={msg.position.x:.2f}, y={msg.position.y:.2f}, '
                  f't={msg.header.stamp.sec} s sim time)', flush=True)
        return cb

    def _stats(self, msg: Any) -> None:
        if msg.frames_inferred == 0:
            return
        with self._lock:
            self.tally.inference_p50_ms.append(msg.inference.p50_ms)
            self.tally.inference_p99_ms.append(msg.inference.p99_ms)
            self.tally.bridge_p50_ms.append(msg.total.p50_ms)
            self.tally.bridge_p99_ms.append(msg.total.p99_ms)

    def _on_clock(self, msg: Any) -> None:
        sample = (time.monotonic(), msg.clock.sec + msg.clock.nanosec * 1e-9)
        with self._lock:
            if not self._clock:
                self._clock.append(sample)
            elif len(self._clock) == 1:
                self._clock.append(sample)
            else:
                self._clock[1] = sample

    def node_ready(self, robot: str, name: str, *, lifecycle: bool, since: float) -> bool:
        """Return True once /robot/name answers a call made after since (monotonic s).

        A node is back when it answers: get_state saying 'active' for a lifecycle node, else
        its get_parameters service. The graph alone cannot tell: a node killed with -9 stays
        in it until its participant's lease runs out, and a request may go to that dead
        server or reach the new one before it matched. So a call is made again every
        PROBE_RETRY_S while none was answered, and an answer to any of the last
        PROBE_PENDING calls counts (a slow node is not starved by newer calls).
        """
        from lifecycle_msgs.srv import GetState
        from rcl_interfaces.srv import GetParameters

        key = (robot, name)
        client, pending = self._calls.get(key, (None, []))
        if client is None:
            client = (self.node.create_client(GetState, f'/{robot}/{name}/get_state')
                      if lifecycle else self.node.create_client(
                          GetParameters, f'/{robot}/{name}/get_parameters'))
        pending = [(f, sent) for f, sent in pending if sent >= since]
        for future, _sent in pending:
            if not future.done():
                continue
            result = future.result()
            if result is not None and (not lifecycle
                                       or result.current_state.label == 'active'):
                self._calls[key] = (client, [])
                return True
        pending = [(f, sent) for f, sent in pending if not f.done()]
        now = time.monotonic()
        if (not pending or now - pending[-1][1] > PROBE_RETRY_S) and client.service_is_ready():
            pending.append((client.call_async(GetState.Request() if lifecycle
                                              else GetParameters.Request()), now))
            pending = pending[-PROBE_PENDING:]
        self._calls[key] = (client, pending)
        return False

    def real_time_factor(self) -> tuple[float, float]:
        """Return (sim seconds, wall seconds) elapsed since the first /clock message."""
        with self._lock:
            if len(self._clock) < 2:
                return 0.0, 0.0
            (w0, s0), (w1, s1) = self._clock
        return s1 - s0, w1 - w0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            print('[demo] warning: the monitor thread did not stop; skipping ROS shutdown',
                  file=sys.stderr, flush=True)
            return
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self._rclpy.try_shutdown()


class FleetClient:
    """The fleet server's REST API as the demo uses it."""

    def __init__(self, port: int, token: str) -> None:
        self.http = httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=5.0,
                                 headers={'Authorization': f'Bearer {token}'})

    def robots(self) -> list[dict[str, Any]]:
        return list(self.http.get('/api/robots').raise_for_status().json())

    def orders(self) -> list[dict[str, Any]]:
        return list(self.http.get('/api/orders', params={'limit': 10000})
                    .raise_for_status().json())

    def position(self, robot: str) -> tuple[float, float] | None:
        """Return the robot's map position from its latest state; None until it is localized."""
        r = self.http.get(f'/api/robots/{robot}/state')
        if r.status_code == 404:  # no state stored yet
            return None
        state = r.raise_for_status().json()
        position = (state.get('agvPosition') if isinstance(state, dict) else None) or {}
        if not position.get('positionInitialized'):
            return None
        return float(position['x']), float(position['y'])

    def stations(self) -> dict[str, tuple[float, float]]:
        data = self.http.get('/api/map').raise_for_status().json()
        return {name: (float(p['x']), float(p['y'])) for name, p in data['stations'].items()}

    def tasks(self) -> list[dict[str, Any]]:
        """Return the fleet's tasks (status, reason, current order)."""
        r = self.http.get('/api/tasks', params={'limit': 10000})
        r.raise_for_status()
        return list(r.json())

    def dispatch(self, pickup: str, dropoff: str, *, robot: str) -> dict[str, Any] | None:
        """Post a transport task for robot; None when it cannot take it now."""
        r = self.http.post('/api/tasks', json={'pickup': pickup, 'dropoff': dropoff,
                                               'robot': robot, 'load_s': 1.0, 'unload_s': 1.0})
        if r.status_code == 409:
            return None
        r.raise_for_status()
        return dict(r.json())


def _not_ready(robots: list[dict[str, Any]], names: list[str]) -> dict[str, str]:
    """Map each robot of names that is not ready for work to why (offline, nodes not up)."""
    by_id = {str(r.get('robot_id')): r for r in robots}
    out: dict[str, str] = {}
    for name in names:
        r = by_id.get(name)
        if r is None or name not in _online([r]):
            out[name] = 'not online at the fleet server'
            continue
        nodes = [str(e.get('description') or e.get('type')) for e in r.get('errors', [])
                 if e.get('type') in NOT_READY_ERRORS]
        if nodes:
            out[name] = '; '.join(nodes)
    return out


def _online(robots: list[dict[str, Any]]) -> set[str]:
    return {str(r.get('robot_id')) for r in robots
            if str(r.get('connection', 'ONLINE')).upper() == 'ONLINE'}


class Demo:
    """One run of the fleet demo."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.robots = [f'robot{i}' for i in range(1, args.robots + 1)]
        root = Path(os.environ.get('KPAI_ROOT', Path.cwd()))
        stamp = time.strftime('%Y%m%d-%H%M%S')
        self.run_dir = Path(args.run_dir or root / 'runs' / f'demo-{stamp}').resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {'mqtt': _port(1883), 'mqtts': _port(8883), 'fleet': _port(8080),
                      'foxglove': _port(8765)}
        self.mqtt_secrets = self.run_dir / 'mqtt'
        self.token = secrets.token_urlsafe(16)
        self.password = secrets.token_urlsafe(9)
        self.tally = DemoTally(camera_rate_hz=args.camera_rate, odom_rate_hz=args.odom_rate,
                               clock_rate_hz=args.clock_rate, layout=args.layout)
        self.stop_requested = threading.Event()
        self.launcher: subprocess.Popen[bytes] | None = None
        self.started_at = time.monotonic()
        self.dispatched: set[str] = set()
        self.stations: dict[str, tuple[float, float]] = {}
        self.rng = random.Random(args.seed)
        nodes = [n for n in args.chaos_nodes.split(',') if n] or list(ROBOT_NODES)
        unknown = sorted(set(nodes) - set(ROBOT_NODES))
        if unknown:
            raise SystemExit(f'--chaos-nodes: unknown node(s) {unknown}; the robot nodes are '
                             f'{", ".join(ROBOT_NODES)}')
        self.chaos = (ChaosMonkey(args.chaos, rng=random.Random(args.seed + 1), nodes=nodes)
                      if args.chaos > 0 else None)

    # -- processes ----------------------------------------------------------------------------
    def provision(self) -> None:
        """Give each robot and the fleet server its own MQTT identity before anything starts."""
        from kpai_fleet.credentials import CredentialStore

        store = CredentialStore(self.mqtt_secrets)
        store.add_server()
        for robot in self.robots:
            store.add_vehicle('KPAI', robot)

    def start(self) -> None:
        self.provision()
        cmd = [sys.executable, '-m', 'kpai_bringup.cli', 'launch', 'kpai_bringup',
               'sim_fleet.launch.yaml', '--max-starting', str(self.args.max_starting),
               f'robots:={self.args.robots}',
               f'run_dir:={self.run_dir}', f'mqtt_port:={self.ports["mqtt"]}',
               f'mqtts_port:={self.ports["mqtts"]}', f'mqtt_secrets:={self.mqtt_secrets}',
               f'fleet_port:={self.ports["fleet"]}', f'foxglove_port:={self.ports["foxglove"]}',
               f'record:={"true" if self.args.record else "false"}',
               f'camera_rate:={self.args.camera_rate}', f'odom_rate:={self.args.odom_rate}',
               f'clock_rate:={self.args.clock_rate}',
               f'one_process:={"true" if self.args.layout == "one_process" else "false"}']
        if self.args.model:
            cmd.append(f'model_path:={self.args.model}')
        if self.args.overlay:
            cmd.append(f'overlay:={Path(self.args.overlay).resolve()}')
        env = dict(os.environ, KPAI_FLEET_TOKEN=self.token, KPAI_FLEET_PASSWORD=self.password)
        self.started_at = time.monotonic()
        log = open(self.run_dir / 'launch.log', 'wb')  # noqa: SIM115 - owned by the child
        self.launcher = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        log.close()

    def launcher_alive(self) -> bool:
        return self.launcher is not None and self.launcher.poll() is None

    def stop(self) -> int:
        """SIGINT the launcher (it stops its whole tree), escalate on timeout."""
        if self.launcher is None:
            return 0
        for sig, wait in ((signal.SIGINT, 40.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if self.launcher.poll() is not None:
                break
            try:
                os.killpg(self.launcher.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.launcher.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.launcher.wait()

    def log_tail(self, lines: int = 25) -> str:
        text = (self.run_dir / 'launch.log').read_text(errors='replace').splitlines()
        return '\n'.join(text[-lines:])

    # -- the run ------------------------------------------------------------------------------
    def wait_for_fleet(self, fleet: FleetClient, deadline_s: float) -> None:
        """Block until every robot is ONLINE at the fleet server with all its nodes up.

        The robots' fleet agents report nodes that are not up yet (kpai.nodeStarting) or
        missing; on a timeout the error names each robot that is not ready and why.
        """
        deadline = time.monotonic() + deadline_s
        waiting: dict[str, str] = {r: 'not online' for r in self.robots}
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if not self.launcher_alive():
                raise RuntimeError('the launcher stopped during start-up')
            try:
                waiting = _not_ready(fleet.robots(), self.robots)
            except httpx.HTTPError:
                pass
            if not waiting:
                return
            self._sample_memory()
            time.sleep(1.0)
        if not self.stop_requested.is_set():
            raise RuntimeError(f'not ready after {deadline_s:.0f} s: ' + '; '.join(
                f'{r}: {why}' for r, why in sorted(waiting.items())))

    def keep_busy(self, fleet: FleetClient) -> None:
        """Give every idle, localized robot a short transport task near where it stands.

        Stations that another robot is heading to or standing at are left out, so robots do
        not send each other to the same spot.
        """
        if not self.stations:
            self.stations = fleet.stations()
        active = [o for o in fleet.orders() if o['status'] in ('dispatched', 'running')]
        busy = {o['robot_id'] for o in active}
        taken = {place.get('name') for o in active
                 for place in json.loads(o.get('task') or '{}').values()
                 if isinstance(place, dict)}
        robots = {str(r.get('robot_id')): r for r in fleet.robots()}
        for name in robots:
            here = fleet.position(name) if name in self.robots and name not in busy else None
            if here is None:
                continue
            others = [(float(r['x']), float(r['y'])) for n, r in robots.items()
                      if n != name and r.get('x') is not None]
            free = {n: p for n, p in self.stations.items() if n not in taken
                    and all(math.dist(p, o) > 2.0 for o in others)}
            pickup, dropoff = choose_task(here, free, self.rng)
            result = fleet.dispatch(pickup, dropoff, robot=name)
            if result is not None:
                taken |= {pickup, dropoff}
                self.dispatched.add(result['task_id'])
                print(f'[demo] task {result["order_id"]}: {pickup} -> {dropoff} '
                      f'for {result["robot_id"]}', flush=True)

    def count_tasks(self, fleet: FleetClient) -> None:
        """Count the demo's tasks by their status; a task may take several orders (a vehicle
        that lost one to a restarted node gets it again): the task list names the robot of
        its current one, so no list of every order is fetched."""
        ours = [t for t in fleet.tasks() if t['task_id'] in self.dispatched]
        done = [t for t in ours if t['status'] == 'completed']
        self.tally.tasks_dispatched = len(ours)
        self.tally.tasks_completed = len(done)
        self.tally.tasks_failed = sum(t['status'] == 'failed' for t in ours)
        for t in ours:
            if t['status'] == 'failed' and t['task_id'] not in self.tally.failures:
                reason = str(t.get('reason') or 'no reason given')
                self.tally.failures[t['task_id']] = reason
                print(f'[demo] task {t["task_id"]} failed on {t.get("robot_id") or "-"}: '
                      f'{reason}', flush=True)
        for name in self.robots:
            self.tally.robot(name).tasks_completed = sum(t.get('robot_id') == name
                                                         for t in done)

    def _sample_memory(self) -> None:
        if self.launcher is not None:
            # the launcher and every process it started are descendants of this process
            mem = process_tree_memory_bytes(os.getpid())
            self.tally.peak_memory_bytes = max(self.tally.peak_memory_bytes, mem)

    def run(self) -> int:
        print(f'[demo] starting the simulated fleet ({len(self.robots)} robots); '
              f'all output goes to {self.run_dir / "launch.log"}', flush=True)
        cores = os.cpu_count() or 1
        rates = (self.args.camera_rate, self.args.odom_rate, self.args.clock_rate)
        print(rates_line(rates, self.args.rates_reason), flush=True)
        print(f'[demo] layout {self.args.layout}: ' + (
            "each robot's nodes but the NPU bridge in one process (LAYOUT=processes: one "
            'each)' if self.args.layout == 'one_process' else 'one process per node'),
            flush=True)
        guess = estimate(len(self.robots), cores, rates, self.args.layout)
        print('[demo] ' + guess.message(len(self.robots), cores), flush=True)
        # the monitor first: if it cannot start (rclpy), no fleet is left running without us
        monitor = Monitor(self.robots, self.tally)
        fleet = FleetClient(self.ports['fleet'], self.token)
        code = 0
        try:
            self.start()
            self.wait_for_fleet(fleet, self.args.startup_timeout)
            self._print_urls()
            loop_done = threading.Event()
            chaos = None
            if self.chaos is not None:
                chaos = threading.Thread(target=self._chaos, args=(monitor, loop_done),
                                         name='chaos', daemon=True)
                chaos.start()
            try:
                self._loop(fleet, monitor)
            finally:
                loop_done.set()
                if chaos is not None:
                    chaos.join(timeout=CHAOS_SETTLE_S + 5.0)
        except (RuntimeError, httpx.HTTPError) as err:
            print(f'[demo] ERROR: {err}\n--- last lines of {self.run_dir}/launch.log ---\n'
                  f'{self.log_tail()}', file=sys.stderr, flush=True)
            code = 1
        finally:
            try:
                self.count_tasks(fleet)
            except httpx.HTTPError:
                pass
            self.tally.sim_time_s, self.tally.wall_time_s = monitor.real_time_factor()
            print('[demo] stopping...', flush=True)
            self.stop()
            monitor.close()
            fleet.http.close()
        self._finish()
        return code

    def _loop(self, fleet: FleetClient, monitor: Monitor) -> None:
        start = time.monotonic()
        next_status = start + 10.0
        next_check = start + 5.0
        next_memory = start
        while not self.stop_requested.is_set():
            if self.args.duration and time.monotonic() - start >= self.args.duration:
                break
            if not self.launcher_alive():
                raise RuntimeError('the launcher stopped (a required process died)')
            self.keep_busy(fleet)
            if time.monotonic() >= next_memory:  # PSS of ~25 processes costs kernel time
                next_memory += MEMORY_SAMPLE_S
                self._sample_memory()
            if self.args.until_tasks and time.monotonic() >= next_check:
                next_check += 5.0
                self.count_tasks(fleet)
                if all(self.tally.robot(r).tasks_completed >= self.args.until_tasks
                       for r in self.robots):
                    print(f'[demo] every robot completed {self.args.until_tasks} task(s)',
                          flush=True)
                    break
            if time.monotonic() >= next_status:
                next_status += 10.0
                self.count_tasks(fleet)
                sim, wall = monitor.real_time_factor()
                rtf = f'{sim / wall:.2f}' if wall > 0 else '-'
                print(f'[demo] t={time.monotonic() - start:5.0f} s  tasks completed '
                      f'{self.tally.tasks_completed}/{self.tally.tasks_dispatched}  '
                      f'real-time factor {rtf}', flush=True)
            self.stop_requested.wait(1.0)

    def _chaos(self, monitor: Monitor, loop_done: threading.Event) -> None:
        """Kill and watch (every 0.25 s) while the demo runs; then let the last ones recover."""
        assert self.chaos is not None
        settle_until = None
        while not self.stop_requested.is_set():
            if loop_done.is_set():
                settle_until = settle_until or time.monotonic() + CHAOS_SETTLE_S
                if time.monotonic() > settle_until or all(
                        k.recovered_at is not None for k in self.chaos.tally.kills):
                    return
            try:
                self._chaos_step(monitor, kill=not loop_done.is_set())
            except Exception as err:  # noqa: BLE001 - chaos must not end the demo
                print(f'[demo] chaos step failed: {err!r}', file=sys.stderr, flush=True)
            time.sleep(0.25)

    def _chaos_step(self, monitor: Monitor, *, kill: bool) -> None:
        assert self.chaos is not None and self.launcher is not None
        procs = robot_node_processes(self.launcher.pid)

        def is_back(k: Kill, now_procs: list[NodeProc]) -> bool:
            return any(p.robot == k.robot and p.node == k.node and p.pid != k.pid
                       for p in now_procs) and monitor.node_ready(
                           k.robot, k.node, lifecycle=k.node in LIFECYCLE_NODES, since=k.at)

        before = {id(k) for k in self.chaos.tally.kills if k.recovered_at is None}
        kill = self.chaos.step(time.monotonic(), procs, is_back, kill=kill)
        for k in self.chaos.tally.kills:
            if id(k) in before and k.recovered_at is not None:
                print(f'[demo] chaos: /{k.robot}/{k.node} is back after '
                      f'{k.time_to_recover:.1f} s', flush=True)
        if kill is not None:
            print(f'[demo] chaos: kill -9 /{kill.robot}/{kill.node} (pid {kill.pid})',
                  flush=True)
        self.tally.chaos = self.chaos.tally.to_dict()

    def _print_urls(self) -> None:
        p = self.ports
        up = time.monotonic() - self.started_at
        print(f'[demo] fleet is up ({len(self.robots)} robots, {up:.0f} s after the launch). '
              f'Look here:\n'
              f'  dashboard   http://127.0.0.1:{p["fleet"]}/  (user admin, password '
              f'{self.password})\n'
              f'  REST API    http://127.0.0.1:{p["fleet"]}/api/robots  (Authorization: Bearer '
              f'{self.token})\n'
              f'  Foxglove    ws://127.0.0.1:{p["foxglove"]}  (Foxglove app: Open connection)\n'
              f'  MQTT        mqtt://127.0.0.1:{p["mqtt"]}, mqtts://127.0.0.1:{p["mqtts"]}  '
              f'(VDA 5050 topics uagv/v2/KPAI/#; no anonymous access: one identity per robot '
              f'and the server, password files and the TLS CA in {self.mqtt_secrets})\n'
              f'  stop with Ctrl-C' + (f' (or after {self.args.duration:.0f} s)'
                                       if self.args.duration else ''), flush=True)
        (self.run_dir / 'endpoints.json').write_text(json.dumps({
            'dashboard': f'http://127.0.0.1:{p["fleet"]}/', 'user': 'admin',
            'password': self.password, 'token': self.token,
            'foxglove': f'ws://127.0.0.1:{p["foxglove"]}', 'mqtt_port': p['mqtt'],
            'mqtts_port': p['mqtts'], 'mqtt_secrets': str(self.mqtt_secrets)}, indent=2))

    def _finish(self) -> None:
        meta = self.run_dir / 'recording' / 'metadata.yaml'
        if meta.is_file():
            import yaml

            info = yaml.safe_load(meta.read_text()) or {}
            bag = info.get('rosbag2_bagfile_information', {})
            self.tally.messages_recorded = int(bag.get('message_count', 0))
            self.tally.recording_path = str(meta.parent)
        data = self.tally.to_dict()
        (self.run_dir / 'summary.json').write_text(json.dumps(data, indent=2))
        print(format_summary(data))
        print(f'run directory: {self.run_dir} (summary.json, launch.log, recording/)', flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='kpai demo', description=__doc__.splitlines()[0])
    p.add_argument('--robots', type=int, default=2, help=f'robots, 1..{MAX_ROBOTS} (default 2)')
    p.add_argument('--duration', type=float, default=0.0,
                   help='seconds to run once the fleet is up; 0 = until Ctrl-C')
    p.add_argument('--until-tasks', type=int, default=0,
                   help='also stop once every robot has completed this many tasks (0 = off)')
    p.add_argument('--run-dir', default='', help='where logs, database, recording and summary '
                   'go (default runs/demo-<date>-<time>)')
    p.add_argument('--model', default='', help='detector model (default: the shipped one)')
    p.add_argument('--overlay', default='', help='parameter overlay file for every node')
    p.add_argument('--seed', type=int, default=0, help='task choice seed (default 0)')
    p.add_argument('--camera-rate', type=float, default=None,
                   help=f'camera frames per second of every robot, sim time (default: the '
                   f'design rate {DEMO_CAMERA_RATE:g} where this machine is expected to hold '
                   f'the design rates in real time, else the light rates 5 / 10 / 10 Hz for '
                   f'camera / odometry / clock; a rate given fills the others from the design '
                   f'rates)')
    p.add_argument('--odom-rate', type=float, default=None,
                   help=f'odometry and odom->base_link transforms per second, sim time (design '
                   f'rate {DEMO_ODOM_RATE:g})')
    p.add_argument('--clock-rate', type=float, default=None,
                   help=f'/clock messages per second, sim time (design rate '
                   f'{DEMO_CLOCK_RATE:g}; sim-time timers such as the 20 Hz control loop fire '
                   f'at most this often)')
    p.add_argument('--no-record', dest='record', action='store_false',
                   help='do not record MCAP')
    p.add_argument('--layout', choices=LAYOUTS, default=None,
                   help="one_process: each robot's nodes but the NPU bridge in one process "
                        '(robot.launch.yaml one_process:=true; about a quarter less CPU per '
                        'robot, bench/results/layout_ab.json); processes: one process per '
                        'node, as on a real robot. Default one_process, processes with --chaos '
                        '(it kills single nodes)')
    p.add_argument('--chaos', type=float, default=0.0, metavar='SECONDS',
                   help='every SECONDS kill -9 a random node of a random robot and time its '
                        'recovery (0 = off)')
    p.add_argument('--max-starting', type=int, default=os.cpu_count() or 2, metavar='K',
                   help='staged start-up: start the next process while fewer than K are busy '
                        'starting (default: the number of cores; 0 = all at once)')
    p.add_argument('--chaos-nodes', default='', metavar='A,B',
                   help='node kinds chaos may kill (default: all robot nodes)')
    p.add_argument('--startup-timeout', type=float, default=240.0,
                   help='seconds to wait for every robot to come online')
    args = p.parse_args(argv)
    if not 1 <= args.robots <= MAX_ROBOTS:
        p.error(f'--robots must be 1..{MAX_ROBOTS} (ROBOTS={args.robots})')
    if args.layout is None:
        args.layout = 'processes' if args.chaos > 0 else 'one_process'
    elif args.layout == 'one_process' and args.chaos > 0:
        p.error('--chaos kills single nodes: it needs --layout processes')
    given = (args.camera_rate, args.odom_rate, args.clock_rate)
    if all(r is None for r in given):
        rates, args.rates_reason = choose_rates(args.robots, os.cpu_count() or 1, args.layout)
    else:
        rates = tuple(DEFAULT_RATES[i] if r is None else r for i, r in enumerate(given))
        args.rates_reason = 'the rates given'
    args.camera_rate, args.odom_rate, args.clock_rate = rates
    if args.duration < 0:
        p.error('--duration must be >= 0')
    if not (math.isfinite(args.clock_rate) and 1 <= args.clock_rate <= 1000):
        p.error(f'--clock-rate must be in [1, 1000] Hz (CLOCK_RATE={args.clock_rate})')
    if not (math.isfinite(args.odom_rate) and 1 <= args.odom_rate <= 200):
        p.error(f'--odom-rate must be in [1, 200] Hz (ODOM_RATE={args.odom_rate})')
    if not (math.isfinite(args.camera_rate) and 0 < args.camera_rate <= 60):
        p.error(f'--camera-rate must be in (0, 60] Hz (CAMERA_RATE={args.camera_rate})')
    if args.until_tasks < 0:
        p.error('--until-tasks must be >= 0')
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit code 0 when it ran and stopped cleanly."""
    args = _parse(argv)
    demo = Demo(args)

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        demo.stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return demo.run()


if __name__ == '__main__':
    sys.exit(main())
