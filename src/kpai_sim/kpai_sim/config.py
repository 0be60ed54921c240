"""Simulation configuration: one frozen dataclass, validated with clear reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .drive import DriveLimits
from .errors import ConfigError
from .spawn import validate_robot_names

__all__ = ['SimConfig']


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes a simulation run; rates in Hz, 0 disables a stream."""

    robots: tuple[str, ...] = ('robot1',)
    seed: int = 0
    people: int = -1  # -1: one per path of the layout
    camera_width: int = 320
    camera_height: int = 240
    camera_hfov: float = 1.2
    camera_rate: float = 10.0
    lidar_beams: int = 360
    lidar_rate: float = 10.0
    lidar_range_min: float = 0.12
    lidar_range_max: float = 12.0
    lidar_noise: float = 0.005
    odom_rate: float = 50.0
    odom_noise: float = 0.02
    imu_rate: float = 100.0
    battery_rate: float = 1.0
    ground_truth_rate: float = 10.0
    physics_dt: float = 0.005
    control_dt: float = 0.01
    limits: DriveLimits = field(default_factory=DriveLimits)
    spawn: tuple[tuple[str, float, float, float], ...] = ()
    urdf: str = ''

    def validate(self) -> SimConfig:
        """Return self if every value is usable, else raise ConfigError naming the value."""
        validate_robot_names(list(self.robots))
        if not 0 <= self.seed < 2**31:
            raise ConfigError(f'seed must be within 0..2^31-1, got {self.seed}')
        if not -1 <= self.people <= 32:
            raise ConfigError(f'people must be within -1..32, got {self.people}')
        if not (16 <= self.camera_width <= 1920 and 16 <= self.camera_height <= 1080):
            raise ConfigError(f'camera size must be within 16x16..1920x1080, got '
                              f'{self.camera_width}x{self.camera_height}')
        if not (math.isfinite(self.camera_hfov) and 0.2 <= self.camera_hfov <= 2.8):
            raise ConfigError(f'camera_hfov must be within 0.2..2.8 rad, got {self.camera_hfov}')
        if not (0.0005 <= self.physics_dt <= 0.02):
            raise ConfigError(f'physics_dt must be within 0.0005..0.02 s, got {self.physics_dt}')
        ratio = self.control_dt / self.physics_dt
        if not (self.control_dt <= 0.05 and abs(ratio - round(ratio)) < 1e-6 and ratio >= 1):
            raise ConfigError(f'control_dt ({self.control_dt}) must be a multiple of physics_dt '
                              f'({self.physics_dt}) and <= 0.05 s')
        max_rate = 1.0 / self.control_dt
        for name in ('camera_rate', 'lidar_rate', 'odom_rate', 'imu_rate', 'battery_rate',
                     'ground_truth_rate'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= max_rate + 1e-9):
                raise ConfigError(f'{name} must be within 0..{max_rate:g} Hz (the control '
                                  f'rate), got {value}')
        for name in ('odom_noise', 'lidar_noise'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f'{name} must be within 0..1, got {value}')
        if not 3 <= self.lidar_beams <= 4096:
            raise ConfigError(f'lidar_beams must be within 3..4096, got {self.lidar_beams}')
        if not (0 <= self.lidar_range_min < self.lidar_range_max <= 100):
            raise ConfigError('lidar range must satisfy 0 <= lidar_range_min < lidar_range_max '
                              f'<= 100, got {self.lidar_range_min}, {self.lidar_range_max}')
        self.limits.validate()
        for name, *_ in self.spawn:
            if name not in self.robots:
                raise ConfigError(f'spawn pose given for unknown robot {name!r}')
        return self
