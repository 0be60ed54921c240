"""Convert simulator samples into ROS messages (message packages only, no rclpy)."""

from __future__ import annotations

import array
import math

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import BatteryState, CameraInfo, Image, Imu, LaserScan
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kpai_msgs.msg import Collision, GroundTruth, GroundTruthObject

from .factory import CameraSpec
from .groundtruth import ObjectState
from .robot_description import FixedJoint, rpy_to_quaternion
from .samples import (
    BatterySample,
    CameraFrame,
    CollisionEvent,
    GroundTruthSample,
    ImuSample,
    OdomSample,
    ScanSample,
)

__all__ = [
    'battery_msg',
    'camera_info_msg',
    'collision_msg',
    'detections_msg',
    'ground_truth_msg',
    'image_msg',
    'imu_msg',
    'odom_msgs',
    'scan_msg',
    'stamp',
    'static_transform',
    'yaw_quaternion',
]


def stamp(t: float) -> Time:
    """Return a builtin Time of t seconds."""
    sec = math.floor(t)
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=int(sec), nanosec=nanosec)


def _header(t: float, frame: str) -> Header:
    return Header(stamp=stamp(t), frame_id=frame)


def yaw_quaternion(yaw: float) -> Quaternion:
    """Return the quaternion of a rotation by yaw about z."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


def static_transform(t: float, parent: str, child: str, xyz: tuple[float, float, float],
                     rpy: tuple[float, float, float]) -> TransformStamped:
    """Return a TransformStamped child-in-parent."""
    msg = TransformStamped(header=_header(t, parent), child_frame_id=child)
    tr = msg.transform
    tr.translation.x, tr.translation.y, tr.translation.z = (float(v) for v in xyz)
    qx, qy, qz, qw = rpy_to_quaternion(*rpy)
    tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w = qx, qy, qz, qw
    return msg


def joint_transform(t: float, robot: str, joint: FixedJoint) -> TransformStamped:
    """Return the transform of a URDF fixed joint with robot-prefixed frames."""
    return static_transform(t, f'{robot}/{joint.parent}', f'{robot}/{joint.child}', joint.xyz,
                            joint.rpy)


def odom_msgs(s: OdomSample, noise: float) -> tuple[Odometry, TransformStamped]:
    """Return the Odometry message and the odom -> base_link transform of a sample."""
    odom_frame, base = f'{s.robot}/odom', f'{s.robot}/base_link'
    msg = Odometry(header=_header(s.stamp, odom_frame), child_frame_id=base)
    msg.pose.pose.position.x, msg.pose.pose.position.y = float(s.x), float(s.y)
    msg.pose.pose.orientation = yaw_quaternion(float(s.yaw))
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(s.v), float(s.w)
    var = max(noise, 1e-3) ** 2
    msg.pose.covariance[0] = msg.pose.covariance[7] = var
    msg.pose.covariance[35] = var
    msg.pose.covariance[14] = msg.pose.covariance[21] = msg.pose.covariance[28] = 1e6
    msg.twist.covariance[0] = msg.twist.covariance[35] = var
    tf = TransformStamped(header=_header(s.stamp, odom_frame), child_frame_id=base)
    tf.transform.translation.x, tf.transform.translation.y = float(s.x), float(s.y)
    tf.transform.rotation = yaw_quaternion(float(s.yaw))
    return msg, tf


def imu_msg(s: ImuSample) -> Imu:
    """Return the Imu message of a sample (frame <robot>/imu_link)."""
    msg = Imu(header=_header(s.stamp, f'{s.robot}/imu_link'))
    msg.orientation = yaw_quaternion(s.yaw)
    av, la = msg.angular_velocity, msg.linear_acceleration
    av.x, av.y, av.z = (float(v) for v in s.angular_velocity)
    la.x, la.y, la.z = (float(v) for v in s.linear_acceleration)
    for cov, value in ((msg.orientation_covariance, 1e-4),
                       (msg.angular_velocity_covariance, 4e-6),
                       (msg.linear_acceleration_covariance, 4e-4)):
        cov[0] = cov[4] = cov[8] = value
    return msg


def scan_msg(s: ScanSample) -> LaserScan:
    """Return the LaserScan of a sample (frame <robot>/laser)."""
    n = len(s.ranges)
    msg = LaserScan(header=_header(s.stamp, f'{s.robot}/laser'))
    msg.angle_min = float(s.angle_min)
    msg.angle_increment = float(s.angle_increment)
    msg.angle_max = float(s.angle_min + s.angle_increment * (n - 1))
    msg.scan_time = float(s.scan_time)
    msg.time_increment = float(s.scan_time / n) if n else 0.0
    msg.range_min, msg.range_max = float(s.range_min), float(s.range_max)
    msg.ranges = array.array('f', s.ranges.astype('float32').tobytes())
    return msg


def image_msg(f: CameraFrame) -> Image:
    """Return the rgb8 Image of a camera frame (frame <robot>/camera_optical)."""
    h, w = f.image.shape[:2]
    msg = Image(header=_header(f.stamp, f'{f.robot}/camera_optical'), height=h, width=w,
                encoding='rgb8', is_bigendian=0, step=w * 3)
    msg.data = f.image.tobytes()
    return msg


def camera_info_msg(header: Header, camera: CameraSpec) -> CameraInfo:
    """Return the ideal pinhole CameraInfo of the sim camera (no distortion)."""
    fx, fy, cx, cy = camera.intrinsics()
    msg = CameraInfo(header=header, width=camera.width, height=camera.height,
                     distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def detections_msg(header: Header, f: CameraFrame) -> Detection2DArray:
    """Return the true visible boxes of a frame; header is the image's header."""
    msg = Detection2DArray(header=header)
    for b in f.boxes:
        det = Detection2D(header=header, id=b.name)
        cx, cy = b.center
        det.bbox.center.position.x, det.bbox.center.position.y = float(cx), float(cy)
        det.bbox.size_x, det.bbox.size_y = float(b.size[0]), float(b.size[1])
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = b.class_id
        hyp.hypothesis.score = 1.0
        pos = f.positions.get(b.name)
        if pos is not None:
            p = hyp.pose.pose.position
            p.x, p.y, p.z = pos
        hyp.pose.pose.orientation.w = 1.0
        det.results.append(hyp)
        msg.detections.append(det)
    return msg


