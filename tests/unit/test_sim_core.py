"""Simulation core: diff-drive kinematics, limits, bad commands, lidar, odometry, battery."""

from __future__ import annotations

import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import math  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from kpai_sim.drive import DiffDrive, DriveLimits  # noqa: E402
from kpai_sim.errors import ConfigError  # noqa: E402
from kpai_sim.layout import build_layout  # noqa: E402
from kpai_sim.samples import (  # noqa: E402
    BatterySample,
    CollisionEvent,
    OdomSample,
    ScanSample,
)
from kpai_sim.simulator import Simulator  # noqa: E402

from kpai_sim.config import SimConfig  # noqa: E402

# An empty 10 x 8 m hall with one dock on the east wall.
EMPTY = {
    'size': [10.0, 8.0], 'wall': {'thickness': 0.2, 'height': 2.0},
    'rack': {'unit_length': 2.5, 'depth': 1.0, 'height': 2.0},
    'docks': [{'x': 3.5, 'y': 2.0, 'yaw': 0.0, 'tag': 3}],
}


def make_sim(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, **cfg: object) -> Simulator:
    options: dict[str, object] = dict(people=0, camera_rate=0.0, odom_noise=0.0,
                                      lidar_noise=0.0, spawn=(('robot1', x, y, yaw),))
    options.update(cfg)
    return Simulator(SimConfig(**options),  # type: ignore[arg-type]
                     layout=build_layout(EMPTY, seed=0, people=0))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = make_sim(-2.0, -1.0, 0.3)
    yield s
    s.close()


def run(sim: Simulator, seconds: float, v: float, w: float) -> list[object]:
    out: list[object] = []
    for _ in range(round(seconds / sim.config.control_dt)):
        sim.command('robot1', v, w)
        out += sim.step()
    return out


def test_drive_limits_and_bad_commands() -> None:
    drive = DiffDrive(DriveLimits(max_linear=1.0, max_angular=1.0, max_linear_accel=0.5))
    assert drive.command(math.nan, 0.0, 0.0) is not None and drive.rejected == 1
    assert drive.command(0.2, math.inf, 0.0) is not None and drive.rejected == 2
    assert drive.target == (0.0, 0.0)
    assert 'clamped' in (drive.command(1e9, -1e9, 0.0) or '')
    assert drive.target == (1.0, -1.0) and drive.clamped == 1
    v, _ = drive.update(0.1, 0.1)
    assert v == pytest.approx(0.05)  # acceleration limited: 0.5 m/s^2 * 0.1 s
    for k in range(2, 40):
        drive.update(0.1, 0.1 * k)
    assert drive.setpoint == (0.0, 0.0)  # command timed out after 0.5 s: ramped to a stop
    with pytest.raises(ConfigError):
        DriveLimits(max_linear=-1.0).validate()


def test_unicycle_kinematics_and_odometry(sim: Simulator) -> None:
    # reference: integrate the same limited setpoints as an ideal unicycle
    ref = DiffDrive(sim.config.limits)
    x, y, yaw = sim.true_pose('robot1')
    dt = sim.config.control_dt
    last = None
    for k in range(400):
        ref.command(0.6, 0.4, k * dt)
        v, w = ref.update(dt, k * dt)
        x += v * math.cos(yaw + w * dt / 2) * dt
        y += v * math.sin(yaw + w * dt / 2) * dt
        yaw += w * dt
        sim.command('robot1', 0.6, 0.4)
        for s in sim.step():
            if isinstance(s, OdomSample):
                last = s
    tx, ty, tyaw = sim.true_pose('robot1')
    # the velocity servo lags the setpoint by ~50 ms: a few centimetres
    assert math.hypot(tx - x, ty - y) < 0.06
    assert abs(math.remainder(tyaw - yaw, 2 * math.pi)) < 0.05
    # noiseless odometry, expressed in map through the spawn pose, matches the true pose
    assert last is not None
    c, s = math.cos(0.3), math.sin(0.3)
    ox, oy = -2.0 + c * last.x - s * last.y, -1.0 + s * last.x + c * last.y
    assert math.hypot(ox - tx, oy - ty) < 0.01


def test_absurd_commands_are_clamped_and_state_stays_finite(sim: Simulator) -> None:
    for bad in ((math.nan, 0.0), (math.inf, -math.inf), (1e12, 1e12), (-1e300, 0.0)):
        sim.command('robot1', *bad)
        for _ in range(20):
            sim.step()
    assert np.all(np.isfinite(sim.data.qpos)) and np.all(np.isfinite(sim.data.qvel))
    v, _, w = sim.body_velocity('robot1')
    assert abs(v) <= sim.config.limits.max_linear + 0.05
    assert abs(w) <= sim.config.limits.max_angular + 0.05
    drive = sim.robots['robot1'].drive
    assert drive.rejected == 2 and drive.clamped == 2


def expected_range(x: float, y: float, angle: float, half_w: float, half_h: float) -> float:
    """Distance from (x, y) along angle to the inside of the hall rectangle."""
    dx, dy = math.cos(angle), math.sin(angle)
    ts = []
    if dx:
        ts.append(((half_w if dx > 0 else -half_w) - x) / dx)
    if dy:
        ts.append(((half_h if dy > 0 else -half_h) - y) / dy)
    return min(t for t in ts if t > 0)


