"""Gazebo (gz sim) assets from the same layout and URDF: world SDF, robot SDF, bridge, launch."""

from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .factory import TAG_HEIGHT, TAG_SIZE, RobotPose, static_parts, tag_png
from .layout import Layout, PersonPath, StaticObject, build_layout
from .robot_description import RobotSpec, load_robot_spec
from .spawn import choose_spawn_poses

__all__ = ['bridge_yaml', 'export_all', 'launch_yaml', 'main', 'robot_sdf', 'world_sdf']

ACTOR_MESH = 'https://fuel.gazebosim.org/1.0/Mingfei/models/actor/tip/files/meshes/walk.dae'


def _f(*values: float) -> str:
    return ' '.join(f'{v:.6g}' for v in values)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _plugin(parent: ET.Element, lib: str, cls: str, **children: str) -> ET.Element:
    el = _sub(parent, 'plugin', filename=lib, name=cls)
    for key, value in children.items():
        _sub(el, key, value)
    return el


def _material(parent: ET.Element, rgba: tuple[float, ...]) -> None:
    mat = _sub(parent, 'material')
    _sub(mat, 'ambient', _f(*rgba))
    _sub(mat, 'diffuse', _f(*rgba))


def _box_shape(parent: ET.Element, name: str, pose: tuple[float, ...],
               half: tuple[float, float, float], rgba: tuple[float, ...] | None,
               collide: bool = True) -> None:
    size = _f(*(2 * h for h in half))
    for kind in ('collision', 'visual') if collide else ('visual',):
        el = _sub(parent, kind, name=f'{name}_{kind}')
        _sub(el, 'pose', _f(*pose))
        _sub(_sub(_sub(el, 'geometry'), 'box'), 'size', size)
        if kind == 'visual' and rgba is not None:
            _material(el, rgba)


def _static_model(world: ET.Element, obj: StaticObject) -> ET.Element:
    model = _sub(world, 'model', name=obj.name)
    _sub(model, 'static', 'true')
    _sub(model, 'pose', _f(obj.x, obj.y, 0, 0, 0, obj.yaw))
    link = _sub(model, 'link', name='link')
    for part in static_parts(obj):
        _box_shape(link, part.name, (*part.pos, 0, 0, 0), part.half, part.rgba)
    return link


def _actor(world: ET.Element, person: PersonPath) -> None:
    actor = _sub(world, 'actor', name=person.name)
    _sub(_sub(actor, 'skin'), 'filename', ACTOR_MESH)
    anim = _sub(actor, 'animation', name='walking')
    _sub(anim, 'filename', ACTOR_MESH)
    _sub(anim, 'interpolate_x', 'true')
    script = _sub(actor, 'script')
    _sub(script, 'loop', 'true')
    _sub(script, 'auto_start', 'true')
    traj = _sub(script, 'trajectory', id='0', type='walking')
    pts = list(person.waypoints) + [person.waypoints[0]]
    t = 0.0
    for i in range(len(pts) - 1):
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        yaw = math.atan2(y1 - y0, x1 - x0)
        for x, y, dt in ((x0, y0, 0.0 if i == 0 else 1.0), (x1, y1, None)):
            if dt is None:
                t += math.hypot(x1 - x0, y1 - y0) / person.speed
            else:
                t += dt  # turn on the spot
            wp = _sub(traj, 'waypoint')
            _sub(wp, 'time', f'{t:.3f}')
            _sub(wp, 'pose', _f(x, y, 1.0, 0, 0, yaw))


