"""Rigid 3D transforms (translation + unit quaternion w, x, y, z) with interpolation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import mat2quat, qinverse, qmult, quat2mat, rotate_vector

__all__ = ['Transform', 'slerp']


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions (shortest path)."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: normalised lerp is accurate and stable
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    s = math.sin(theta)
    return (math.sin((1 - t) * theta) * q0 + math.sin(t * theta) * q1) / s


@dataclass(frozen=True)
class Transform:
    """Pose of a child frame in a parent frame: p_parent = R p_child + t."""

    translation: np.ndarray  # (3,)
    rotation: np.ndarray     # unit quaternion (w, x, y, z)

    @classmethod
    def identity(cls) -> Transform:
        """Return the identity transform."""
        return cls(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))

    @classmethod
    def create(cls, translation: Sequence[float] | np.ndarray,
               rotation: Sequence[float] | np.ndarray) -> Transform:
        """Build from a translation and a (w, x, y, z) quaternion; normalise; reject non-finite."""
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        q = np.asarray(rotation, dtype=np.float64).reshape(4)
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise ValueError('transform has non-finite values')
        n = float(np.linalg.norm(q))
        if n < 1e-9:
            raise ValueError('transform rotation quaternion has zero norm')
        return cls(t, q / n)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> Transform:
        """Build from a 4x4 homogeneous matrix."""
        m = np.asarray(matrix, dtype=np.float64)
        return cls.create(m[:3, 3], mat2quat(m[:3, :3]))

    def as_matrix(self) -> np.ndarray:
        """Return the 4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = quat2mat(self.rotation)
        m[:3, 3] = self.translation
        return m

    def __mul__(self, other: Transform) -> Transform:
        """Compose: (a * b) maps b's child frame into a's parent frame."""
        t = self.translation + rotate_vector(other.translation, self.rotation)
        q = qmult(self.rotation, other.rotation)
        return Transform(t, q / np.linalg.norm(q))

    def inverse(self) -> Transform:
        """Return the inverse transform."""
        qi = qinverse(self.rotation)
        return Transform(-rotate_vector(self.translation, qi), qi)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (3,) or (N, 3) from the child frame into the parent frame."""
        p = np.asarray(points, dtype=np.float64)
        return p @ quat2mat(self.rotation).T + self.translation

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate directions (3,) or (N, 3) from the child frame into the parent frame."""
        return np.asarray(vectors, dtype=np.float64) @ quat2mat(self.rotation).T

    def interpolate(self, other: Transform, t: float) -> Transform:
        """Return the transform a fraction t of the way to other (lerp + slerp)."""
        return Transform(self.translation + t * (other.translation - self.translation),
                         slerp(self.rotation, other.rotation, t))
