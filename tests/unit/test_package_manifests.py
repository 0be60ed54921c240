"""Every package.xml declares the ROS packages its code imports and its launch files start.

colcon orders the build by these declarations, and on a robot `rosdep install` and the Debian
packaging install from them: an undeclared dependency works in this workspace (everything is
built) and breaks a robot that installs one package.
"""

from __future__ import annotations

import ast
import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kpai_testing import ROOT

# launch files that need software outside the stack's supported set, named with the reason
OPTIONAL_LAUNCH_DEPENDENCIES = {
    # the Gazebo variant of the factory: needs Gazebo Harmonic+ with ros_gz (apt only)
    ('kpai_sim', 'gz_sim.launch.yaml'): {'ros_gz_bridge', 'ros_gz_sim', 'robot_state_publisher'},
}
RUN_DEPENDENCY_TAGS = ('depend', 'exec_depend', 'build_export_depend')
LAUNCH_PACKAGE = re.compile(r'\bpkg:\s*([A-Za-z0-9_]+)'
                            r'|\$\(find-pkg-(?:share|prefix)\s+([A-Za-z0-9_]+)')


@functools.cache
def _ros_packages() -> frozenset[str]:
    from ament_index_python.packages import get_packages_with_prefixes

    found = frozenset(get_packages_with_prefixes())
    # without the ament index (env.sh not sourced) the check below would find nothing to check
    assert {'rclpy', 'std_msgs', 'kpai_msgs'} <= found, 'ament index incomplete: source env.sh'
    return found


def _packages() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob('src/*/package.xml'))


def _declared(package_dir: Path) -> tuple[str, set[str]]:
    root = ET.parse(package_dir / 'package.xml').getroot()
    deps = {(e.text or '').strip() for e in root if e.tag in RUN_DEPENDENCY_TAGS}
    return str(root.findtext('name')), deps


def _imported(package_dir: Path) -> dict[str, str]:
    """Top-level modules imported by the package's own Python code -> one file importing it."""
    used: dict[str, str] = {}
    for path in sorted(package_dir.rglob('*.py')):
        if 'test' in path.relative_to(package_dir).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                used.setdefault(name.split('.')[0], str(path.relative_to(package_dir.parent)))
    return used


def _launched(package: str, package_dir: Path) -> dict[str, str]:
    """Packages named by the package's launch files (pkg:, $(find-pkg-share/prefix ...))."""
    used: dict[str, str] = {}
    for path in sorted(package_dir.glob('launch/*.launch.*')):
        optional = OPTIONAL_LAUNCH_DEPENDENCIES.get((package, path.name), set())
        for match in LAUNCH_PACKAGE.finditer(path.read_text()):
            name = match.group(1) or match.group(2)
            if name not in optional:
                used.setdefault(name, str(path.relative_to(package_dir.parent)))
    return used


@pytest.mark.parametrize('package_dir', _packages(), ids=lambda p: p.name)
def test_package_xml_declares_what_the_package_uses(package_dir: Path) -> None:
    ros = _ros_packages()
    name, declared = _declared(package_dir)
    used = {k: v for k, v in _imported(package_dir).items() if k in ros}
    used.update(_launched(name, package_dir))
    used.pop(name, None)
    missing = {dep: where for dep, where in used.items() if dep not in declared}
    assert not missing, f'{name}/package.xml lacks <exec_depend> on: {missing}'


def test_the_check_sees_imports_and_launch_files(tmp_path: Path) -> None:
    pkg = tmp_path / 'demo_pkg'
    (pkg / 'demo_pkg').mkdir(parents=True)
    (pkg / 'launch').mkdir()
    (pkg / 'demo_pkg' / 'node.py').write_text(
        'import rclpy\nfrom std_msgs.msg import String\nfrom . import util\n')
    (pkg / 'launch' / 'x.launch.yaml').write_text(
        'launch:\n- node: {pkg: kpai_planning, exec: planner}\n'
        '- include: {file: $(find-pkg-share kpai_sim)/launch/a.launch.yaml}\n')
    assert set(_imported(pkg)) == {'rclpy', 'std_msgs'}
    assert set(_launched('demo_pkg', pkg)) == {'kpai_planning', 'kpai_sim'}
