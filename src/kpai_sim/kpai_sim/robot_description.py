"""Read the robot URDF: body size, drive geometry and sensor mounts used by the simulation."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RobotDescriptionError

__all__ = [
    'FixedJoint',
    'RobotSpec',
    'default_urdf_path',
    'load_robot_spec',
    'rpy_to_matrix',
    'rpy_to_quaternion',
]

SENSOR_FRAMES = ('laser', 'camera_link', 'camera_optical', 'imu_link')


def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Return the rotation matrix of URDF fixed-axis roll, pitch, yaw (R = Rz Ry Rx)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def rpy_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """Return (x, y, z, w) of URDF roll, pitch, yaw."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


@dataclass(frozen=True)
class FixedJoint:
    """A fixed joint: child frame pose in the parent frame."""

    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]

    def matrix(self) -> np.ndarray:
        """Return the 4x4 transform parent <- child."""
        t = np.eye(4)
        t[:3, :3] = rpy_to_matrix(*self.rpy)
        t[:3, 3] = self.xyz
        return t


@dataclass(frozen=True)
class RobotSpec:
    """What the simulation needs from the robot description."""

    name: str
    chassis_size: tuple[float, float, float]
    chassis_z: float  # chassis box centre height above base_link
    mass: float
    wheel_radius: float
    wheel_separation: float
    fixed_joints: tuple[FixedJoint, ...]

    def joint_to(self, child: str) -> FixedJoint:
        """Return the fixed joint whose child is the given link."""
        for j in self.fixed_joints:
            if j.child == child:
                return j
        raise RobotDescriptionError(f'no fixed joint to link {child!r}')

    def in_base(self, frame: str) -> np.ndarray:
        """Return the 4x4 pose of a link in base_link by chaining fixed joints."""
        t = np.eye(4)
        while frame != 'base_link':
            j = self.joint_to(frame)
            t = j.matrix() @ t
            frame = j.parent
        return t

    def footprint_radius(self) -> float:
        """Return the radius of the circle around base_link covering the chassis."""
        return math.hypot(self.chassis_size[0] / 2, self.chassis_size[1] / 2)


def default_urdf_path() -> Path:
    """Return the URDF shipped with the package (source tree or installed share)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / 'urdf' / 'kpai_amr.urdf',
                      here.parents[3] / 'share' / 'kpai_sim' / 'urdf' / 'kpai_amr.urdf'):
        if candidate.is_file():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory('kpai_sim')) / 'urdf' / 'kpai_amr.urdf'
    except Exception as err:  # noqa: BLE001 - any lookup failure means: not found
        raise RobotDescriptionError('kpai_amr.urdf not found') from err


def _floats(text: str | None, n: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in (text or '').split())
    except ValueError as err:
        raise RobotDescriptionError(f'{what}: not numbers: {text!r}') from err
    if len(values) != n:
        raise RobotDescriptionError(f'{what}: expected {n} numbers, got {text!r}')
    return values


def _origin(joint: ET.Element) -> tuple[tuple[float, ...], tuple[float, ...]]:
    origin = joint.find('origin')
    if origin is None:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    return (_floats(origin.get('xyz', '0 0 0'), 3, 'origin xyz'),
            _floats(origin.get('rpy', '0 0 0'), 3, 'origin rpy'))


def load_robot_spec(path: str | Path | None = None) -> RobotSpec:
    """Parse the URDF at path (default: the shipped kpai_amr.urdf) into a RobotSpec."""
    path = Path(path) if path is not None else default_urdf_path()
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise RobotDescriptionError(f'cannot read URDF {path}: {err}') from err
    links = {link.get('name'): link for link in root.findall('link')}
    joints = root.findall('joint')
    fixed = []
    wheels: dict[str, tuple[float, ...]] = {}
    for j in joints:
        parent, child = j.find('parent'), j.find('child')
        if parent is None or child is None:
            raise RobotDescriptionError(f'joint {j.get("name")} lacks parent or child')
        xyz, rpy = _origin(j)
        if j.get('type') == 'fixed':
            fixed.append(FixedJoint(parent.get('link', ''), child.get('link', ''),
                                    (xyz[0], xyz[1], xyz[2]), (rpy[0], rpy[1], rpy[2])))
        elif j.get('type') == 'continuous':
            wheels[child.get('link', '')] = xyz
    chassis = links.get('chassis')
    box = chassis.find('collision/geometry/box') if chassis is not None else None
    if box is None:
        raise RobotDescriptionError('URDF needs a link "chassis" with a box collision')
    size = _floats(box.get('size'), 3, 'chassis box size')
    mass_el = chassis.find('inertial/mass') if chassis is not None else None
    mass = float(mass_el.get('value', '40')) if mass_el is not None else 40.0
    if 'left_wheel' not in wheels or 'right_wheel' not in wheels:
        raise RobotDescriptionError('URDF needs continuous joints to left_wheel and right_wheel')
    cyl = links['left_wheel'].find('collision/geometry/cylinder')
    if cyl is None:
        raise RobotDescriptionError('left_wheel needs a cylinder collision')
    spec = RobotSpec(
        name=root.get('name', 'robot'), chassis_size=(size[0], size[1], size[2]),
        chassis_z=0.0, mass=mass, wheel_radius=float(cyl.get('radius', '0')),
        wheel_separation=abs(wheels['left_wheel'][1] - wheels['right_wheel'][1]),
        fixed_joints=tuple(fixed))
    chassis_z = float(spec.in_base('chassis')[2, 3])
    for frame in SENSOR_FRAMES:
        spec.in_base(frame)  # raises if a sensor frame is missing
    return RobotSpec(spec.name, spec.chassis_size, chassis_z, mass, spec.wheel_radius,
                     spec.wheel_separation, spec.fixed_joints)
