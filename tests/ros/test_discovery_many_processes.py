"""Localhost discovery with more ROS processes than rmw_fastrtps's LOCALHOST mode reaches.

rmw_fastrtps (Jazzy and later) announces LOCALHOST participants to participant ids 0..31 only,
so two processes that both start after 32 others never find each other: the last robot of a
4-robot demo lost its own nodes that way. The stack's environment (kpai_bringup.middleware)
carries LOCALHOST out with its own Fast DDS profile, which reaches 64. Here 34 participants
are started first (one process, one rclpy context each); a talker and a listener started after
them must connect.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kpai_bringup.middleware import (
    LOCALHOST_PROFILE_NAME,
    PROFILE_VARS,
    localhost_profile,
    profile_vars,
)
from kpai_testing import ManagedProcess, next_domain_id, ros_env, wait_until

FILLERS = 34

FILLER = f"""
import signal, rclpy
from rclpy.context import Context
nodes = []
for i in range({FILLERS}):
    ctx = Context()
    rclpy.init(context=ctx)
    nodes.append(rclpy.create_node(f"filler{{i}}", context=ctx))
print("ready", flush=True)
signal.pause()
"""

TALKER = """
import rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("late_talker")
pub = node.create_publisher(String, "/late_chatter", 10)
node.create_timer(0.2, lambda: pub.publish(String(data="hello")))
rclpy.spin(node)
"""

LISTENER = """
import rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("late_listener")
node.create_subscription(String, "/late_chatter", lambda m: print("heard", m.data, flush=True), 10)
rclpy.spin(node)
"""


def _udp_ports_bound() -> set[int]:
    """Local UDP ports with a socket bound on this machine (from /proc/net/udp and udp6)."""
    ports = set()
    for name in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            ports.add(int(local.rsplit(':', 1)[1], 16))
    return ports


def test_the_stack_profile_keeps_discovery_on_localhost() -> None:
    path = Path(localhost_profile())
    assert path.name == LOCALHOST_PROFILE_NAME and path.is_file()
    ns = {'d': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    root = ET.parse(path).getroot()
    ranges = [int(e.text or '0') for e in root.iterfind('.//d:maxInitialPeersRange', ns)]
    assert ranges and min(ranges) >= 64
    peers = [e.text for e in root.iterfind('.//d:initialPeersList//d:address', ns)]
    assert peers == ['127.0.0.1']
    assert root.find('.//d:metatrafficMulticastLocatorList', ns) is None
    assert root.find('.//d:metatrafficUnicastLocatorList/d:locator', ns) is not None
    assert root.find('.//d:useBuiltinTransports', ns).text == 'false'  # type: ignore[union-attr]
    # UDP only (Fast DDS's shared memory can leave a respawned node without data:
    # test_respawn_delivery.py), with buffers that hold camera frames
    assert [e.text for e in root.iterfind('.//d:transport_descriptor/d:type', ns)] == ['UDPv4']
    for size in ('sendBufferSize', 'receiveBufferSize'):
        assert int(root.find(f'.//d:{size}', ns).text or '0') >= 4 << 20  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_processes_started_after_34_others_still_discover_each_other() -> None:
    env = ros_env(next_domain_id())
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SYSTEM_DEFAULT'
    # under the name this distribution's Fast DDS reads (2.x FASTRTPS_, 3.x FASTDDS_)
    assert [Path(env[v]).name for v in profile_vars(env)] == [LOCALHOST_PROFILE_NAME]
    procs = [ManagedProcess([sys.executable, '-c', FILLER], env=env, name='fillers')]
    try:
        wait_until(lambda: 'ready' in procs[0].output() or not procs[0].alive(), timeout=90,
                   what=f'{FILLERS} filler participants')
        assert procs[0].alive(), procs[0].output()
        # the profile is in force: no participant listens on the discovery multicast port
        # (without it, Fast DDS falls back to multicast discovery beyond this machine)
        domain = int(env['ROS_DOMAIN_ID'])
        assert _udp_ports_bound() >= {7410 + 250 * domain + 2 * i for i in range(FILLERS)}
        assert 7400 + 250 * domain not in _udp_ports_bound()
        procs.append(ManagedProcess([sys.executable, '-c', TALKER], env=env, name='talker'))
        procs.append(ManagedProcess([sys.executable, '-c', LISTENER], env=env,
                                    name='listener'))
        wait_until(lambda: 'heard hello' in procs[2].output(), timeout=45,
                   what='the late listener hearing the late talker')
    finally:
        for p in procs:
            p.stop()


@pytest.mark.timeout(120)
def test_stack_processes_and_plain_localhost_processes_discover_each_other() -> None:
    """A process on rmw's own LOCALHOST (a tool from another shell) and the stack's talk."""
    stack = ros_env(next_domain_id(), FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA')
    from kpai_bringup.middleware import apply_middleware_defaults

    apply_middleware_defaults(stack)  # what every process the launcher starts gets
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in stack
    plain = dict(stack, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                 FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA')
    for var in PROFILE_VARS:
        plain.pop(var, None)
    for talker_env, listener_env in ((stack, plain), (plain, stack)):
        procs = [ManagedProcess([sys.executable, '-c', TALKER], env=talker_env, name='talker'),
                 ManagedProcess([sys.executable, '-c', LISTENER], env=listener_env,
                                name='listener')]
        try:
            wait_until(lambda p=procs[1]: 'heard hello' in p.output(), timeout=45,
                       what='the listener hearing the talker')
        finally:
            for p in procs:
                p.stop()