def world_sdf(layout: Layout) -> str:
    """Return the SDF world of a layout: walls, racks, pallets, boxes, docks, walking people."""
    sdf = ET.Element('sdf', version='1.9')
    world = _sub(sdf, 'world', name='kpai_factory')
    physics = _sub(world, 'physics', name='5ms', type='ignored')
    _sub(physics, 'max_step_size', '0.005')
    _sub(physics, 'real_time_factor', '1.0')
    _plugin(world, 'gz-sim-physics-system', 'gz::sim::systems::Physics')
    _plugin(world, 'gz-sim-user-commands-system', 'gz::sim::systems::UserCommands')
    _plugin(world, 'gz-sim-scene-broadcaster-system', 'gz::sim::systems::SceneBroadcaster')
    _plugin(world, 'gz-sim-sensors-system', 'gz::sim::systems::Sensors', render_engine='ogre2')
    _plugin(world, 'gz-sim-imu-system', 'gz::sim::systems::Imu')
    _plugin(world, 'gz-sim-contact-system', 'gz::sim::systems::Contact')
    light = _sub(world, 'light', type='directional', name='sun')
    _sub(light, 'cast_shadows', 'false')
    _sub(light, 'pose', '0 0 10 0 0 0')
    _sub(light, 'diffuse', '0.8 0.8 0.8 1')
    _sub(light, 'direction', '-0.3 0.2 -1')
    ground = _sub(world, 'model', name='ground_plane')
    _sub(ground, 'static', 'true')
    link = _sub(ground, 'link', name='link')
    for kind in ('collision', 'visual'):
        el = _sub(link, kind, name=kind)
        plane = _sub(_sub(el, 'geometry'), 'plane')
        _sub(plane, 'normal', '0 0 1')
        _sub(plane, 'size', _f(layout.width, layout.depth))
        if kind == 'visual':
            _material(el, (0.53, 0.53, 0.5, 1))
    for obj in layout.walls + layout.objects:
        _static_model(world, obj)
    for dock in layout.docks:
        panel = dock.panel()
        link = _static_model(world, panel)
        # tag on the face looking back at the docking robot (panel frame: -x towards it)
        tag = _sub(link, 'visual', name='tag')
        _sub(tag, 'pose', _f(-panel.size[0] / 2 - 0.002, 0, TAG_HEIGHT, 0, 0, 0))
        _sub(_sub(_sub(tag, 'geometry'), 'box'), 'size', _f(0.002, TAG_SIZE, TAG_SIZE))
        mat = _sub(tag, 'material')
        _sub(mat, 'diffuse', '1 1 1 1')
        metal = _sub(_sub(mat, 'pbr'), 'metal')
        _sub(metal, 'albedo_map', f'materials/textures/tag{dock.tag_id}.png')
    for person in layout.people:
        _actor(world, person)
    ET.indent(sdf)
    return '<?xml version="1.0"?>\n' + ET.tostring(sdf, encoding='unicode') + '\n'


def _inertial(link: ET.Element, mass: float, ixx: float, iyy: float, izz: float,
              pose: tuple[float, ...] = (0, 0, 0, 0, 0, 0)) -> None:
    inertial = _sub(link, 'inertial')
    _sub(inertial, 'pose', _f(*pose))
    _sub(inertial, 'mass', _f(mass))
    inertia = _sub(inertial, 'inertia')
    for key, value in (('ixx', ixx), ('iyy', iyy), ('izz', izz), ('ixy', 0), ('ixz', 0),
                       ('iyz', 0)):
        _sub(inertia, key, _f(value))


def _pose_of(spec: RobotSpec, frame: str) -> str:
    t = spec.in_base(frame)
    r = t[:3, :3]
    roll = math.atan2(r[2, 1], r[2, 2])
    pitch = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    yaw = math.atan2(r[1, 0], r[0, 0])
    return _f(t[0, 3], t[1, 3], t[2, 3], roll, pitch, yaw)


