"""Noisy odometry, IMU and battery models of one robot (pure numpy, seeded)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ['BatteryModel', 'BatteryParams', 'ImuModel', 'OdometryModel']


class OdometryModel:
    """Integrates measured body velocities with multiplicative and additive noise."""

    def __init__(self, *, rng: np.random.Generator, relative_noise: float = 0.02,
                 additive_noise: float = 0.002) -> None:
        self.rng = rng
        self.relative_noise = relative_noise
        self.additive_noise = additive_noise
        self.x = self.y = self.yaw = 0.0
        self.v = self.w = 0.0

    def update(self, v_true: float, w_true: float, dt: float) -> None:
        """Integrate one step of the true body velocities as the wheel encoders see them."""
        v, w = v_true, w_true
        if self.relative_noise > 0 or self.additive_noise > 0:
            n = self.rng.standard_normal(4)
            v = v * (1 + self.relative_noise * n[0]) + self.additive_noise * n[1] * (v != 0)
            w = w * (1 + self.relative_noise * n[2]) + self.additive_noise * n[3] * (w != 0)
        mid = self.yaw + 0.5 * w * dt
        self.x += v * math.cos(mid) * dt
        self.y += v * math.sin(mid) * dt
        self.yaw = math.atan2(math.sin(self.yaw + w * dt), math.cos(self.yaw + w * dt))
        self.v, self.w = v, w


class ImuModel:
    """Gyro and accelerometer of a planar base: finite-difference acceleration, noise, gravity."""

    def __init__(self, *, rng: np.random.Generator, gyro_noise: float = 0.002,
                 accel_noise: float = 0.02) -> None:
        self.rng = rng
        self.gyro_noise = gyro_noise
        self.accel_noise = accel_noise
        self._prev: tuple[float, float] | None = None
        self.angular_velocity = (0.0, 0.0, 0.0)
        self.linear_acceleration = (0.0, 0.0, 9.81)

    def update(self, v_body: tuple[float, float], w: float, dt: float) -> None:
        """Update from the body-frame planar velocity (vx, vy) and yaw rate over dt."""
        prev = self._prev or v_body
        ax = (v_body[0] - prev[0]) / dt - w * v_body[1]
        ay = (v_body[1] - prev[1]) / dt + w * v_body[0]
        self._prev = v_body
        n = self.rng.standard_normal(6)
        self.angular_velocity = (self.gyro_noise * n[0], self.gyro_noise * n[1],
                                 w + self.gyro_noise * n[2])
        self.linear_acceleration = (ax + self.accel_noise * n[3], ay + self.accel_noise * n[4],
                                    9.81 + self.accel_noise * n[5])


@dataclass(frozen=True)
class BatteryParams:
    """Battery capacity, consumption and charging figures."""

    capacity_wh: float = 100.0
    nominal_voltage: float = 24.0
    idle_w: float = 30.0
    per_mps_w: float = 80.0  # extra watts per m/s of linear speed
    per_radps_w: float = 20.0
    charge_w: float = 300.0
    initial_soc: float = 0.9


class BatteryModel:
    """State of charge: drains with motion, charges while docked."""

    def __init__(self, params: BatteryParams) -> None:
        self.params = params
        self.soc = min(max(params.initial_soc, 0.0), 1.0)
        self.charging = False
        self.power_w = 0.0

    def update(self, v: float, w: float, docked: bool, dt: float) -> None:
        """Advance by dt at linear speed v and yaw rate w; charge when docked."""
        p = self.params
        draw = p.idle_w + p.per_mps_w * abs(v) + p.per_radps_w * abs(w)
        self.charging = docked and self.soc < 1.0
        self.power_w = (p.charge_w if self.charging else 0.0) - draw
        self.soc = min(max(self.soc + self.power_w * dt / 3600.0 / p.capacity_wh, 0.0), 1.0)

    @property
    def voltage(self) -> float:
        """Return a terminal voltage that falls with the state of charge."""
        return self.params.nominal_voltage * (0.88 + 0.17 * self.soc)

    @property
    def capacity_ah(self) -> float:
        """Return the capacity in ampere-hours."""
        return self.params.capacity_wh / self.params.nominal_voltage
