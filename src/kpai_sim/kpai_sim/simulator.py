"""The simulation core: physics, diff-drive control, sensors, collisions and ground truth."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from .config import SimConfig
from .crowd import PERSON_MARGIN, Floor, Walker
from .drive import DiffDrive
from .errors import SimError
from .factory import LIDAR_GEOM_GROUPS, SERVO_TAU, CameraSpec, RobotPose, WorldModel, build_world
from .groundtruth import ObjectState, boxes_from_segmentation
from .layout import PERSON_HEIGHT, PERSON_RADIUS, Layout, build_layout
from .lidar import Lidar
from .models import BatteryModel, BatteryParams, ImuModel, OdometryModel
from .robot_description import RobotSpec, load_robot_spec
from .samples import (
    BatterySample,
    CameraFrame,
    CollisionEvent,
    GroundTruthSample,
    ImuSample,
    OdomSample,
    ScanSample,
)
from .spawn import choose_spawn_poses

__all__ = ['Simulator']

DOCK_RADIUS = 0.3  # a robot this close to a dock pose, and nearly still, charges


@dataclass
class _Robot:
    pose: RobotPose
    index: int  # object index
    body: int
    qpos: tuple[int, int, int]
    qvel: tuple[int, int, int]
    act: tuple[int, int, int]
    camera: int
    site: int
    drive: DiffDrive
    odom: OdometryModel
    imu: ImuModel
    battery: BatteryModel
    lidar: Lidar


class _Schedule:
    """Due times of a periodic stream in sim time."""

    def __init__(self, rate: float, offset: float = 0.0) -> None:
        self.period = 1.0 / rate if rate > 0 else math.inf
        self.due = offset

    def fire(self, now: float) -> bool:
        if now + 1e-9 < self.due:
            return False
        self.due = max(self.due + self.period, now - 1e-9 + self.period * 0.5)
        return True


class Simulator:
    """A factory world with N robots; step() advances one control period and returns samples."""

    def __init__(self, config: SimConfig, *, layout: Layout | None = None,
                 robot: RobotSpec | None = None) -> None:
        self.config = config.validate()
        self.layout = layout or build_layout(
            seed=config.seed, people=None if config.people < 0 else config.people)
        self.robot_spec = robot or load_robot_spec(config.urdf or None)
        fixed = {name: (x, y, yaw) for name, x, y, yaw in config.spawn}
        poses = choose_spawn_poses(self.layout, config.robots, seed=config.seed, fixed=fixed)
        self.camera = CameraSpec(config.camera_width, config.camera_height, config.camera_hfov)
        self.world: WorldModel = build_world(self.layout, self.robot_spec, poses, self.camera,
                                             timestep=config.physics_dt)
        self.model = mujoco.MjModel.from_xml_string(self.world.xml, self.world.assets)
        self.data = mujoco.MjData(self.model)
        self.nsub = round(config.control_dt / config.physics_dt)
        self.time = 0.0
        self._step_count = 0
        self._index_objects()
        self.robots: dict[str, _Robot] = {}
        for k, pose in enumerate(poses):
            self.robots[pose.name] = self._make_robot(pose, k)
        self._people = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, p.name)
                        for p in self.layout.people]
        self._mocap = [int(self.model.body_mocapid[b]) for b in self._people]
        # people wait for a robot in their way and step round one that stays there
        clearance = self.robot_spec.footprint_radius() + PERSON_RADIUS + PERSON_MARGIN
        self._walkers = [Walker(p, clearance) for p in self.layout.people]
        self._floor = Floor(self.layout.walls + self.layout.objects
                            + tuple(d.panel() for d in self.layout.docks), PERSON_RADIUS)
        self._place_people()
        mujoco.mj_forward(self.model, self.data)
        self._renderer: Any = None
        self._states_cache: tuple[float, list[ObjectState]] | None = None
        self._contacts: set[tuple[str, str]] = set()
        self._sched = {name: _Schedule(getattr(config, f'{name}_rate')) for name in
                       ('odom', 'imu', 'battery', 'ground_truth')}
        # cameras and lidars of different robots take turns, so no step renders them all
        n = len(self.robots)
        self._sensor_sched: dict[tuple[str, str], _Schedule] = {}
        for k, name in enumerate(self.robots):
            for stream in ('camera', 'lidar'):
                rate = getattr(config, f'{stream}_rate')
                steps = round(k / n / rate / config.control_dt) if rate > 0 else 0
                self._sensor_sched[(stream, name)] = _Schedule(rate, steps * config.control_dt)

    # ---- setup -------------------------------------------------------------------------------
    def _index_objects(self) -> None:
        """Map every geom to the object it belongs to (names are '<object>/<part>')."""
        lay = self.layout
        names: list[str] = []
        classes: list[str] = []
        sizes: list[tuple[float, float, float]] = []
        for obj in lay.walls + lay.objects + tuple(d.panel() for d in lay.docks):
            names.append(obj.name)
            classes.append(obj.class_id)
            sizes.append(obj.size)
        for p in lay.people:
            names.append(p.name)
            classes.append('person')
            sizes.append((2 * PERSON_RADIUS, 2 * PERSON_RADIUS, PERSON_HEIGHT))
        cam_z = float(self.robot_spec.in_base('camera_optical')[2, 3])
        sx, sy, _ = self.robot_spec.chassis_size
        for name in self.config.robots:
            names.append(name)
            classes.append('robot')
            sizes.append((sx, sy, cam_z + 0.03))
        lookup = {n: i for i, n in enumerate(names)}
        self.object_names, self.object_classes, self.object_sizes = names, classes, sizes
        self.geom_object = np.full(self.model.ngeom, -1, np.int64)
        for g in range(self.model.ngeom):
            gname = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, g) or ''
            self.geom_object[g] = lookup.get(gname.split('/')[0], -1)
        self._static_states = [
            ObjectState(o.name, o.class_id, o.x, o.y, o.z + o.size[2] / 2, o.yaw, o.size)
            for o in lay.objects + tuple(d.panel() for d in lay.docks)]

    def _make_robot(self, pose: RobotPose, k: int) -> _Robot:
        m, name = self.model, pose.name
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f'{name}/{a}')
               for a in ('x', 'y', 'yaw')]
        aid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f'{name}/{a}')
               for a in ('x', 'y', 'yaw')]
        qpos = tuple(int(m.jnt_qposadr[j]) for j in jid)
        self.data.qpos[qpos[2]] = pose.yaw
        rng = np.random.default_rng([self.config.seed, k])
        cfg = self.config
        return _Robot(
            pose=pose, index=self.object_names.index(name),
            body=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name),
            qpos=(qpos[0], qpos[1], qpos[2]),
            qvel=(int(m.jnt_dofadr[jid[0]]), int(m.jnt_dofadr[jid[1]]),
                  int(m.jnt_dofadr[jid[2]])),
            act=(aid[0], aid[1], aid[2]),
            camera=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, f'{name}/camera'),
            site=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f'{name}/laser'),
            drive=DiffDrive(cfg.limits),
            odom=OdometryModel(rng=rng, relative_noise=cfg.odom_noise,
                               additive_noise=cfg.odom_noise / 10),
            imu=ImuModel(rng=rng), battery=BatteryModel(BatteryParams()),
            lidar=Lidar(beams=cfg.lidar_beams, range_min=cfg.lidar_range_min,
                        range_max=cfg.lidar_range_max, noise=cfg.lidar_noise,
                        geom_groups=LIDAR_GEOM_GROUPS, rng=rng))

    def _place_people(self) -> None:
        for walker, mocap in zip(self._walkers, self._mocap, strict=True):
            x, y, heading = walker.pose()
            self.data.mocap_pos[mocap] = (x, y, 0.0)
            self.data.mocap_quat[mocap] = (math.cos(heading / 2), 0, 0, math.sin(heading / 2))

    def _walk_people(self, dt: float) -> None:
        """Advance each person along their path (waiting for or passing robots in the way)."""
        robots = [self.true_pose(name)[:2] for name in self.robots]
        for walker in self._walkers:
            walker.step(dt, robots, self._floor.free)

    # ---- state -------------------------------------------------------------------------------
    def true_pose(self, name: str) -> tuple[float, float, float]:
        """Return the robot's true (x, y, yaw) in the map frame."""
        r = self.robots[name]
        q = self.data.qpos
        return (r.pose.x + float(q[r.qpos[0]]), r.pose.y + float(q[r.qpos[1]]),
                math.atan2(math.sin(q[r.qpos[2]]), math.cos(q[r.qpos[2]])))

    def body_velocity(self, name: str) -> tuple[float, float, float]:
        """Return the robot's true (forward, lateral, yaw rate) velocity."""
        r = self.robots[name]
        qv = self.data.qvel
        yaw = float(self.data.qpos[r.qpos[2]])
        vx, vy = float(qv[r.qvel[0]]), float(qv[r.qvel[1]])
        c, s = math.cos(yaw), math.sin(yaw)
        return c * vx + s * vy, -s * vx + c * vy, float(qv[r.qvel[2]])

    def object_states(self) -> list[ObjectState]:
        """Return poses of all objects (static, people, robots) except walls."""
        if self._states_cache is not None and self._states_cache[0] == self.time:
            return self._states_cache[1]
        out = list(self._static_states)
        for walker, mocap in zip(self._walkers, self._mocap, strict=True):
            x, y, _ = (float(v) for v in self.data.mocap_pos[mocap])
            _, _, heading = walker.pose()
            out.append(ObjectState(walker.path.name, 'person', x, y, PERSON_HEIGHT / 2, heading,
                                   (2 * PERSON_RADIUS, 2 * PERSON_RADIUS, PERSON_HEIGHT)))
        for name, r in self.robots.items():
            x, y, yaw = self.true_pose(name)
            size = self.object_sizes[r.index]
            out.append(ObjectState(name, 'robot', x, y, size[2] / 2, yaw, size))
        self._states_cache = (self.time, out)
        return out

    def command(self, robot: str, linear: float, angular: float) -> str | None:
        """Set a robot's cmd_vel; return why it was altered or ignored, or None."""
        return self.robots[robot].drive.command(linear, angular, self.time)

    # ---- stepping ----------------------------------------------------------------------------
    def step(self) -> list[Any]:
        """Advance one control period; return the samples and events that fell due."""
        dt = self.config.control_dt
        d = self.data
        for r in self.robots.values():
            v, w = r.drive.update(dt, self.time)
            # lead the heading by the servo lag so the velocity vector turns with the body
            # (a diff drive does not slip sideways)
            yaw = float(d.qpos[r.qpos[2]]) + float(d.qvel[r.qvel[2]]) * SERVO_TAU
            d.ctrl[r.act[0]] = v * math.cos(yaw)
            d.ctrl[r.act[1]] = v * math.sin(yaw)
            d.ctrl[r.act[2]] = w
        self._step_count += 1
        self.time = self._step_count * dt  # no drift from summing dt
        self._walk_people(dt)
        self._place_people()
        before = {name: self.true_pose(name) for name in self.robots}
        mujoco.mj_step(self.model, d, nstep=self.nsub)
        out: list[Any] = []
        for name, r in self.robots.items():
            v, lateral, w = self.body_velocity(name)
            # encoders measure the displacement over the step, not the final velocity
            x0, y0, yaw0 = before[name]
            x1, y1, yaw1 = self.true_pose(name)
            dyaw = math.remainder(yaw1 - yaw0, 2 * math.pi)
            mid = yaw0 + dyaw / 2
            ds = (x1 - x0) * math.cos(mid) + (y1 - y0) * math.sin(mid)
            r.odom.update(ds / dt, dyaw / dt, dt)
            r.imu.update((v, lateral), w, dt)
            r.battery.update(v, w, self._docked(name, v), dt)
        out += self._collisions()
        t = self.time
        if self._sched['odom'].fire(t):
            out += [OdomSample(n, t, r.odom.x, r.odom.y, r.odom.yaw, r.odom.v, r.odom.w)
                    for n, r in self.robots.items()]
        if self._sched['imu'].fire(t):
            out += [ImuSample(n, t, self.true_pose(n)[2], r.imu.angular_velocity,
                              r.imu.linear_acceleration) for n, r in self.robots.items()]
        out += [self._scan(n) for n in self.robots if self._sensor_sched[('lidar', n)].fire(t)]
        if self._sched['battery'].fire(t):
            out += [BatterySample(n, t, r.battery.soc, r.battery.voltage,
                                  r.battery.power_w / r.battery.voltage, r.battery.charging,
                                  r.battery.capacity_ah) for n, r in self.robots.items()]
        if self._sched['ground_truth'].fire(t):
            out.append(GroundTruthSample(t, self.object_states()))
        out += [self.render_camera(n) for n in self.robots
                if self._sensor_sched[('camera', n)].fire(t)]
        return out

    def _docked(self, name: str, v: float) -> bool:
        x, y, _ = self.true_pose(name)
        return abs(v) < 0.05 and any(math.hypot(x - dk.x, y - dk.y) < DOCK_RADIUS
                                     for dk in self.layout.docks)

    def _scan(self, name: str) -> ScanSample:
        r = self.robots[name]
        origin = self.data.site_xpos[r.site].copy()
        rot = self.data.site_xmat[r.site].reshape(3, 3)
        ranges = r.lidar.scan(self.model, self.data, origin, rot, r.body)
        rate = self.config.lidar_rate
        return ScanSample(name, self.time, ranges, r.lidar.angle_min, r.lidar.angle_increment,
                          r.lidar.range_min, r.lidar.range_max, 1.0 / rate if rate else 0.0)

    def _collisions(self) -> list[CollisionEvent]:
        d, m = self.data, self.model
        n = d.ncon
        current: set[tuple[str, str]] = set()
        events = []
        if n:
            geoms = np.stack([d.contact.geom1[:n], d.contact.geom2[:n]], axis=1)
            robot_of_body = {r.body: name for name, r in self.robots.items()}
            for i in range(n):
                g1, g2 = int(geoms[i, 0]), int(geoms[i, 1])
                for mine, other in ((g1, g2), (g2, g1)):
                    robot = robot_of_body.get(int(m.geom_bodyid[mine]))
                    obj = int(self.geom_object[other])
                    if robot is None or obj < 0:
                        continue  # not a robot, or the floor
                    key = (robot, self.object_names[obj])
                    if key in current:
                        continue
                    current.add(key)
                    if key not in self._contacts:
                        v, lat, _ = self.body_velocity(robot)
                        pos = d.contact.pos[i]
                        events.append(CollisionEvent(
                            robot, self.time, key[1], (float(pos[0]), float(pos[1]),
                                                       float(pos[2])), math.hypot(v, lat)))
        self._contacts = current
        return events

    # ---- camera ------------------------------------------------------------------------------
    def render_camera(self, name: str) -> CameraFrame:
        """Render a robot's camera and the visible objects' boxes from the same scene."""
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, self.camera.height,
                                                 self.camera.width)
            except Exception as err:  # noqa: BLE001 - GL failures come in many types
                raise SimError(
                    f'cannot create an offscreen renderer with MUJOCO_GL='
                    f'{os.environ.get("MUJOCO_GL", "")!r}: {err}. Headless rendering needs EGL '
                    '(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) or MUJOCO_GL=osmesa '
                    '(Debian: libosmesa6); or set camera_rate to 0') from err
        ren = self._renderer
        r = self.robots[name]
        ren.update_scene(self.data, camera=r.camera)
        image = ren.render()
        ren.enable_segmentation_rendering()
        try:
            seg = ren.render()
        finally:
            ren.disable_segmentation_rendering()
        boxes = boxes_from_segmentation(
            seg, self.geom_object, self.object_names, self.object_classes,
            geom_type=int(mujoco.mjtObj.mjOBJ_GEOM), exclude=r.index)
        cam_pos = self.data.cam_xpos[r.camera]
        cam_mat = self.data.cam_xmat[r.camera].reshape(3, 3)
        states = {s.name: s for s in self.object_states()}
        positions = {}
        for b in boxes:
            s = states.get(b.name)
            if s is not None:
                local = (np.array([s.x, s.y, s.z]) - cam_pos) @ cam_mat
                positions[b.name] = (float(local[0]), float(-local[1]), float(-local[2]))
        return CameraFrame(name, self.time, image, boxes, positions)

    def camera_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the MuJoCo camera position and 3x3 orientation (x right, y up, z back)."""
        r = self.robots[name]
        return self.data.cam_xpos[r.camera].copy(), self.data.cam_xmat[r.camera].reshape(3, 3)

    def close(self) -> None:
        """Release the renderer's GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