def robot_sdf(spec: RobotSpec, name: str, *, camera: tuple[int, int, float, float] = (
        320, 240, 1.2, 10.0), lidar: tuple[int, float, float] = (360, 10.0, 12.0)) -> str:
    """Return the SDF of one robot with diff-drive, camera, gpu_lidar, IMU and battery."""
    width, height, hfov, cam_rate = camera
    beams, lidar_rate, range_max = lidar
    sdf = ET.Element('sdf', version='1.9')
    model = _sub(sdf, 'model', name=name)
    base = _sub(model, 'link', name='base_link')
    sx, sy, sz = spec.chassis_size
    _inertial(base, spec.mass, spec.mass * (sy * sy + sz * sz) / 12,
              spec.mass * (sx * sx + sz * sz) / 12, spec.mass * (sx * sx + sy * sy) / 12,
              (0, 0, spec.chassis_z, 0, 0, 0))
    _box_shape(base, 'chassis', (0, 0, spec.chassis_z, 0, 0, 0), (sx / 2, sy / 2, sz / 2),
               (0.95, 0.45, 0.1, 1))
    caster = _sub(base, 'collision', name='caster_collision')
    cpose = spec.in_base('caster')[:3, 3]
    _sub(caster, 'pose', _f(*cpose, 0, 0, 0))
    _sub(_sub(_sub(caster, 'geometry'), 'sphere'), 'radius', _f(float(cpose[2])))
    ode = _sub(_sub(_sub(caster, 'surface'), 'friction'), 'ode')
    _sub(ode, 'mu', '0.0')
    _sub(ode, 'mu2', '0.0')
    sensors = (
        ('laser', 'gpu_lidar', 'laser', 'scan', lidar_rate),
        ('camera', 'camera', 'camera_link', 'camera/image_raw', cam_rate),
        ('imu', 'imu', 'imu_link', 'imu', 100.0),
    )
    for sname, stype, frame, topic, rate in sensors:
        sensor = _sub(base, 'sensor', name=sname, type=stype)
        _sub(sensor, 'pose', _pose_of(spec, frame))
        _sub(sensor, 'topic', f'/{name}/{topic}')
        optical = 'camera_optical' if stype == 'camera' else frame
        _sub(sensor, 'gz_frame_id', f'{name}/{optical}')
        _sub(sensor, 'update_rate', _f(rate))
        _sub(sensor, 'always_on', 'true')
        if stype == 'gpu_lidar':
            lid = _sub(sensor, 'lidar')
            horiz = _sub(_sub(lid, 'scan'), 'horizontal')
            _sub(horiz, 'samples', str(beams))
            _sub(horiz, 'resolution', '1')
            _sub(horiz, 'min_angle', _f(-math.pi))
            _sub(horiz, 'max_angle', _f(math.pi - 2 * math.pi / beams))
            rng = _sub(lid, 'range')
            _sub(rng, 'min', '0.12')
            _sub(rng, 'max', _f(range_max))
            _sub(rng, 'resolution', '0.01')
            noise = _sub(lid, 'noise')
            _sub(noise, 'type', 'gaussian')
            _sub(noise, 'mean', '0')
            _sub(noise, 'stddev', '0.005')
        elif stype == 'camera':
            _sub(sensor, 'camera_info_topic', f'/{name}/camera/camera_info')
            cam = _sub(sensor, 'camera')
            _sub(cam, 'horizontal_fov', _f(hfov))
            image = _sub(cam, 'image')
            _sub(image, 'width', str(width))
            _sub(image, 'height', str(height))
            _sub(image, 'format', 'R8G8B8')
            clip = _sub(cam, 'clip')
            _sub(clip, 'near', '0.05')
            _sub(clip, 'far', '60')
    bumper = _sub(base, 'sensor', name='bumper', type='contact')
    _sub(_sub(bumper, 'contact'), 'collision', 'chassis_collision')
    _sub(bumper, 'topic', f'/{name}/contacts')
    _sub(bumper, 'update_rate', '50')
    r = spec.wheel_radius
    for side in ('left', 'right'):
        link_name = f'{side}_wheel'
        y = spec.wheel_separation / 2 * (1 if side == 'left' else -1)
        wheel = _sub(model, 'link', name=link_name)
        _sub(wheel, 'pose', _f(0, y, r, -math.pi / 2, 0, 0))
        _inertial(wheel, 1.0, 0.0017, 0.0017, 0.0032)
        for kind in ('collision', 'visual'):
            el = _sub(wheel, kind, name=f'{side}_wheel_{kind}')
            cyl = _sub(_sub(el, 'geometry'), 'cylinder')
            _sub(cyl, 'radius', _f(r))
            _sub(cyl, 'length', '0.04')
        j = _sub(model, 'joint', name=f'{link_name}_joint', type='revolute')
        _sub(j, 'parent', 'base_link')
        _sub(j, 'child', link_name)
        axis = _sub(j, 'axis')
        _sub(axis, 'xyz', '0 0 1')
        limit = _sub(axis, 'limit')
        _sub(limit, 'lower', '-1e16')
        _sub(limit, 'upper', '1e16')
    _plugin(model, 'gz-sim-diff-drive-system', 'gz::sim::systems::DiffDrive',
            left_joint='left_wheel_joint', right_joint='right_wheel_joint',
            wheel_separation=_f(spec.wheel_separation), wheel_radius=_f(r),
            max_linear_acceleration='1.0', max_velocity='1.0', max_angular_acceleration='3.0',
            topic=f'/{name}/cmd_vel', odom_topic=f'/{name}/odom', tf_topic=f'/{name}/tf',
            frame_id=f'{name}/odom', child_frame_id=f'{name}/base_link',
            odom_publisher_frequency='50')
    _plugin(model, 'gz-sim-joint-state-publisher-system',
            'gz::sim::systems::JointStatePublisher', topic=f'/{name}/joint_states')
    _plugin(model, 'gz-sim-linearbatteryplugin-system',
            'gz::sim::systems::LinearBatteryPlugin', battery_name='battery', voltage='24.0',
            open_circuit_voltage_constant_coef='24.0',
            open_circuit_voltage_linear_coef='-3.0', initial_charge='3.75', capacity='4.17',
            resistance='0.07', smooth_current_tau='1.9', power_load='30',
            enable_recharge='true', charging_time='3600', start_draining='true')
    ET.indent(sdf)
    return '<?xml version="1.0"?>\n' + ET.tostring(sdf, encoding='unicode') + '\n'


