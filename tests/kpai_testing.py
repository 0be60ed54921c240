"""Helpers for the KPAI test tiers: isolated ROS environments, supervised processes, waits."""

from __future__ import annotations

import itertools
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    'ROOT',
    'ManagedProcess',
    'RosGraph',
    'agent_mqtt_params',
    'fleet_broker',
    'mqtt_login',
    'next_domain_id',
    'ros_env',
    'server_mqtt',
    'wait_until',
]

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar('T')

# Domain ids 1..100; start from a random offset so concurrent pytest runs rarely collide.
_domain_counter = itertools.count(random.SystemRandom().randrange(100))


def next_domain_id() -> int:
    """Return a ROS_DOMAIN_ID not used before by this test process."""
    return 1 + next(_domain_counter) % 100


def ros_env(domain_id: int, **extra: str) -> dict[str, str]:
    """Return an environment for child processes on domain_id with localhost-only discovery."""
    from kpai_bringup.middleware import apply_middleware_defaults

    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    apply_middleware_defaults(env)
    env.pop('ROS_STATIC_PEERS', None)
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = ''
) -> T:
    """Poll condition until it returns a truthy value; raise TimeoutError after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout:.1f} s waiting for {what or condition}')
        time.sleep(interval)


@contextmanager
def fleet_broker(robots: Sequence[str] = ('robot1', 'robot2'), *, manufacturer: str = 'KPAI',
                 **kwargs: Any) -> Iterator[Any]:
    """Start a Mosquitto that refuses anonymous clients, robots and the server provisioned."""
    from kpai_fleet.broker import LocalBroker
    from kpai_fleet.credentials import CredentialStore

    with tempfile.TemporaryDirectory(prefix='kpai-secrets-') as tmp:
        store = CredentialStore(Path(tmp) / 'mqtt')
        store.add_server()
        for robot in robots:
            store.add_vehicle(manufacturer, robot)
        with LocalBroker(credentials=store, **kwargs) as broker:
            yield broker


def mqtt_login(broker: Any, user: str = '') -> dict[str, str]:
    """Return MqttLink keyword arguments logging in as user (default: the fleet server)."""
    from kpai_fleet.credentials import SERVER_USER

    user = user or SERVER_USER
    return {'username': user, 'password': broker.credentials.password(user)}


def agent_mqtt_params(broker: Any, robot: str) -> list[str]:
    """Return the fleet agent's ROS arguments for robot's identity (a password file path)."""
    return ['-p', f'mqtt_username:={robot}',
            '-p', f'mqtt_password:={broker.credentials.password_file(robot)}']


def server_mqtt(broker: Any) -> tuple[str, dict[str, str]]:
    """Return the fleet server's broker URL (user, no password) and the env with its password."""
    from kpai_fleet.credentials import SERVER_USER

    return (f'mqtt://{SERVER_USER}@{broker.host}:{broker.port}',
            {'KPAI_FLEET_MQTT_PASSWORD': broker.credentials.password(SERVER_USER)})


