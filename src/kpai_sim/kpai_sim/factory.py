"""Generate the MuJoCo model (MJCF text and texture assets) of a factory layout with robots."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import cv2
import numpy as np

from .apriltag import tag36h11_bitmap
from .layout import PERSON_HEIGHT, PERSON_RADIUS, Layout, StaticObject
from .robot_description import RobotSpec

__all__ = [
    'LIDAR_GEOM_GROUPS',
    'SERVO_TAU',
    'Part',
    'static_parts',
    'tag_png',
    'CameraSpec',
    'RobotPose',
    'WorldModel',
    'build_world',
    'camera_xyaxes',
    'fovy_deg',
]

TAG_SIZE = 0.3  # printed tag side including its white ring, metres
TAG_HEIGHT = 0.6  # tag centre above the floor; the camera sits at 0.6 m too
PERSON_COLOURS = ((0.95, 0.85, 0.1), (0.95, 0.4, 0.1), (0.2, 0.7, 0.3), (0.85, 0.2, 0.25))
ROBOT_GEOM_GROUP = 0
SERVO_TAU = 0.02  # time constant of the base velocity servos, s
VISUAL_ONLY_GROUP = 1  # rendered, but excluded from lidar rays
LIDAR_GEOM_GROUPS = (1, 0, 1, 1, 1, 1)


@dataclass(frozen=True)
class RobotPose:
    """Name and spawn pose of one robot."""

    name: str
    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class CameraSpec:
    """Resolution and horizontal field of view of the robot cameras."""

    width: int = 320
    height: int = 240
    hfov: float = 1.2  # radians

    def intrinsics(self) -> tuple[float, float, float, float]:
        """Return fx, fy, cx, cy in the OpenCV convention (pixel centres at integers)."""
        f = (self.width / 2) / math.tan(self.hfov / 2)
        return f, f, (self.width - 1) / 2, (self.height - 1) / 2


@dataclass(frozen=True)
class WorldModel:
    """Everything needed to instantiate the simulation of one world."""

    xml: str
    assets: dict[str, bytes]
    layout: Layout
    robot: RobotSpec
    robots: tuple[RobotPose, ...]
    camera: CameraSpec


def fovy_deg(camera: CameraSpec) -> float:
    """Return MuJoCo's vertical field of view in degrees for square pixels."""
    return math.degrees(2 * math.atan(math.tan(camera.hfov / 2) * camera.height / camera.width))


