"""Distribution detection and support windows (kpai_perception.ros_distro)."""

from __future__ import annotations

from datetime import date

from kpai_perception.ros_distro import SUPPORTED, current_distro, support_status


def test_ros_distro_of_a_sourced_ros_wins() -> None:
    assert current_distro({'ROS_DISTRO': 'kilted', 'KPAI_ROS_DISTRO': 'jazzy'}) == 'kilted'
    assert current_distro({'KPAI_ROS_DISTRO': 'jazzy'}) == 'jazzy'


def test_wheels_without_variables_are_named_by_rclpy_major_version() -> None:
    # this venv holds one of the two distributions' rclpy: its major version names it
    assert current_distro({}) in SUPPORTED


def test_support_windows() -> None:
    ok, line = support_status('jazzy', date(2026, 12, 6))
    assert ok and line.startswith('ROS 2 Jazzy Jalisco (LTS, supported until 2029-05-31')
    ok, line = support_status('kilted', date(2026, 12, 6))
    assert ok and 'supported until 2026-12-31, 25 days from now' in line
    ok, line = support_status('kilted', date(2027, 1, 2))
    assert not ok and 'end of life 2026-12-31, 2 days ago' in line
    assert 'KPAI_ROS_DISTRO=jazzy' in line
    assert support_status('humble', date(2026, 12, 6))[0] is False
    assert support_status(None)[0] is False