class ManagedProcess:
    """A child process in its own session, output to a log file, always torn down."""

    def __init__(self, cmd: Sequence[str], *, env: dict[str, str], cwd: Path | None = None,
                 name: str = '') -> None:
        self.name = name or Path(cmd[0]).name
        fd, path = tempfile.mkstemp(prefix=f'kpai-{self.name}-', suffix='.log')
        self.log_path = Path(path)
        self._log = os.fdopen(fd, 'wb')
        self.stopped = False  # set by stop(): an exit after it is expected
        self.proc = subprocess.Popen(
            list(cmd), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """Return everything the process printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Send sig to the process only (not its group)."""
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, *, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Stop the process group: sig, then SIGTERM, then SIGKILL; return the exit code."""
        self.stopped = True
        for s, t in ((sig, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, s)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=t)
            except subprocess.TimeoutExpired:
                continue
        # reap anything left in the group (children that outlived the leader)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.proc.wait()


class RosGraph:
    """Processes and an in-test rclpy node, all on one private ROS domain."""

    def __init__(self, domain_id: int | None = None) -> None:
        self.domain_id = domain_id if domain_id is not None else next_domain_id()
        self.env = ros_env(self.domain_id)
        self.processes: list[ManagedProcess] = []
        self._context: Any = None
        self._node: Any = None
        self._executor: Any = None

    def start(self, cmd: Sequence[str], *, name: str = '', **extra_env: str) -> ManagedProcess:
        """Start cmd as a separate process on this graph's domain."""
        env = dict(self.env)
        env.update(extra_env)
        proc = ManagedProcess(cmd, env=env, cwd=ROOT, name=name)
        self.processes.append(proc)
        return proc

    def start_node(self, package: str, executable: str, *ros_args: str,
                   name: str = '', **extra_env: str) -> ManagedProcess:
        """Start an installed node executable (install/<pkg>/lib/<pkg>/<exe>)."""
        exe = find_executable(package, executable)
        cmd = [sys.executable, str(exe)] if _is_python_script(exe) else [str(exe)]
        if ros_args:
            cmd += ['--ros-args', *ros_args]
        return self.start(cmd, name=name or executable, **extra_env)

    def start_safety_limit(self, namespace: str, *ros_args: str,
                           limit: float = 1.5) -> ManagedProcess:
        """Start the safety-monitor test double: a constant speed limit in namespace."""
        cmd = [sys.executable, str(ROOT / 'tests' / 'safety_limit_stub.py'), '--ros-args',
               '-r', f'__ns:={namespace}', '-p', f'limit:={limit}', *ros_args]
        return self.start(cmd, name=f'safety_limit{namespace.replace("/", "_")}')

    @property
    def node(self) -> Any:
        """An rclpy node of the test process on this domain (created on first use)."""
        if self._node is None:
            import rclpy
            from rclpy.context import Context
            from rclpy.executors import SingleThreadedExecutor

            self._context = Context()
            rclpy.init(context=self._context, domain_id=self.domain_id)
            self._node = rclpy.create_node(
                f'kpai_test_{os.getpid()}', context=self._context)
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
        return self._node

    def spin_until(self, condition: Callable[[], T], *, timeout: float, what: str = '') -> T:
        """Spin the test node until condition() is truthy; TimeoutError with logs otherwise."""
        _ = self.node
        deadline = time.monotonic() + timeout
        while True:
            self._executor.spin_once(timeout_sec=0.02)
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f'timed out after {timeout:.1f} s waiting for {what or condition}\n'
                    + self.dump_logs())
            for p in self.processes:
                if not p.stopped and p.proc.poll() is not None and p.proc.returncode != 0:
                    raise RuntimeError(
                        f'{p.name} exited with {p.proc.returncode}\n' + self.dump_logs())

    def call(self, client: Any, request: Any, *, timeout: float = 10.0,
             resend_after: float | None = 3.0, during: Callable[[], None] = lambda: None,
             what: str = '') -> Any:
        """Call a service and return its response, spinning meanwhile (during() each turn).

        Fast DDS drops a response when the server has not yet matched this client's response
        reader (ros2/rmw_fastrtps#706), so an idempotent request (a query, setting a value) is
        sent again after resend_after s without an answer; None sends it once.
        """
        futures = [client.call_async(request)]
        resend_at = time.monotonic() + resend_after if resend_after else math.inf

        def answered() -> Any:
            nonlocal resend_at
            during()
            if time.monotonic() > resend_at:
                futures.append(client.call_async(request))
                resend_at = time.monotonic() + (resend_after or math.inf)
            return next((f for f in futures if f.done()), None)

        try:
            done = self.spin_until(answered, timeout=timeout,
                                   what=what or f'{client.srv_name} response')
        finally:
            for f in futures:
                if not f.done():
                    client.remove_pending_request(f)
        return done.result()

    def send_goal(self, client: Any, goal: Any, *, feedback_callback: Any = None,
                  response_timeout: float = 5.0) -> Any:
        """Send an action goal to a discovered server; return its goal handle (see .accepted).

        Fast DDS drops a service response when the server has not yet matched this client's
        response reader (it waits 100 ms, ros2/rmw_fastrtps#706): right after discovery a goal
        can run while its acceptance never arrives (seen once on a loaded 2-core run). After
        response_timeout without an answer the handle is rebuilt from the goal id as accepted;
        its get_result_async() asks the server for that goal by id, and a goal the server does
        not know ends with status UNKNOWN, so a test expecting success still fails on it.
        """
        import uuid

        from rclpy.action.client import ClientGoalHandle
        from unique_identifier_msgs.msg import UUID

        goal_id = UUID(uuid=list(uuid.uuid4().bytes))
        future = client.send_goal_async(goal, feedback_callback=feedback_callback,
                                        goal_uuid=goal_id)
        try:
            self.spin_until(future.done, timeout=response_timeout, what='goal response')
        except TimeoutError:
            print(f'goal response lost after {response_timeout:.0f} s; asking for the result '
                  'by goal id', file=sys.stderr)
            response = client._action_type.Impl.SendGoalService.Response(accepted=True)
            return ClientGoalHandle(client, goal_id, response)
        return future.result()

    def dump_logs(self, tail: int = 40) -> str:
        """Return the last lines of every process's output, for failure messages."""
        parts = []
        for p in self.processes:
            lines = p.output().splitlines()[-tail:]
            parts.append(f'--- {p.name} (pid {p.pid}) ---\n' + '\n'.join(lines))
        return '\n'.join(parts)

    def close(self) -> None:
        """Stop every process and the test node."""
        for p in reversed(self.processes):
            p.stop()
        if self._node is not None:
            self._executor.shutdown()
            self._node.destroy_node()
            self._context.try_shutdown()
            self._node = None


def find_executable(package: str, executable: str) -> Path:
    """Find lib/<package>/<executable> under AMENT_PREFIX_PATH or the workspace install/."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(str(ROOT / 'install' / package))
    for prefix in prefixes:
        candidate = Path(prefix) / 'lib' / package / executable
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f'executable {executable!r} of package {package!r} not found')


def _is_python_script(path: Path) -> bool:
    with open(path, 'rb') as f:
        first = f.readline()
    return first.startswith(b'#!') and b'python' in first


@contextmanager
def ros_graph(domain_id: int | None = None) -> Iterator[RosGraph]:
    """Context manager around RosGraph that always tears it down."""
    graph = RosGraph(domain_id)
    try:
        yield graph
    finally:
        graph.close()