def _bridge_entry(ros: str, gz: str, ros_type: str, gz_type: str, direction: str) -> str:
    return (f'- ros_topic_name: "{ros}"\n  gz_topic_name: "{gz}"\n'
            f'  ros_type_name: "{ros_type}"\n  gz_type_name: "{gz_type}"\n'
            f'  direction: {direction}\n')


def bridge_yaml(robots: tuple[str, ...]) -> str:
    """Return the ros_gz_bridge configuration mapping gz topics to the stack's topic names."""
    out = ['# ros_gz_bridge configuration: gz sim topics -> the same ROS topics as kpai_sim.\n'
           '# Generated by kpai-sim-gazebo; regenerate instead of editing.\n',
           _bridge_entry('/clock', '/clock', 'rosgraph_msgs/msg/Clock', 'gz.msgs.Clock',
                         'GZ_TO_ROS')]
    for r in robots:
        out += [
            _bridge_entry(f'/{r}/cmd_vel', f'/{r}/cmd_vel', 'geometry_msgs/msg/Twist',
                          'gz.msgs.Twist', 'ROS_TO_GZ'),
            _bridge_entry(f'/{r}/odom', f'/{r}/odom', 'nav_msgs/msg/Odometry',
                          'gz.msgs.Odometry', 'GZ_TO_ROS'),
            _bridge_entry('/tf', f'/{r}/tf', 'tf2_msgs/msg/TFMessage', 'gz.msgs.Pose_V',
                          'GZ_TO_ROS'),
            _bridge_entry(f'/{r}/scan', f'/{r}/scan', 'sensor_msgs/msg/LaserScan',
                          'gz.msgs.LaserScan', 'GZ_TO_ROS'),
            _bridge_entry(f'/{r}/camera/image_raw', f'/{r}/camera/image_raw',
                          'sensor_msgs/msg/Image', 'gz.msgs.Image', 'GZ_TO_ROS'),
            _bridge_entry(f'/{r}/camera/camera_info', f'/{r}/camera/camera_info',
                          'sensor_msgs/msg/CameraInfo', 'gz.msgs.CameraInfo', 'GZ_TO_ROS'),
            _bridge_entry(f'/{r}/imu', f'/{r}/imu', 'sensor_msgs/msg/Imu', 'gz.msgs.IMU',
                          'GZ_TO_ROS'),
            _bridge_entry(f'/{r}/battery', f'/model/{r}/battery/battery/state',
                          'sensor_msgs/msg/BatteryState', 'gz.msgs.BatteryState',
                          'GZ_TO_ROS'),
        ]
    return ''.join(out)