def battery_msg(s: BatterySample) -> BatteryState:
    """Return the BatteryState of a sample."""
    msg = BatteryState(header=_header(s.stamp, f'{s.robot}/base_link'))
    msg.voltage = float(s.voltage)
    msg.current = float(s.current)
    msg.charge = float(s.soc * s.capacity_ah)
    msg.capacity = msg.design_capacity = float(s.capacity_ah)
    msg.percentage = float(s.soc)
    if s.charging:
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_CHARGING
    elif s.soc >= 0.999:
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_FULL
    else:
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    msg.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_GOOD
    msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LION
    msg.present = True
    return msg


def collision_msg(e: CollisionEvent) -> Collision:
    """Return the Collision message of an event (position in map)."""
    msg = Collision(header=_header(e.stamp, 'map'), robot=e.robot, other=e.other)
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in e.position)
    msg.impact_speed = float(e.impact_speed)
    return msg


def _object_msg(o: ObjectState) -> GroundTruthObject:
    msg = GroundTruthObject(name=o.name, class_id=o.class_id)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (
        float(o.x), float(o.y), float(o.z))
    msg.pose.orientation = yaw_quaternion(float(o.yaw))
    msg.size.x, msg.size.y, msg.size.z = (float(v) for v in o.size)
    return msg


def ground_truth_msg(s: GroundTruthSample) -> GroundTruth:
    """Return the GroundTruth of all objects (frame map)."""
    return GroundTruth(header=_header(s.stamp, 'map'),
                       objects=[_object_msg(o) for o in s.objects])
