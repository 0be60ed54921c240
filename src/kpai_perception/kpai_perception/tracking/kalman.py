"""Constant-velocity Kalman filter on a box state (centre x, y, width, height + rates)."""

from __future__ import annotations

import numpy as np

__all__ = ['BoxKalman']

_NDIM = 4


class BoxKalman:
    """Kalman filter with state [cx, cy, w, h, vcx, vcy, vw, vh]; rates in pixels per second.

    Process noise is white acceleration with standard deviation accel_std * box height per s^2
    (so big, near boxes may move more pixels); measurement noise is meas_std * box height.
    """

    __slots__ = ('accel_std', 'cov', 'mean', 'meas_std')

    def __init__(self, box_cxcywh: np.ndarray, *, meas_std: float = 0.05,
                 accel_std: float = 2.0, init_vel_std: float = 3.0) -> None:
        self.meas_std = meas_std
        self.accel_std = accel_std
        z = np.asarray(box_cxcywh, dtype=np.float64)
        self.mean = np.concatenate([z, np.zeros(_NDIM)])
        size = max(float(z[3]), 1.0)
        pos_var = (2 * meas_std * size) ** 2
        vel_var = (init_vel_std * size) ** 2
        self.cov = np.diag([pos_var] * _NDIM + [vel_var] * _NDIM)

    def predict(self, dt: float) -> None:
        """Advance the state by dt seconds."""
        if dt <= 0:
            return
        m, p = self.mean, self.cov
        m[:_NDIM] += dt * m[_NDIM:]
        # F P F^T for F = [[I, dt I], [0, I]] written out on the 4x4 blocks (fast, no 8x8 matmul)
        pxx, pxv, pvv = p[:_NDIM, :_NDIM], p[:_NDIM, _NDIM:], p[_NDIM:, _NDIM:]
        new_xx = pxx + dt * (pxv + pxv.T) + dt * dt * pvv
        new_xv = pxv + dt * pvv
        q = (self.accel_std * max(float(m[3]), 1.0)) ** 2
        p[:_NDIM, :_NDIM] = new_xx + np.eye(_NDIM) * (q * dt ** 3 / 3)
        p[:_NDIM, _NDIM:] = new_xv + np.eye(_NDIM) * (q * dt ** 2 / 2)
        p[_NDIM:, :_NDIM] = p[:_NDIM, _NDIM:].T
        p[_NDIM:, _NDIM:] = pvv + np.eye(_NDIM) * (q * dt)

    def update(self, box_cxcywh: np.ndarray) -> None:
        """Correct the state with a measured box."""
        z = np.asarray(box_cxcywh, dtype=np.float64)
        r = (self.meas_std * max(float(self.mean[3]), 1.0)) ** 2
        s = self.cov[:_NDIM, :_NDIM] + np.eye(_NDIM) * r
        ph = self.cov[:, :_NDIM]
        gain = np.linalg.solve(s, ph.T).T
        self.mean = self.mean + gain @ (z - self.mean[:_NDIM])
        self.cov = self.cov - gain @ ph.T
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)

    @property
    def box(self) -> np.ndarray:
        """Return the filtered box as corners [x1, y1, x2, y2]."""
        cx, cy, w, h = self.mean[:_NDIM]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    @property
    def velocity(self) -> tuple[float, float]:
        """Return the centre velocity (px/s)."""
        return float(self.mean[4]), float(self.mean[5])
