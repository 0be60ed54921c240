"""fleet_agent in its own process against a real Mosquitto and an in-test mission executor."""

from __future__ import annotations

import json
import math
import re
import signal
import threading
import time

import pytest
from kpai_fleet.mqtt_link import MqttLink
from kpai_perception.node_util import spin_until_stopped
from kpai_testing import agent_mqtt_params, fleet_broker, mqtt_login, wait_until

HDR = {'version': '2.0.0', 'manufacturer': 'KPAI', 'serialNumber': 'robot1',
       'timestamp': '2026-01-01T00:00:00.000Z'}
BASE = 'uagv/v2/KPAI/robot1'


class _DropGoalAnswers:
    """An action server handle that never sends its first `n` goal answers, as Fast DDS drops
    a response when the server has not matched the client's response reader yet."""

    def __init__(self, handle, n: int) -> None:
        self._handle, self.left = handle, n

    def send_goal_response(self, header, response) -> None:
        if self.left > 0:
            self.left -= 1
            return
        self._handle.send_goal_response(header, response)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self._handle.__enter__()

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


class MissionServer:
    """ExecuteMission action server + SetPaused service + odometry, on its own executor."""

    def __init__(self, domain_id: int, ns: str = '/robot1', step_s: float = 0.3,
                 drop_goal_answers: int = 0, drop_pause_answers: int = 0,
                 accept: bool = True, cancel_wind_down_s: float = 0.0) -> None:
        import rclpy
        from nav_msgs.msg import Odometry
        from rclpy.action import ActionServer, CancelResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        from kpai_msgs.action import ExecuteMission
        from kpai_msgs.srv import SetPaused

        self.ExecuteMission = ExecuteMission
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.node = rclpy.create_node('test_mission_executor', namespace=ns, context=self.ctx)
        group = ReentrantCallbackGroup()
        self.goals: list = []
        self.paused = False
        self.pause_calls: list[bool] = []
        self.step_s = step_s
        self.x = self.y = 0.0
        self.busy = False
        self.rejected = 0
        self.accept = accept
        self.cancel_wind_down_s = cancel_wind_down_s  # busy this long after a cancel request
        # like kpai_planning's executor: one mission at a time, a second goal is rejected
        self._server = ActionServer(self.node, ExecuteMission, 'execute_mission', self._execute,
                                    goal_callback=self._on_goal,
                                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                                    callback_group=group)
        if drop_goal_answers:
            self._server._handle = _DropGoalAnswers(self._server._handle, drop_goal_answers)
        self._srv = self.node.create_service(SetPaused, 'mission_executor/set_paused',
                                             self._set_paused, callback_group=group)
        if drop_pause_answers:
            send, left = self._srv.send_response, [drop_pause_answers]

            def send_some(response, header):
                if left[0] > 0:
                    left[0] -= 1
                    return
                send(response, header)
            self._srv.send_response = send_some
        self._odom = self.node.create_publisher(Odometry, 'odom', 10)
        self._odom_msg = Odometry
        self.node.create_timer(0.1, self._publish_odom, callback_group=group)
        self.executor = MultiThreadedExecutor(num_threads=3, context=self.ctx)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=spin_until_stopped,
                                        args=(self.executor, self._stop), daemon=True)
        self._thread.start()

    def _publish_odom(self) -> None:
        m = self._odom_msg()
        m.header.frame_id = 'robot1/odom'
        m.pose.pose.position.x, m.pose.pose.position.y = self.x, self.y
        m.pose.pose.orientation.w = 1.0
        self._odom.publish(m)

    def _set_paused(self, req, resp):
        self.pause_calls.append(req.paused)
        self.paused = req.paused
        resp.success, resp.message = True, 'paused' if req.paused else 'resumed'
        return resp

    def _on_goal(self, _goal):
        from rclpy.action import GoalResponse

        if self.busy or not self.accept:
            self.rejected += 1
            return GoalResponse.REJECT
        self.busy = True
        return GoalResponse.ACCEPT

    def _execute(self, handle):
        try:
            return self._run(handle)
        finally:
            self.busy = False

    def _run(self, handle):
        goal = handle.request
        self.goals.append(goal)
        result = self.ExecuteMission.Result()
        for i, step in enumerate(goal.steps):
            fb = self.ExecuteMission.Feedback()
            fb.current_step, fb.current_step_id, fb.current_step_type = i, step.step_id, step.type
            handle.publish_feedback(fb)
            end = time.monotonic() + (step.duration_s if step.type == 2 else self.step_s)
            while time.monotonic() < end or self.paused:
                if handle.is_cancel_requested:
                    time.sleep(self.cancel_wind_down_s)  # braking, as a real executor does
                    handle.canceled()
                    result.error_code = self.ExecuteMission.Result.CANCELED
                    result.message, result.steps_completed = 'canceled', i
                    return result
                time.sleep(0.02)
            self.x = step.target.pose.position.x
            self.y = step.target.pose.position.y
        handle.succeed()
        result.success, result.steps_completed = True, len(goal.steps)
        return result

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.executor.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()