def camera_xyaxes(optical_in_base: np.ndarray) -> tuple[float, ...]:
    """Return MuJoCo camera xyaxes (x right, y up, looking along -z) from the optical frame."""
    r = optical_in_base[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    return tuple(float(v) for v in np.concatenate([r[:, 0], r[:, 1]]))


def _fmt(*values: float) -> str:
    return ' '.join(f'{v:.6g}' for v in values)


def _box(parent: ET.Element, name: str, pos: tuple[float, float, float],
         half: tuple[float, float, float], rgba: tuple[float, ...], *, yaw: float = 0.0,
         collide: bool = True, **extra: str) -> ET.Element:
    attrs = {'name': name, 'type': 'box', 'pos': _fmt(*pos), 'size': _fmt(*half),
             'rgba': _fmt(*rgba), 'euler': _fmt(0, 0, yaw)}
    if not collide:
        attrs.update(contype='0', conaffinity='0', group=str(VISUAL_ONLY_GROUP))
    attrs.update(extra)
    return ET.SubElement(parent, 'geom', attrs)


@dataclass(frozen=True)
class Part:
    """One box of a static object, in the object's frame (x, y, z of its centre)."""

    name: str
    pos: tuple[float, float, float]
    half: tuple[float, float, float]
    rgba: tuple[float, float, float, float]


def static_parts(obj: StaticObject) -> list[Part]:
    """Return the boxes a static object is built of (shared by MuJoCo and Gazebo worlds)."""
    sx, sy, sz = obj.size
    if obj.class_id != 'rack':
        return [Part('body', (0.0, 0.0, obj.z + sz / 2), (sx / 2, sy / 2, sz / 2), obj.rgba)]
    # A rack: a solid kick plate (what the lidar and the map see), uprights and shelves.
    kick, post = 0.4, 0.04
    parts = [Part('kick', (0.0, 0.0, kick / 2), (sx / 2, sy / 2, kick / 2),
                  (0.25, 0.25, 0.28, 1.0))]
    for i, (ax, ay) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        parts.append(Part(f'post{i}', (ax * (sx / 2 - post), ay * (sy / 2 - post), sz / 2),
                          (post, post, sz / 2), obj.rgba))
    for k, h in enumerate((1.0, 1.6, sz - 0.03)):
        parts.append(Part(f'shelf{k}', (0.0, 0.0, h), (sx / 2, sy / 2, 0.03),
                          (0.85, 0.5, 0.15, 1.0)))
    # goods on the first shelf, part of the rack
    for k, dx in enumerate((-sx / 4, sx / 4)):
        parts.append(Part(f'goods{k}', (dx, 0.0, 1.03 + 0.2), (0.35, sy / 2 - 0.1, 0.2),
                          (0.7, 0.55, 0.35, 1.0)))
    return parts


def _add_static(world: ET.Element, obj: StaticObject) -> None:
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    for part in static_parts(obj):
        dx, dy, z = part.pos
        _box(world, f'{obj.name}/{part.name}', (obj.x + c * dx - s * dy, obj.y + s * dx + c * dy,
                                               z), part.half, part.rgba, yaw=obj.yaw)


def _add_dock(world: ET.Element, layout: Layout, index: int, asset_names: list[str]) -> None:
    dock = layout.docks[index]
    panel = dock.panel()
    _add_static(world, panel)
    c, s = math.cos(dock.yaw), math.sin(dock.yaw)
    # the tag on the panel face looking back at the docking robot
    face = panel.size[0] / 2 + 0.002
    tx, ty = panel.x - face * c, panel.y - face * s
    mat = f'tag{dock.tag_id}'
    if mat not in asset_names:
        asset_names.append(mat)
    ET.SubElement(world, 'geom', {
        'name': f'{dock.name}/tag', 'type': 'plane', 'pos': _fmt(tx, ty, TAG_HEIGHT),
        'size': _fmt(TAG_SIZE / 2, TAG_SIZE / 2, TAG_SIZE), 'xyaxes': _fmt(s, -c, 0, 0, 0, 1),
        'material': mat, 'contype': '0', 'conaffinity': '0', 'group': str(VISUAL_ONLY_GROUP)})
    # charging contacts marked on the floor
    _box(world, f'{dock.name}/pad', (dock.x, dock.y, 0.002), (0.3, 0.3, 0.002),
         (0.9, 0.8, 0.1, 1.0), yaw=dock.yaw, collide=False)


def _add_person(world: ET.Element, name: str, index: int, x: float, y: float) -> None:
    body = ET.SubElement(world, 'body', {'name': name, 'mocap': 'true', 'pos': _fmt(x, y, 0)})
    colour = PERSON_COLOURS[index % len(PERSON_COLOURS)]
    common = {'contype': '2', 'conaffinity': '0'}
    for side, dy in (('l', 0.1), ('r', -0.1)):
        ET.SubElement(body, 'geom', {
            'name': f'{name}/leg_{side}', 'type': 'capsule', 'size': '0.08',
            'fromto': _fmt(0, dy, 0.08, 0, dy, 0.85), 'rgba': '0.15 0.15 0.3 1', **common})
    ET.SubElement(body, 'geom', {
        'name': f'{name}/torso', 'type': 'capsule', 'size': _fmt(PERSON_RADIUS - 0.04),
        'fromto': _fmt(0, 0, 1.0, 0, 0, 1.35), 'rgba': _fmt(*colour, 1), **common})
    ET.SubElement(body, 'geom', {
        'name': f'{name}/head', 'type': 'sphere', 'size': '0.11',
        'pos': _fmt(0, 0, PERSON_HEIGHT - 0.11), 'rgba': '0.85 0.68 0.55 1', **common})


def _add_robot(world: ET.Element, actuators: ET.Element, spec: RobotSpec, pose: RobotPose,
               camera: CameraSpec) -> None:
    name = pose.name
    body = ET.SubElement(world, 'body', {'name': name, 'pos': _fmt(pose.x, pose.y, 0)})
    sx, sy, sz = spec.chassis_size
    izz = spec.mass * (sx * sx + sy * sy) / 12
    ET.SubElement(body, 'inertial', {
        'pos': _fmt(0, 0, spec.chassis_z), 'mass': _fmt(spec.mass),
        'diaginertia': _fmt(spec.mass * (sy * sy + sz * sz) / 12,
                            spec.mass * (sx * sx + sz * sz) / 12, izz)})
    for axis, jtype, vec in (('x', 'slide', '1 0 0'), ('y', 'slide', '0 1 0'),
                             ('yaw', 'hinge', '0 0 1')):
        ET.SubElement(body, 'joint', {'name': f'{name}/{axis}', 'type': jtype, 'axis': vec,
                                      'limited': 'false'})
    _box(body, f'{name}/chassis', (0, 0, spec.chassis_z), (sx / 2, sy / 2, sz / 2),
         (0.95, 0.45, 0.1, 1.0), contype='1', conaffinity='3')
    # stripe on the front so turning is visible and the front is obvious
    _box(body, f'{name}/stripe', (sx / 2 - 0.02, 0, spec.chassis_z + sz / 2 + 0.002),
         (0.02, sy / 2, 0.004), (0.1, 0.1, 0.1, 1.0), collide=False)
    r = spec.wheel_radius
    for side in (1, -1):
        ET.SubElement(body, 'geom', {
            'name': f'{name}/wheel{side}', 'type': 'cylinder', 'size': _fmt(r, 0.02),
            'pos': _fmt(0, side * spec.wheel_separation / 2, r), 'euler': _fmt(math.pi / 2, 0, 0),
            'rgba': '0.1 0.1 0.1 1', 'contype': '0', 'conaffinity': '0',
            'group': str(VISUAL_ONLY_GROUP)})
    cam = spec.in_base('camera_optical')
    cx, cy, cz = (float(v) for v in cam[:3, 3])
    _box(body, f'{name}/mast', (cx - 0.03, cy, (spec.chassis_z + sz / 2 + cz) / 2),
         (0.02, 0.02, (cz - spec.chassis_z - sz / 2) / 2), (0.3, 0.3, 0.3, 1.0), collide=False)
    _box(body, f'{name}/camera_housing', (cx - 0.01, cy, cz), (0.015, 0.05, 0.015),
         (0.1, 0.1, 0.1, 1.0), collide=False)
    ET.SubElement(body, 'camera', {
        'name': f'{name}/camera', 'pos': _fmt(cx, cy, cz), 'xyaxes': _fmt(*camera_xyaxes(cam)),
        'fovy': _fmt(fovy_deg(camera))})
    lx, ly, lz = (float(v) for v in spec.in_base('laser')[:3, 3])
    ET.SubElement(body, 'site', {'name': f'{name}/laser', 'pos': _fmt(lx, ly, lz),
                                 'size': '0.02', 'group': str(VISUAL_ONLY_GROUP)})
    tau = SERVO_TAU
    for axis, gain, limit in (('x', spec.mass / tau, spec.mass * 8),
                              ('y', spec.mass / tau, spec.mass * 8),
                              ('yaw', izz / tau, izz * 40)):
        ET.SubElement(actuators, 'velocity', {
            'name': f'{name}/{axis}', 'joint': f'{name}/{axis}', 'kv': _fmt(gain),
            'forcelimited': 'true', 'forcerange': _fmt(-limit, limit)})


def tag_png(tag_id: int) -> bytes:
    """Return a PNG of the tag, 24 pixels per cell."""
    bitmap = tag36h11_bitmap(tag_id)
    big = np.kron(bitmap, np.ones((24, 24), np.uint8))
    ok, buf = cv2.imencode('.png', cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
    if not ok:  # pragma: no cover - encoding a valid array does not fail
        raise RuntimeError('PNG encoding failed')
    return bytes(buf)


def build_world(layout: Layout, robot: RobotSpec, robots: tuple[RobotPose, ...],
                camera: CameraSpec, *, timestep: float = 0.005) -> WorldModel:
    """Return the MJCF text and assets of the layout with the robots at their spawn poses."""
    root = ET.Element('mujoco', {'model': 'kpai_factory'})
    ET.SubElement(root, 'compiler', {'angle': 'radian'})
    ET.SubElement(root, 'option', {'timestep': _fmt(timestep), 'integrator': 'implicitfast'})
    extent = max(layout.width, layout.depth)
    ET.SubElement(root, 'statistic', {'extent': _fmt(extent), 'center': '0 0 1'})
    visual = ET.SubElement(root, 'visual')
    ET.SubElement(visual, 'global', {'offwidth': str(max(camera.width, 64)),
                                     'offheight': str(max(camera.height, 64))})
    # no shadows and no multisampling: software GL renders a frame in a few ms that way
    ET.SubElement(visual, 'quality', {'shadowsize': '0', 'offsamples': '0'})
    ET.SubElement(visual, 'headlight', {'ambient': '0.5 0.5 0.5', 'diffuse': '0.45 0.45 0.45',
                                        'specular': '0 0 0'})
    ET.SubElement(visual, 'map', {'znear': _fmt(0.03 / extent), 'zfar': _fmt(60 / extent)})
    asset = ET.SubElement(root, 'asset')
    ET.SubElement(asset, 'texture', {'name': 'sky', 'type': 'skybox', 'builtin': 'flat',
                                     'rgb1': '0.8 0.82 0.85', 'rgb2': '0.8 0.82 0.85',
                                     'width': '16', 'height': '16'})
    ET.SubElement(asset, 'texture', {'name': 'floor', 'type': '2d', 'builtin': 'checker',
                                     'rgb1': '0.56 0.56 0.53', 'rgb2': '0.5 0.5 0.48',
                                     'width': '256', 'height': '256'})
    ET.SubElement(asset, 'material', {'name': 'floor', 'texture': 'floor', 'texuniform': 'true',
                                      'texrepeat': '0.5 0.5', 'specular': '0'})
    world = ET.SubElement(root, 'worldbody')
    for k, (lx, ly) in enumerate(((-6, -4), (6, -4), (-6, 4), (6, 4))):
        ET.SubElement(world, 'light', {'name': f'ceiling{k}', 'pos': _fmt(lx, ly, 6),
                                       'dir': '0 0 -1', 'diffuse': '0.25 0.25 0.25',
                                       'castshadow': 'false', 'attenuation': '1 0 0'})
    ET.SubElement(world, 'geom', {'name': 'floor', 'type': 'plane', 'material': 'floor',
                                  'size': _fmt(layout.width / 2, layout.depth / 2, 2.0)})
    for obj in layout.walls + layout.objects:
        _add_static(world, obj)
    tags: list[str] = []
    for i in range(len(layout.docks)):
        _add_dock(world, layout, i, tags)
    for i, person in enumerate(layout.people):
        x, y, _ = person.pose_at(0.0)
        _add_person(world, person.name, i, x, y)
    actuators = ET.Element('actuator')
    for pose in robots:
        _add_robot(world, actuators, robot, pose, camera)
    root.append(actuators)
    assets: dict[str, bytes] = {}
    for mat in tags:
        tag_id = int(mat[3:])
        ET.SubElement(asset, 'texture', {'name': mat, 'type': '2d', 'file': f'{mat}.png'})
        ET.SubElement(asset, 'material', {'name': mat, 'texture': mat, 'specular': '0',
                                          'emission': '0.6'})
        assets[f'{mat}.png'] = tag_png(tag_id)
    ET.indent(root)
    return WorldModel(ET.tostring(root, encoding='unicode'), assets, layout, robot, robots,
                      camera)