def launch_yaml(poses: tuple[RobotPose, ...]) -> str:
    """Return the YAML launch file that starts gz sim, spawns the robots and the bridge."""
    lines = [
        '# Gazebo (gz sim) variant of the factory: same world, robot and topic names as the',
        '# embedded MuJoCo simulation. Needs Gazebo Harmonic+ with ros_gz; generated by',
        '# kpai-sim-gazebo (spawn poses are the MuJoCo defaults for seed 0).',
        '#   ros2 launch kpai_sim gz_sim.launch.yaml [gui:=false]',
        'launch:',
        '- arg:',
        '    name: world',
        '    default: $(find-pkg-share kpai_sim)/gazebo/worlds/factory.sdf',
        '    description: SDF world file to run',
        '- arg:',
        '    name: gz_args',
        "    default: '-r'",
        '    description: extra arguments for gz sim (add -s for a headless server)',
        '- set_env:',
        '    name: GZ_SIM_RESOURCE_PATH',
        "    value: $(find-pkg-share kpai_sim)/gazebo/worlds:$(env GZ_SIM_RESOURCE_PATH '')",
        '- executable:',
        '    cmd: gz sim $(var gz_args) $(var world)',
        '    output: screen',
        '- node:',
        '    pkg: ros_gz_bridge',
        '    exec: parameter_bridge',
        '    name: kpai_gz_bridge',
        '    output: screen',
        '    param:',
        '    - name: config_file',
        '      value: $(find-pkg-share kpai_sim)/gazebo/bridge.yaml',
        '    - name: use_sim_time',
        '      value: true',
    ]
    for p in poses:
        lines += [
            '- node:',
            '    pkg: ros_gz_sim',
            '    exec: create',
            f'    name: spawn_{p.name}',
            '    output: screen',
            f'    args: -name {p.name} -file $(find-pkg-share kpai_sim)/gazebo/robots/'
            f'{p.name}.sdf -x {p.x:.3f} -y {p.y:.3f} -z 0.0 -Y {p.yaw:.4f}',
            '- node:',
            '    pkg: robot_state_publisher',
            '    exec: robot_state_publisher',
            f'    namespace: {p.name}',
            '    output: screen',
            '    param:',
            '    - name: robot_description',
            "      value: $(command 'cat $(find-pkg-share kpai_sim)/urdf/kpai_amr.urdf')",
            '    - name: frame_prefix',
            f'      value: {p.name}/',
            '    - name: use_sim_time',
            '      value: true',
        ]
    return '\n'.join(lines) + '\n'


def export_all(package_dir: Path, *, robots: int = 2, seed: int = 0) -> list[Path]:
    """Write world, robot SDFs, tag textures, bridge YAML and launch file under package_dir."""
    layout = build_layout(seed=seed)
    spec = load_robot_spec(package_dir / 'urdf' / 'kpai_amr.urdf')
    names = tuple(f'robot{i + 1}' for i in range(robots))
    poses = choose_spawn_poses(layout, names, seed=seed)
    gz = package_dir / 'gazebo'
    files: dict[Path, str | bytes] = {
        gz / 'worlds' / 'factory.sdf': world_sdf(layout),
        gz / 'bridge.yaml': bridge_yaml(names),
        package_dir / 'launch' / 'gz_sim.launch.yaml': launch_yaml(poses),
    }
    for name in names:
        files[gz / 'robots' / f'{name}.sdf'] = robot_sdf(spec, name)
    for dock in layout.docks:
        files[gz / 'worlds' / 'materials' / 'textures' / f'tag{dock.tag_id}.png'] = \
            tag_png(dock.tag_id)
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    """Console entry: regenerate the Gazebo assets in a kpai_sim source directory."""
    parser = argparse.ArgumentParser(prog='kpai-sim-gazebo', description='Generate the Gazebo '
                                     'world, robot SDFs, bridge YAML and launch file.')
    parser.add_argument('package_dir', type=Path, help='the kpai_sim source directory')
    parser.add_argument('--robots', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.package_dir / 'urdf' / 'kpai_amr.urdf').is_file():
        print(f'kpai-sim-gazebo: {args.package_dir} has no urdf/kpai_amr.urdf', file=sys.stderr)
        return 2
    for path in export_all(args.package_dir, robots=args.robots, seed=args.seed):
        print(path)
    return 0

