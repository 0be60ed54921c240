"""What the simulator produces in one step: sensor samples, events and ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .groundtruth import Box2D, ObjectState

__all__ = [
    'BatterySample',
    'CameraFrame',
    'CollisionEvent',
    'GroundTruthSample',
    'ImuSample',
    'OdomSample',
    'ScanSample',
]


@dataclass(frozen=True)
class OdomSample:
    """Odometry of a robot in its odom frame (starts at its spawn pose) and body velocity."""

    robot: str
    stamp: float
    x: float
    y: float
    yaw: float
    v: float
    w: float


@dataclass(frozen=True)
class ImuSample:
    """IMU reading in imu_link (aligned with base_link); yaw is the true heading in map."""

    robot: str
    stamp: float
    yaw: float
    angular_velocity: tuple[float, float, float]
    linear_acceleration: tuple[float, float, float]


@dataclass(frozen=True)
class ScanSample:
    """One lidar revolution."""

    robot: str
    stamp: float
    ranges: np.ndarray
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    scan_time: float


@dataclass(frozen=True)
class CameraFrame:
    """An RGB image and the visible objects' boxes; positions in the optical frame."""

    robot: str
    stamp: float
    image: np.ndarray
    boxes: list[Box2D]
    positions: dict[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class BatterySample:
    """Battery state of a robot."""

    robot: str
    stamp: float
    soc: float
    voltage: float
    current: float
    charging: bool
    capacity_ah: float


@dataclass(frozen=True)
class CollisionEvent:
    """Start of a contact between a robot and something other than the floor."""

    robot: str
    stamp: float
    other: str
    position: tuple[float, float, float]
    impact_speed: float


@dataclass(frozen=True)
class GroundTruthSample:
    """Poses of all objects of the world (map frame)."""

    stamp: float
    objects: list[ObjectState]
