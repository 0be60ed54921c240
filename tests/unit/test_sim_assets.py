"""Robot description, Gazebo world/robot SDF, ros_gz_bridge YAML and launch files."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from kpai_sim.errors import RobotDescriptionError
from kpai_sim.gazebo_export import export_all
from kpai_sim.layout import build_layout
from kpai_sim.robot_description import load_robot_spec

PKG = Path(__file__).resolve().parents[2] / 'src' / 'kpai_sim'
ROBOT_TOPICS = ('cmd_vel', 'odom', 'scan', 'camera/image_raw', 'camera/camera_info', 'imu',
                'battery')


def test_urdf_is_shared_and_complete() -> None:
    root = ET.parse(PKG / 'urdf' / 'kpai_amr.urdf').getroot()
    links = {link.get('name') for link in root.findall('link')}
    assert {'base_link', 'laser', 'camera_link', 'camera_optical', 'imu_link'} <= links
    spec = load_robot_spec(PKG / 'urdf' / 'kpai_amr.urdf')
    assert spec.wheel_radius == pytest.approx(0.08)
    assert spec.wheel_separation == pytest.approx(0.49)
    # camera_optical: z forward (base x), x right (base -y), y down (base -z)
    rot = spec.in_base('camera_optical')[:3, :3]
    assert np.allclose(rot[:, 2], [1, 0, 0], atol=1e-6)
    assert np.allclose(rot[:, 0], [0, -1, 0], atol=1e-6)
    assert np.allclose(rot[:, 1], [0, 0, -1], atol=1e-6)


def test_broken_urdf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / 'bad.urdf'
    bad.write_text('<robot name="x"><link name="base_link"/></robot>')
    with pytest.raises(RobotDescriptionError, match='chassis'):
        load_robot_spec(bad)
    bad.write_text('<robot')
    with pytest.raises(RobotDescriptionError, match='cannot read'):
        load_robot_spec(bad)


def test_world_sdf_matches_the_layout() -> None:
    root = ET.parse(PKG / 'gazebo' / 'worlds' / 'factory.sdf').getroot()
    assert root.tag == 'sdf'
    world = root.find('world')
    assert world is not None
    plugins = {p.get('filename') for p in world.findall('plugin')}
    assert {'gz-sim-physics-system', 'gz-sim-sensors-system', 'gz-sim-imu-system',
            'gz-sim-scene-broadcaster-system'} <= plugins
    layout = build_layout(seed=0)
    models = {m.get('name'): m for m in world.findall('model')}
    for obj in layout.walls + layout.objects + tuple(d.panel() for d in layout.docks):
        pose = [float(v) for v in (models[obj.name].findtext('pose') or '').split()]
        assert pose[0] == pytest.approx(obj.x, abs=1e-4) and pose[1] == pytest.approx(
            obj.y, abs=1e-4) and pose[5] == pytest.approx(obj.yaw, abs=1e-4)
    actors = world.findall('actor')
    assert [a.get('name') for a in actors] == [p.name for p in layout.people]
    times = [float(t.text or '') for t in actors[0].iter('time')]
    assert times == sorted(times) and times[-1] > 0
    tags = [e.text for e in world.iter('albedo_map')]
    assert tags == [f'materials/textures/tag{d.tag_id}.png' for d in layout.docks]
    for t in tags:
        assert (PKG / 'gazebo' / 'worlds' / str(t)).is_file()


@pytest.mark.parametrize('robot', ['robot1', 'robot2'])
def test_robot_sdf_has_drive_and_sensors(robot: str) -> None:
    model = ET.parse(PKG / 'gazebo' / 'robots' / f'{robot}.sdf').getroot().find('model')
    assert model is not None and model.get('name') == robot
    plugins = {p.get('filename'): p for p in model.findall('plugin')}
    drive = plugins['gz-sim-diff-drive-system']
    assert drive.findtext('topic') == f'/{robot}/cmd_vel'
    assert drive.findtext('odom_topic') == f'/{robot}/odom'
    assert drive.findtext('frame_id') == f'{robot}/odom'
    assert drive.findtext('child_frame_id') == f'{robot}/base_link'
    assert float(drive.findtext('wheel_separation') or 0) == pytest.approx(0.49)
    assert 'gz-sim-linearbatteryplugin-system' in plugins
    sensors = {s.get('type'): s for s in model.iter('sensor')}
    assert set(sensors) == {'gpu_lidar', 'camera', 'imu', 'contact'}
    assert sensors['gpu_lidar'].findtext('topic') == f'/{robot}/scan'
    assert sensors['gpu_lidar'].findtext('lidar/scan/horizontal/samples') == '360'
    assert sensors['camera'].findtext('topic') == f'/{robot}/camera/image_raw'
    assert sensors['camera'].findtext('gz_frame_id') == f'{robot}/camera_optical'
    assert sensors['imu'].findtext('gz_frame_id') == f'{robot}/imu_link'
    joints = {j.get('name'): j for j in model.findall('joint')}
    assert {'left_wheel_joint', 'right_wheel_joint'} <= set(joints)


def test_bridge_maps_the_stack_topic_names() -> None:
    entries = yaml.safe_load((PKG / 'gazebo' / 'bridge.yaml').read_text())
    ros = {(e['ros_topic_name'], e['direction']) for e in entries}
    assert ('/clock', 'GZ_TO_ROS') in ros
    for robot in ('robot1', 'robot2'):
        for topic in ROBOT_TOPICS:
            direction = 'ROS_TO_GZ' if topic == 'cmd_vel' else 'GZ_TO_ROS'
            assert (f'/{robot}/{topic}', direction) in ros
    for e in entries:
        assert e['ros_type_name'].count('/') == 2 and e['gz_type_name'].startswith('gz.msgs.')
    assert ('/tf', 'GZ_TO_ROS') in ros


def test_launch_files_are_valid_yaml_launch() -> None:
    gz = yaml.safe_load((PKG / 'launch' / 'gz_sim.launch.yaml').read_text())['launch']
    kinds = [next(iter(item)) for item in gz]
    assert kinds.count('node') == 1 + 2 * 2 and 'executable' in kinds
    spawns = [i['node'] for i in gz if 'node' in i and i['node']['exec'] == 'create']
    assert [s['name'] for s in spawns] == ['spawn_robot1', 'spawn_robot2']
    sim = yaml.safe_load((PKG / 'launch' / 'sim.launch.yaml').read_text())['launch']
    args = {i['arg']['name']: i['arg'] for i in sim if 'arg' in i}
    for name in ('robots', 'camera_width', 'camera_height', 'camera_rate', 'real_time_factor',
                 'seed'):
        assert args[name].get('description')
    config = yaml.safe_load((PKG / 'config' / 'sim.yaml').read_text())
    assert config['sim']['ros__parameters']['camera_width'] == 320


def test_committed_gazebo_assets_are_up_to_date(tmp_path: Path) -> None:
    (tmp_path / 'urdf').mkdir()
    shutil.copy(PKG / 'urdf' / 'kpai_amr.urdf', tmp_path / 'urdf')
    written = export_all(tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        assert (PKG / rel).read_bytes() == path.read_bytes(), f'{rel} is stale: run ' \
            'kpai-sim-gazebo src/kpai_sim'
    assert len(written) >= 7
