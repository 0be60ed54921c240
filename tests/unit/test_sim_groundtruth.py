"""Ground-truth boxes: where the object is drawn, consistent with projection, occlusion-aware."""

from __future__ import annotations

import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import dataclasses  # noqa: E402
import math  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from kpai_sim.groundtruth import box_corners, project_points  # noqa: E402
from kpai_sim.layout import PersonPath, StaticObject, build_layout  # noqa: E402
from kpai_sim.samples import CameraFrame  # noqa: E402
from kpai_sim.simulator import Simulator  # noqa: E402

from kpai_sim.config import SimConfig  # noqa: E402

HALL = {'size': [12.0, 8.0], 'wall': {'thickness': 0.2, 'height': 2.0},
        'rack': {'unit_length': 2.5, 'depth': 1.0, 'height': 2.0}}
RED = (0.9, 0.1, 0.1, 1.0)


@pytest.fixture(scope='module')
def scene() -> Iterator[tuple[Simulator, CameraFrame]]:
    base = build_layout(HALL, seed=0, people=0)
    objects = (
        StaticObject('box1', 'box', 3.0, 0.8, 0.0, (0.4, 0.8, 0.6), rgba=RED),
        # exactly behind box1 as seen from the camera: hidden
        StaticObject('box2', 'box', 5.0, 0.8 * (5.0 - 0.28) / (3.0 - 0.28), 0.0,
                     (0.3, 0.3, 0.3), rgba=RED),
        StaticObject('pallet1', 'pallet', 4.0, -1.1, 0.4, (1.2, 0.8, 0.144),
                     rgba=(0.2, 0.3, 0.9, 1.0)),
    )
    people = (PersonPath('person1', ((4.5, -0.2), (4.5, -0.25)), 0.0, 0.0),)
    layout = dataclasses.replace(base, objects=objects, people=people)
    sim = Simulator(SimConfig(people=1, camera_width=320, camera_height=240,
                              spawn=(('robot1', 0.0, 0.0, 0.0),)), layout=layout)
    sim.step()
    frame = sim.render_camera('robot1')
    yield sim, frame
    sim.close()


def projected_box(sim: Simulator, name: str) -> tuple[float, float, float, float]:
    state = next(s for s in sim.object_states() if s.name == name)
    pos, mat = sim.camera_pose('robot1')
    fx, fy, _, _ = sim.camera.intrinsics()
    uv = project_points(box_corners(state), pos, mat, fx, fy, sim.camera.width,
                        sim.camera.height)
    assert (uv[:, 2] > 0).all()
    return uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()


def test_visible_objects_and_occlusion(scene: tuple[Simulator, CameraFrame]) -> None:
    _, frame = scene
    names = {b.name: b.class_id for b in frame.boxes}
    assert names == {'box1': 'box', 'pallet1': 'pallet', 'person1': 'person'}


def test_box_matches_projection_of_an_unoccluded_box(
        scene: tuple[Simulator, CameraFrame]) -> None:
    sim, frame = scene
    for name in ('box1', 'pallet1'):
        seg = next(b for b in frame.boxes if b.name == name)
        proj = projected_box(sim, name)
        # the silhouette of a box is the hull of its projected corners: same bounds
        assert np.allclose((seg.xmin, seg.ymin, seg.xmax, seg.ymax), proj, atol=1.5), (seg, proj)


def test_person_box_lies_within_its_projected_bounds(
        scene: tuple[Simulator, CameraFrame]) -> None:
    sim, frame = scene
    seg = next(b for b in frame.boxes if b.name == 'person1')
    x0, y0, x1, y1 = projected_box(sim, 'person1')
    assert x0 - 1 <= seg.xmin < seg.xmax <= x1 + 1 and y0 - 1 <= seg.ymin < seg.ymax <= y1 + 1
    assert seg.size[1] > 2 * seg.size[0]  # a standing person is tall and narrow


def test_box_is_where_the_object_is_drawn(scene: tuple[Simulator, CameraFrame]) -> None:
    _, frame = scene
    img = frame.image.astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    red = (r - g > 60) & (r - b > 60)
    blue = (b - r > 60) & (b - g > 40)
    for name, mask in (('box1', red), ('pallet1', blue)):
        rows, cols = np.nonzero(mask)
        box = next(x for x in frame.boxes if x.name == name)
        drawn = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert np.allclose(drawn, (box.xmin, box.ymin, box.xmax, box.ymax), atol=2), (
            name, drawn, box)


def test_positions_are_in_the_optical_frame(scene: tuple[Simulator, CameraFrame]) -> None:
    sim, frame = scene
    x, y, z = frame.positions['box1']
    cam = sim.robot_spec.in_base('camera_optical')[:3, 3]
    # box1 centre (3.0, 0.8, 0.3): left of and below the camera, ahead of it
    assert z == pytest.approx(3.0 - cam[0], abs=1e-6)
    assert x == pytest.approx(-0.8, abs=1e-6) and y == pytest.approx(cam[2] - 0.3, abs=1e-6)
    fx, fy, cx, cy = sim.camera.intrinsics()
    box = next(b for b in frame.boxes if b.name == 'box1')
    u = fx * x / z + cx + 0.5  # the centre of box1's front face projects inside its box
    assert box.xmin < u < box.xmax
    assert not math.isnan(fy + cy)
