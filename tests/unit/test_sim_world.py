"""World generation: deterministic layout, valid MJCF, AprilTags that decode, spawn poses."""

from __future__ import annotations

import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import math  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from kpai_sim.apriltag import tag36h11_bitmap, tag36h11_count  # noqa: E402
from kpai_sim.errors import ConfigError, LayoutError, SimError  # noqa: E402
from kpai_sim.factory import (  # noqa: E402
    TAG_SIZE,  # noqa: E402
    CameraSpec,
    build_world,
)
from kpai_sim.layout import DOCK_STANDOFF, build_layout  # noqa: E402
from kpai_sim.robot_description import load_robot_spec  # noqa: E402
from kpai_sim.simulator import Simulator  # noqa: E402
from kpai_sim.spawn import choose_spawn_poses, validate_robot_names  # noqa: E402

from kpai_sim.config import SimConfig  # noqa: E402


def test_layout_is_deterministic_per_seed() -> None:
    a, b, c = build_layout(seed=3), build_layout(seed=3), build_layout(seed=4)
    assert a == b
    assert a.objects != c.objects
    assert {o.class_id for o in a.objects} >= {'rack', 'pallet', 'box'}
    assert len(a.docks) == 3 and len(a.people) == 4


def test_world_xml_is_deterministic_and_compiles() -> None:
    spec = load_robot_spec()
    layout = build_layout(seed=1)
    poses = choose_spawn_poses(layout, ('robot1', 'robot2', 'robot3'), seed=1)
    w1 = build_world(layout, spec, poses, CameraSpec())
    w2 = build_world(build_layout(seed=1), spec,
                     choose_spawn_poses(build_layout(seed=1), ('robot1', 'robot2', 'robot3'),
                                        seed=1), CameraSpec())
    assert w1.xml == w2.xml and w1.assets == w2.assets
    model = mujoco.MjModel.from_xml_string(w1.xml, w1.assets)
    assert model.nmocap == len(layout.people)
    assert model.nu == 3 * 3  # x, y, yaw velocity servos per robot
    for name in ('robot1/camera', 'robot3/camera'):
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name) >= 0


def test_spawn_poses_are_distinct_and_free() -> None:
    layout = build_layout(seed=5)
    poses = choose_spawn_poses(layout, tuple(f'robot{i}' for i in range(1, 7)), seed=5)
    for i, p in enumerate(poses):
        for q in poses[i + 1:]:
            assert math.hypot(p.x - q.x, p.y - q.y) >= 2.0
        for obj in layout.obstacles():
            # inside test against each footprint grown by the robot's half-diagonal
            local = np.array([p.x - obj.x, p.y - obj.y])
            c, s = math.cos(obj.yaw), math.sin(obj.yaw)
            lx, ly = c * local[0] + s * local[1], -s * local[0] + c * local[1]
            assert abs(lx) > obj.size[0] / 2 + 0.3 or abs(ly) > obj.size[1] / 2 + 0.3, obj.name


def test_bad_names_and_parameters_are_rejected() -> None:
    with pytest.raises(ConfigError, match='unknown robot name'):
        validate_robot_names(['robot1', 'truck'])
    with pytest.raises(ConfigError, match='duplicate'):
        validate_robot_names(['robot1', 'robot1'])
    with pytest.raises(ConfigError, match='camera size'):
        SimConfig(camera_width=0).validate()
    with pytest.raises(ConfigError, match='lidar_rate'):
        SimConfig(lidar_rate=math.nan).validate()
    with pytest.raises(ConfigError, match='unknown robot'):
        SimConfig(spawn=(('robot2', 0.0, 0.0, 0.0),)).validate()
    with pytest.raises(LayoutError):
        build_layout(people=-2)
    with pytest.raises(ConfigError, match='inside'):
        Simulator(SimConfig(spawn=(('robot1', 12.1, 0.0, 0.0),)))


def test_tag_bitmaps_decode() -> None:
    from kpai_perception.fiducials import apriltag_detector

    assert tag36h11_count() == 587
    det = apriltag_detector(families='tag36h11')
    for tag_id in (0, 7, 586):
        img = np.pad(np.kron(tag36h11_bitmap(tag_id), np.ones((12, 12), np.uint8)), 24,
                     constant_values=255)
        found = det.detect(img)
        assert [(d.tag_id, d.hamming) for d in found] == [(tag_id, 0)]
    with pytest.raises(SimError):
        tag36h11_bitmap(587)


def test_rendered_dock_tag_decodes() -> None:
    """A robot parked at a dock sees the dock's tag and the detector reads the right id."""
    from kpai_perception.fiducials import apriltag_detector

    layout = build_layout(seed=0, people=0)
    dock = layout.docks[1]
    back = 1.2  # metres behind the docking pose, facing the panel
    x, y = dock.x - back * math.cos(dock.yaw), dock.y - back * math.sin(dock.yaw)
    sim = Simulator(SimConfig(people=0, camera_rate=0, spawn=(('robot1', x, y, dock.yaw),)),
                    layout=layout)
    try:
        frame = sim.render_camera('robot1')
    finally:
        sim.close()
    gray = frame.image.mean(axis=2).astype(np.uint8)
    fx, fy, cx, cy = sim.camera.intrinsics()
    found = apriltag_detector(families='tag36h11').detect(
        gray, estimate_tag_pose=True, camera_params=(fx, fy, cx, cy), tag_size=TAG_SIZE * 0.8)
    assert [d.tag_id for d in found] == [dock.tag_id]
    # pose from the published intrinsics and tag size matches the known geometry
    cam_x = sim.robot_spec.in_base('camera_optical')[0, 3]
    want = back + DOCK_STANDOFF - cam_x - 0.002
    assert float(found[0].pose_t[2, 0]) == pytest.approx(want, abs=0.03)
    assert abs(float(found[0].pose_t[0, 0])) < 0.02  # straight ahead
