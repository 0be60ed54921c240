"""Wandering data-collection policy: cruise when clear, turn toward open space when blocked."""

from __future__ import annotations

import math

from kpai_data.wander import WanderPolicy


def _scan(front: float, left: float, right: float, n: int = 360) -> list[float]:
    ranges = []
    for i in range(n):
        a = -math.pi + 2 * math.pi * i / n
        if abs(a) < 0.5:
            ranges.append(front)
        elif a > 0:
            ranges.append(left)
        else:
            ranges.append(right)
    return ranges


def test_cruises_when_clear_and_turns_toward_space() -> None:
    p = WanderPolicy(speed=0.4, seed=1)
    lin, _ = p.command(_scan(5.0, 5.0, 5.0), -math.pi, 2 * math.pi / 360)
    assert lin == 0.4
    lin, ang = p.command(_scan(0.5, 4.0, 1.0), -math.pi, 2 * math.pi / 360)
    assert lin == 0.0 and ang > 0  # more room on the left
    # keeps turning the same way while blocked (no dithering)
    lin, ang2 = p.command(_scan(0.5, 1.0, 4.0), -math.pi, 2 * math.pi / 360)
    assert lin == 0.0 and ang2 == ang
    q = WanderPolicy(seed=1)
    _, ang = q.command(_scan(0.5, 1.0, 4.0), -math.pi, 2 * math.pi / 360)
    assert ang < 0
    nan_scan = [float('nan')] * 360
    assert q.command(nan_scan, -math.pi, 2 * math.pi / 360)[0] > 0  # invalid returns ignored