def test_lidar_ranges_match_the_walls() -> None:
    sim = make_sim(-1.0, 0.5, 0.7, lidar_range_max=20.0)
    try:
        scan = next(s for s in sim.step() if isinstance(s, ScanSample))
        ox, oy, oyaw = sim.true_pose('robot1')
        laser = sim.robot_spec.in_base('laser')[:3, 3]
        lx = ox + laser[0] * math.cos(oyaw) - laser[1] * math.sin(oyaw)
        ly = oy + laser[0] * math.sin(oyaw) + laser[1] * math.cos(oyaw)
        errors = []
        for i, r in enumerate(scan.ranges):
            angle = oyaw + scan.angle_min + i * scan.angle_increment
            want = expected_range(lx, ly, angle, 5.0, 4.0)
            # the dock panel (x 4.25..4.35, y 1.6..2.4) blocks a few beams: skip those
            hit_y = ly + (4.25 - lx) * math.tan(angle) if math.cos(angle) > 0 else 99
            if 1.5 < hit_y < 2.5:
                continue
            errors.append(abs(float(r) - want))
        assert len(errors) > 340 and max(errors) < 0.01
        assert len(scan.ranges) == 360
    finally:
        sim.close()


def test_lidar_limits_give_inf() -> None:
    sim = make_sim(0.0, 0.0, 0.0, lidar_range_max=3.0)
    try:
        scan = next(s for s in sim.step() if isinstance(s, ScanSample))
        assert np.isinf(scan.ranges).all()  # every wall is farther than 3 m
    finally:
        sim.close()


def test_collision_with_wall_is_reported_once() -> None:
    sim = make_sim(3.5, -2.0, 0.0)
    try:
        events = [e for e in run(sim, 4.0, 0.8, 0.0) if isinstance(e, CollisionEvent)]
        assert [e.other for e in events] == ['wall_east']
        assert events[0].robot == 'robot1' and events[0].impact_speed > 0.3
        x, _, _ = sim.true_pose('robot1')
        assert x < 5.0 - 0.29  # the wall stopped it
    finally:
        sim.close()


def test_battery_drains_when_moving_and_charges_at_dock() -> None:
    moving = make_sim(-2.0, -2.0, 0.0)
    docked = make_sim(3.5, 2.0, 0.0)
    try:
        m = [s for s in run(moving, 3.0, 0.5, 0.0) if isinstance(s, BatterySample)]
        d = [s for s in run(docked, 3.0, 0.0, 0.0) if isinstance(s, BatterySample)]
        assert m[-1].soc < m[0].soc and not m[-1].charging
        assert d[-1].soc > d[0].soc and d[-1].charging
    finally:
        moving.close()
        docked.close()


def test_same_seed_same_run() -> None:
    def trace() -> list[tuple[float, float, float]]:
        s = Simulator(SimConfig(robots=('robot1', 'robot2'), seed=9, camera_rate=0.0))
        try:
            out = []
            for k in range(200):
                s.command('robot1', 0.5, 0.2 * math.sin(k / 20))
                s.step()
                out.append(s.true_pose('robot1'))
            out.append(s.true_pose('robot2'))
            return out
        finally:
            s.close()

    assert trace() == trace()


def _walker_sim(robot_x: float) -> Simulator:
    spec = dict(EMPTY, people_paths=[[[-4.0, 0.0], [4.0, 0.0], [4.0, 1.0], [-4.0, 1.0]]])
    cfg = SimConfig(people=1, camera_rate=0.0, odom_noise=0.0, lidar_noise=0.0,  # type: ignore[arg-type]
                    spawn=(('robot1', robot_x, 0.0, 0.0),))
    return Simulator(cfg, layout=build_layout(spec, seed=0, people=1))


def _person_xy(s: Simulator) -> tuple[float, float]:
    person = next(o for o in s.object_states() if o.class_id == 'person')
    return person.x, person.y


@pytest.mark.parametrize('ahead', [True, False])
def test_people_wait_for_a_robot_in_their_way(ahead: bool) -> None:
    # place the robot 1 m ahead of (or behind) the person on the first path leg
    probe = _walker_sim(3.5)
    person = probe.layout.people[0]
    x0, y0, heading = person.pose_along(0.0)
    probe.close()
    assert abs(y0) < 1e-9 and heading == 0.0, 'the walker must start on the first leg'
    s = _walker_sim(x0 + 1.0 if ahead else x0 - 1.0)
    try:
        before = _person_xy(s)
        for _ in range(20):
            s.step()
        moved = math.dist(before, _person_xy(s))
    finally:
        s.close()
    assert (moved < 1e-6) if ahead else (moved > 0.1), moved


def test_people_step_round_a_robot_that_stays_in_their_way() -> None:
    probe = _walker_sim(3.5)
    x0, _, _ = probe.layout.people[0].pose_along(0.0)
    probe.close()
    robot_x = x0 + 1.5  # the detour stays on the first leg (no corner up to x = 4)
    s = _walker_sim(robot_x)
    try:
        collisions, farthest = [], -math.inf
        for _ in range(round(10.0 / s.config.control_dt)):
            collisions += [e for e in s.step() if isinstance(e, CollisionEvent)]
            farthest = max(farthest, _person_xy(s)[0])
    finally:
        s.close()
    assert farthest > robot_x + 1.0, farthest  # passed the standing robot ...
    assert not collisions  # ... without touching it
