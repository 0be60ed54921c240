"""Shared fixtures; the tier marker of a test follows its directory (unit, ros, e2e)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kpai_testing import RosGraph, ros_graph

# Any ROS participant the tests create stays on this machine.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

_TIERS = {'unit', 'ros', 'e2e'}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(config.rootpath).parts
        if len(parts) > 1 and parts[0] == 'tests' and parts[1] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[1]))


@pytest.fixture
def graph() -> Iterator[RosGraph]:
    """A private ROS domain with process management and an in-test node."""
    with ros_graph() as g:
        yield g