class Observer:
    """An MQTT client with a persistent session recording everything about robot1."""

    def __init__(self, broker, client_id: str = 'test-observer') -> None:
        self.msgs: list[tuple[str, dict, float]] = []
        # the fleet server's identity: reads robot1's topics, writes its orders
        self.link = MqttLink(broker.url, client_id, subscriptions=((f'{BASE}/#', 1),),
                             on_message=self._on, **mqtt_login(broker))
        self.link.start()
        assert self.link.wait_connected(10)

    def _on(self, topic: str, payload: bytes) -> None:
        self.msgs.append((topic.rsplit('/', 1)[1], json.loads(payload), time.time()))

    def of(self, kind: str) -> list[dict]:
        return [m for k, m, _ in list(self.msgs) if k == kind]

    def last_state(self) -> dict:
        states = self.of('state')
        return states[-1] if states else {}

    def send(self, kind: str, body: dict, header_id: int = 1) -> None:
        self.link.publish(f'{BASE}/{kind}', json.dumps(dict(HDR, headerId=header_id, **body))
                          .encode())


def node(nid, seq, x, y, actions=()):
    return {'nodeId': nid, 'sequenceId': seq, 'released': True, 'actions': list(actions),
            'nodePosition': {'x': x, 'y': y, 'mapId': 'factory'}}


def edge(seq, a, b):
    return {'edgeId': f'{a}-{b}', 'sequenceId': seq, 'released': True, 'startNodeId': a,
            'endNodeId': b, 'actions': []}


def action(aid, kind, **params):
    return {'actionId': aid, 'actionType': kind, 'blockingType': 'HARD',
            'actionParameters': [{'key': k, 'value': v} for k, v in params.items()]}


@pytest.fixture
def broker():
    with fleet_broker(('robot1',)) as b:
        yield b


def wait_with_logs(graph, obs, condition, *, timeout, what):
    """wait_until; on a timeout print every process's log tail and the last VDA state."""
    try:
        return wait_until(condition, timeout=timeout, what=what)
    except TimeoutError:
        print(graph.dump_logs(), obs.last_state())
        raise


# the agent's heartbeat watches the in-test mission executor (the robot's other nodes are
# not started here, and would be reported as kpai.nodeMissing)
WATCH_TEST_EXECUTOR = ('-p', 'watched_nodes:=[test_mission_executor]',
                       '-p', "watched_lifecycle_nodes:=['']")


def start_agent(graph, broker, *extra):
    return graph.start_node('kpai_fleet', 'fleet_agent', '-r', '__ns:=/robot1', '-p',
                            f'broker_url:={broker.url}', '-p', 'visualization_period_s:=0.2',
                            *agent_mqtt_params(broker, 'robot1'), *WATCH_TEST_EXECUTOR, *extra,
                            name='fleet_agent')


