"""Camera models, rigid transforms and ground-plane projection (pure)."""

from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.ground import pixel_to_ground, ray_plane_intersection
from kpai_perception.geometry.transform import Transform

__all__ = ['CameraModel', 'Transform', 'pixel_to_ground', 'ray_plane_intersection']
