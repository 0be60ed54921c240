"""Unit tests for the transform buffer: chains, interpolation, static edges, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from kpai_perception.errors import ConnectivityError, ExtrapolationError, FrameLookupError
from kpai_perception.geometry import Transform
from kpai_perception.ros_conv import sec_to_stamp
from kpai_perception.tf_buffer import TransformBuffer
from tf2_msgs.msg import TFMessage
from transforms3d.euler import euler2quat


def _tf(x: float, y: float, z: float, yaw: float = 0.0) -> Transform:
    return Transform.create((x, y, z), euler2quat(0.0, 0.0, yaw))


def _robot_buffer() -> TransformBuffer:
    buf = TransformBuffer()
    buf.set_transform('map', 'robot1/odom', 0.0, _tf(10, 0, 0, math.pi / 2), static=True)
    buf.set_transform('robot1/odom', 'robot1/base_link', 1.0, _tf(0, 0, 0))
    buf.set_transform('robot1/odom', 'robot1/base_link', 2.0, _tf(2, 0, 0, math.pi / 2))
    buf.set_transform('robot1/base_link', 'robot1/camera_link', 0.0, _tf(0.3, 0, 0.6),
                      static=True)
    return buf


def test_chained_lookup_with_interpolation() -> None:
    buf = _robot_buffer()
    t = buf.lookup('map', 'robot1/camera_link', 1.5)
    # at 1.5 s the base is at odom (1, 0) with yaw 45 deg; odom is at map (10, 0) with yaw 90
    c = math.sqrt(0.5)
    base_in_odom = np.array([1 + 0.3 * c, 0.3 * c, 0.6])
    expected = np.array([10 - base_in_odom[1], base_in_odom[0], 0.6])
    np.testing.assert_allclose(t.apply([0, 0, 0]), expected, atol=1e-9)
    # the reverse lookup is the inverse
    back = buf.lookup('robot1/camera_link', 'map', 1.5)
    np.testing.assert_allclose(back.apply(expected), [0, 0, 0], atol=1e-9)
    # sibling frames through a common ancestor that is not the root
    buf.set_transform('robot1/base_link', 'robot1/laser', 0.0, _tf(0.25, 0, 0.12), static=True)
    np.testing.assert_allclose(buf.lookup('robot1/laser', 'robot1/camera_link', 1.2).apply(
        [0, 0, 0]), [0.05, 0, 0.48], atol=1e-12)


def test_latest_common_time_and_static_only() -> None:
    buf = _robot_buffer()
    assert buf.latest_common_time('map', 'robot1/camera_link') == 2.0
    np.testing.assert_allclose(buf.lookup('map', 'robot1/base_link').apply([0, 0, 0]),
                               [10, 2, 0], atol=1e-9)
    assert buf.latest_common_time('robot1/base_link', 'robot1/camera_link') is None
    # static edges hold at any time
    assert buf.can_transform('robot1/base_link', 'robot1/camera_link', 1e6)


def test_errors_are_specific() -> None:
    buf = _robot_buffer()
    with pytest.raises(FrameLookupError, match='robot2/base_link'):
        buf.lookup('map', 'robot2/base_link', 1.0)
    buf.set_transform('world', 'robot2/odom', 0.0, _tf(0, 0, 0), static=True)
    with pytest.raises(ConnectivityError, match='not connected'):
        buf.lookup('map', 'robot2/odom', 1.0)
    with pytest.raises(ExtrapolationError, match='future'):
        buf.lookup('map', 'robot1/base_link', 2.5)
    with pytest.raises(ExtrapolationError, match='past'):
        buf.lookup('map', 'robot1/base_link', 0.5)
    assert not buf.can_transform('map', 'robot1/base_link', 2.5)
    tolerant = TransformBuffer(tolerance=0.6)
    tolerant.set_transform('a', 'b', 2.0, _tf(1, 0, 0))
    np.testing.assert_allclose(tolerant.lookup('a', 'b', 2.5).translation, [1, 0, 0])


def test_cache_trimming_and_reparenting() -> None:
    buf = TransformBuffer(cache_time=5.0)
    for k in range(20):
        buf.set_transform('odom', 'base', float(k), _tf(k, 0, 0))
    with pytest.raises(ExtrapolationError):
        buf.lookup('odom', 'base', 10.0)
    np.testing.assert_allclose(buf.lookup('odom', 'base', 16.5).translation, [16.5, 0, 0])
    buf.set_transform('map', 'base', 30.0, _tf(0, 1, 0))  # re-parented: old history dropped
    assert not buf.can_transform('odom', 'base', 16.5)
    assert buf.can_transform('map', 'base', 30.0)
    with pytest.raises(ValueError):
        buf.set_transform('a', 'a', 0.0, _tf(0, 0, 0))


def test_add_tf_message_counts_bad_transforms() -> None:
    msg = TFMessage()
    good = TransformStamped()
    good.header.frame_id = '/map'  # a leading slash is tolerated
    good.header.stamp = sec_to_stamp(5.25)
    good.child_frame_id = 'robot1/odom'
    good.transform.translation.x = 1.0
    good.transform.rotation.w = 1.0
    bad = TransformStamped()
    bad.header.frame_id, bad.child_frame_id = 'map', 'robot1/odom2'
    bad.transform.rotation.w = math.nan
    unset = TransformStamped()
    unset.transform.rotation.w = 0.0  # zero quaternion
    unset.header.frame_id, unset.child_frame_id = 'map', 'x'
    msg.transforms = [good, bad, unset]
    buf = TransformBuffer()
    assert buf.add_message(msg, static=True) == 2
    assert buf.rejected == 2
    assert buf.frames() == {'map', 'robot1/odom'}
    np.testing.assert_allclose(buf.lookup('map', 'robot1/odom', 99.0).translation, [1, 0, 0])