def test_agent_executes_orders_and_reports_states(graph, broker):
    server = MissionServer(graph.domain_id)
    obs = Observer(broker)
    try:
        start_agent(graph, broker)
        wait_until(lambda: obs.of('connection') and obs.of('factsheet'), timeout=20,
                   what='connection + factsheet')
        assert obs.of('connection')[-1]['connectionState'] == 'ONLINE'
        assert obs.of('factsheet')[-1]['typeSpecification']['agvKinematic'] == 'DIFF'
        wait_until(lambda: len(obs.of('state')) >= 3, timeout=10, what='3 states')
        stamps = [t for k, _, t in obs.msgs if k == 'state'][-3:]
        assert max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) < 1.3  # >= 1 Hz
        assert len(obs.of('visualization')) >= len(obs.of('state'))

        # invalid order: rejected with a reason, the agent keeps going
        obs.send('order', {'orderId': 'bad', 'orderUpdateId': 0, 'nodes': [], 'edges': []})
        wait_until(lambda: any(e['errorType'] == 'validationError'
                               for e in obs.last_state().get('errors', [])), timeout=5,
                   what='validationError in state')

        nodes = [node('S', 0, 0, 0), node('P', 2, 2, 0, [action('pick1', 'pick', duration=0.3)]),
                 node('D', 4, 2, 2, [action('drop1', 'drop', duration=0.3)])]
        obs.send('order', {'orderId': 'o1', 'orderUpdateId': 0, 'nodes': nodes,
                           'edges': [edge(1, 'S', 'P'), edge(3, 'P', 'D')]}, header_id=2)
        wait_with_logs(graph, obs, lambda: server.goals, timeout=10,
                       what='goal at the mission executor')
        goal = server.goals[0]
        assert [s.type for s in goal.steps] == [0, 0, 3, 0, 4]
        assert goal.steps[1].target.pose.position.x == 2.0
        assert math.isclose(goal.steps[3].target.pose.orientation.z, math.sin(math.pi / 4))
        seen_running = []

        def done():
            st = obs.last_state()
            seen_running.extend(a['actionId'] for a in st.get('actionStates', [])
                                if a['actionStatus'] == 'RUNNING')
            return st.get('orderId') == 'o1' and not st['nodeStates'] and all(
                a['actionStatus'] == 'FINISHED' for a in st['actionStates']) and st[
                'actionStates']
        wait_until(done, timeout=15, what='order o1 finished')
        st = obs.last_state()
        assert (st['lastNodeId'], st['lastNodeSequenceId']) == ('D', 4)
        assert {'pick1', 'drop1'} <= set(seen_running)
        lasts = [s['lastNodeId'] for s in obs.of('state') if s['orderId'] == 'o1']
        assert 'P' in lasts  # progress was reported node by node
        wait_until(lambda: abs(obs.last_state()['agvPosition']['y'] - 2.0) < 1e-6, timeout=20,
                   what='position from odom')  # 5 s was too short on a loaded machine

        # pause / resume through the set_paused service
        obs.send('instantActions', {'actions': [action('pz', 'startPause')]}, header_id=3)
        wait_until(lambda: obs.last_state().get('paused') is True, timeout=5, what='paused')
        obs.send('instantActions', {'actions': [action('rs', 'stopPause')]}, header_id=4)
        wait_until(lambda: obs.last_state().get('paused') is False, timeout=5, what='resumed')
        assert server.pause_calls == [True, False]

        # a long order, cancelled
        obs.send('order', {'orderId': 'o2', 'orderUpdateId': 0,
                           'nodes': [node('D', 0, 2, 2, [action('w', 'wait', duration=30)])],
                           'edges': []}, header_id=5)
        wait_until(lambda: len(server.goals) == 2, timeout=10, what='second goal')
        obs.send('instantActions', {'actions': [action('c1', 'cancelOrder')]}, header_id=6)

        def cancelled():
            acts = {a['actionId']: a['actionStatus'] for a in
                    obs.last_state().get('actionStates', [])}
            return acts.get('c1') == 'FINISHED' and acts.get('w') == 'FAILED'
        wait_until(cancelled, timeout=10, what='cancelOrder finished')
        assert obs.last_state()['nodeStates'] == []

        # order update: stitched at the last base node; the running goal is replaced
        horizon = dict(node('F', 4, 6, 2), released=False)
        obs.send('order', {'orderId': 'o3', 'orderUpdateId': 0,
                           'nodes': [node('D', 0, 2, 2), node('E', 2, 4, 2), horizon],
                           'edges': [edge(1, 'D', 'E'), dict(edge(3, 'E', 'F'),
                                                             released=False)]}, header_id=7)
        wait_until(lambda: len(server.goals) == 3, timeout=10, what='third goal')
        obs.send('order', {'orderId': 'o3', 'orderUpdateId': 1,
                           'nodes': [node('E', 2, 4, 2),
                                     node('F', 4, 6, 2, [action('d3', 'drop', duration=0.2)])],
                           'edges': [edge(3, 'E', 'F')]}, header_id=8)

        def update_done():
            st = obs.last_state()
            return st.get('orderUpdateId') == 1 and st['lastNodeId'] == 'F' and not st[
                'nodeStates'] and {a['actionId']: a['actionStatus'] for a in
                                   st['actionStates']}.get('d3') == 'FINISHED'
        wait_until(update_done, timeout=15, what='updated order o3 finished')
        assert len(server.goals) == 4 and server.rejected == 0
        assert [s.step_id for s in server.goals[3].steps][-2:] == ['node:F:4', 'd3']
        assert server.x == 6.0
    finally:
        obs.link.stop()
        server.close()


