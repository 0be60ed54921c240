"""Camera models, rigid transforms and ground-plane projection (pure)."""

from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.frames import BODY_FROM_OPTICAL, camera_pose
from kpai_perception.geometry.ground import pixel_to_ground, ray_plane_intersection
from kpai_perception.geometry.transform import Transform

__all__ = [
    'BODY_FROM_OPTICAL',
    'CameraModel',
    'Transform',
    'camera_pose',
    'pixel_to_ground',
    'ray_plane_intersection',
]
