"""2D lidar by ray casting into the MuJoCo scene (mj_multiRay)."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from .errors import ConfigError

__all__ = ['Lidar']


class Lidar:
    """A planar scanner: beams evenly spread over 360 degrees, counter-clockwise from -pi."""

    def __init__(self, *, beams: int, range_min: float, range_max: float, noise: float,
                 geom_groups: tuple[int, ...], rng: np.random.Generator) -> None:
        if not 3 <= beams <= 4096:
            raise ConfigError(f'lidar beams must be within 3..4096, got {beams}')
        if not (0 <= range_min < range_max and math.isfinite(range_max)):
            raise ConfigError(f'lidar range must satisfy 0 <= min < max, got {range_min}, '
                              f'{range_max}')
        self.beams = beams
        self.range_min = range_min
        self.range_max = range_max
        self.noise = noise
        self.rng = rng
        self.angle_min = -math.pi
        self.angle_increment = 2 * math.pi / beams
        angles = self.angle_min + self.angle_increment * np.arange(beams)
        self._local = np.stack([np.cos(angles), np.sin(angles), np.zeros(beams)], axis=1)
        self._groups = np.array(geom_groups, np.uint8)
        self._geomid = np.zeros(beams, np.int32)
        self._dist = np.zeros(beams, np.float64)

    def scan(self, model: mujoco.MjModel, data: mujoco.MjData, origin: np.ndarray,
             rotation: np.ndarray, body_exclude: int) -> np.ndarray:
        """Return float32 ranges: inf where nothing is hit within range_max (REP 117)."""
        vec = (self._local @ rotation.T).ravel()
        mujoco.mj_multiRay(model, data, origin, vec, self._groups, True, body_exclude,
                           self._geomid, self._dist, None, self.beams, self.range_max)
        dist = self._dist.copy()
        hit = dist >= 0
        if self.noise > 0:
            dist[hit] += self.noise * self.rng.standard_normal(int(hit.sum()))
        out = np.full(self.beams, np.inf, np.float32)
        valid = hit & (dist <= self.range_max)
        out[valid] = np.maximum(dist[valid], self.range_min)
        out[hit & (self._dist < self.range_min)] = -np.inf
        return out