def test_broker_restart_loses_no_state(graph, broker):
    obs = Observer(broker)
    try:
        agent = start_agent(graph, broker)
        wait_until(lambda: len(obs.of('state')) >= 2, timeout=20, what='states')
        obs.link.stop()  # observer away too: its persistent session must queue for it
        broker.stop()
        wait_until(lambda: max(map(int, re.findall(r'(\d+) messages buffered',
                                                   agent.output())), default=0) >= 3,
                   timeout=15, what='agent buffering 3 messages while the broker is down')
        assert agent.alive()
        broker.start()
        obs2 = Observer(broker)  # same client id: resumes the persistent session
        first = obs.of('state')[0]['headerId']
        wait_until(lambda: obs2.of('state') and obs2.of('state')[-1]['headerId'] >= first + 8,
                   timeout=20, what='states after the restart')
        ids = sorted({s['headerId'] for s in obs.of('state') + obs2.of('state')})
        assert ids[0] == first
        assert ids == list(range(first, ids[-1] + 1)), 'a state was lost across the restart'
        obs2.link.stop()
    finally:
        obs.link.stop()


def test_connection_offline_on_shutdown_and_last_will(graph, broker):
    import signal

    obs = Observer(broker, client_id='test-observer-conn')
    try:
        agent = start_agent(graph, broker)

        def conn():
            msgs = obs.of('connection')
            return msgs[-1]['connectionState'] if msgs else ''
        wait_until(lambda: conn() == 'ONLINE', timeout=20, what='ONLINE')
        assert agent.stop(sig=signal.SIGINT) == 0
        wait_until(lambda: conn() == 'OFFLINE', timeout=5, what='OFFLINE on shutdown')
        agent = start_agent(graph, broker)
        wait_until(lambda: conn() == 'ONLINE', timeout=20, what='ONLINE again')
        agent.stop(sig=signal.SIGKILL)  # no goodbye: the broker sends the last will
        wait_until(lambda: conn() == 'CONNECTIONBROKEN', timeout=10, what='last will')
    finally:
        obs.link.stop()


def _agent_with_one_order(graph, broker, obs, order_id):
    """A fleet agent waiting 1 s for answers, sent a one-edge order with a pick at its end."""
    agent = graph.start_node('kpai_fleet', 'fleet_agent', '-r', '__ns:=/robot1', '-p',
                             f'broker_url:={broker.url}', '-p', 'goal_response_timeout_s:=1.0',
                             *agent_mqtt_params(broker, 'robot1'), *WATCH_TEST_EXECUTOR,
                             name='fleet_agent')
    wait_until(lambda: obs.of('state'), timeout=20, what='first state')
    nodes = [node('S', 0, 0, 0), node('P', 2, 2, 0, [action('pick1', 'pick', duration=0.3)])]
    obs.send('order', {'orderId': order_id, 'orderUpdateId': 0, 'nodes': nodes,
                       'edges': [edge(1, 'S', 'P')]}, header_id=2)
    return agent


def test_lost_goal_answer_recovered_by_goal_id(graph, broker):
    """Lost answers (goal acceptance, set_paused): the order finishes, the pause is made."""
    server = MissionServer(graph.domain_id, drop_goal_answers=1, drop_pause_answers=1)
    obs = Observer(broker, client_id='test-observer-lost')
    try:
        agent = _agent_with_one_order(graph, broker, obs, 'lost')

        def finished():
            st = obs.last_state()
            return st.get('orderId') == 'lost' and not st['nodeStates'] and [
                a['actionStatus'] for a in st['actionStates']] == ['FINISHED']
        wait_with_logs(graph, obs, finished, timeout=20,
                       what='order finished without the goal answer')
        assert len(server.goals) == 1 and server.rejected == 0
        assert obs.last_state()['errors'] == []
        assert 'asking for its result by goal id' in agent.output()

        # a lost set_paused answer: asked again, the pause takes effect and is reported
        obs.send('instantActions', {'actions': [action('pz', 'startPause')]}, header_id=3)
        wait_until(lambda: obs.last_state().get('paused') is True, timeout=15, what='paused')
        assert server.pause_calls == [True, True]
        assert 'no answer from set_paused after 1 s; asking again' in agent.output()
    finally:
        obs.link.stop()
        server.close()


def test_goal_unknown_to_the_executor_fails_the_order(graph, broker):
    """A rejection whose answer was lost: the result by id is UNKNOWN, the order fails."""
    server = MissionServer(graph.domain_id, drop_goal_answers=1, accept=False)
    obs = Observer(broker, client_id='test-observer-unknown')
    try:
        _agent_with_one_order(graph, broker, obs, 'unknown')

        def failed():
            st = obs.last_state()
            return st.get('orderId') == 'unknown' and any(
                'does not know the goal' in e.get('errorDescription', '')
                for e in st.get('errors', []))
        wait_with_logs(graph, obs, failed, timeout=20,
                       what='order failed with the lost-goal reason')
        assert server.rejected == 1 and server.goals == []
    finally:
        obs.link.stop()
        server.close()


def test_restarted_agent_waits_for_the_cancelled_stale_goal_before_its_first(graph, broker):
    """kill -9 of the agent mid-mission: the new agent cancels the goal it does not know and
    sends the next order's goal only once that goal has ended (the executor winds down 6 s
    and rejects goals meanwhile). Sent on the cancel's answer alone, the goal was rejected and
    the re-offered order failed ('mission executor rejected the goal'; seen in a chaos demo)."""
    server = MissionServer(graph.domain_id, cancel_wind_down_s=6.0)
    obs = Observer(broker, client_id='test-observer-stale')
    try:
        first = graph.start_node('kpai_fleet', 'fleet_agent', '-r', '__ns:=/robot1', '-p',
                                 f'broker_url:={broker.url}',
                                 *agent_mqtt_params(broker, 'robot1'), *WATCH_TEST_EXECUTOR,
                                 name='fleet_agent_first')
        wait_until(lambda: obs.of('state'), timeout=20, what='first state')
        nodes = [node('S', 0, 0, 0), node('P', 2, 2, 0, [action('p1', 'pick', duration=60.0)])]
        obs.send('order', {'orderId': 'long', 'orderUpdateId': 0, 'nodes': nodes,
                           'edges': [edge(1, 'S', 'P')]}, header_id=2)
        wait_until(lambda: server.busy and len(server.goals) == 1, timeout=20,
                   what='the long mission running')
        first.stop(sig=signal.SIGKILL)
        seen = len(obs.of('connection'))
        start_agent(graph, broker)
        wait_until(lambda: len(obs.of('connection')) > seen
                   and obs.of('connection')[-1]['connectionState'] == 'ONLINE',
                   timeout=20, what='the new agent online')
        nodes = [node('S', 0, 0, 0), node('Q', 2, 1, 0, [action('p2', 'pick', duration=0.3)])]
        obs.send('order', {'orderId': 'next', 'orderUpdateId': 0, 'nodes': nodes,
                           'edges': [edge(1, 'S', 'Q')]}, header_id=3)

        def finished():
            st = obs.last_state()
            return st.get('orderId') == 'next' and not st['nodeStates'] and [
                a['actionStatus'] for a in st['actionStates']] == ['FINISHED']
        wait_with_logs(graph, obs, finished, timeout=30, what='the next order finished')
        assert server.rejected == 0
        assert [g.mission_id.split('#')[0] for g in server.goals][-1].startswith('next')
    finally:
        obs.link.stop()
        server.close()


def test_bad_goal_response_timeout_is_a_clear_error(graph, broker):
    agent = graph.start_node('kpai_fleet', 'fleet_agent', '-r', '__ns:=/robot1', '-p',
                             f'broker_url:={broker.url}', '-p', 'goal_response_timeout_s:=0.0',
                             name='fleet_agent')
    wait_until(lambda: not agent.alive(), timeout=20, what='agent exits on a bad parameter')
    assert agent.stop() == 2
    assert 'goal_response_timeout_s must be a number > 0, got 0.0' in agent.output()


def test_heartbeat_reports_missing_nodes_in_the_state(graph, broker):
    """A watched node that is not running is a kpai.nodeMissing error (FATAL if critical)."""
    server = MissionServer(graph.domain_id)
    try:
        obs = Observer(broker)
    except BaseException:
        server.close()  # an rclpy context left open ends the test process in std::terminate
        raise
    try:
        start_agent(graph, broker, '-p', 'watched_nodes:=[test_mission_executor, ghost, lamp]',
                    '-p', 'critical_nodes:=[ghost]', '-p', 'node_grace_s:=0.0')

        def missing() -> dict[str, str]:
            return {e['errorReferences'][0]['referenceValue']: e['errorLevel']
                    for e in obs.last_state().get('errors', [])
                    if e['errorType'] == 'kpai.nodeMissing'} if obs.of('state') else {}

        wait_with_logs(graph, obs, lambda: missing() == {'ghost': 'FATAL', 'lamp': 'WARNING'},
                       timeout=20, what='ghost and lamp reported missing')
        # a node that comes up is no longer reported
        import rclpy

        lamp = rclpy.create_node('lamp', namespace='/robot1', context=server.ctx)
        try:
            wait_with_logs(graph, obs, lambda: missing() == {'ghost': 'FATAL'}, timeout=20,
                           what='lamp no longer missing')
        finally:
            lamp.destroy_node()
    finally:
        obs.link.stop()
        server.close()
