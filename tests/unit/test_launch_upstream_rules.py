"""`kpai launch` follows ros2 launch (launch/launch_ros, Jazzy) where the stack's files touch it.

One test per rule written down in kpai_bringup.launch.evaluate; the first two reproduce the two
divergences that made sim_fleet.launch.yaml fail under the real `ros2 launch`.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from kpai_bringup.launch.errors import LaunchFileError
from kpai_bringup.launch.evaluate import evaluate_launch_file


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A fake install prefix registering package `demo` (executable `node`, a launch dir)."""
    root = tmp_path / 'install'
    index = root / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'demo').write_text('')
    (root / 'share' / 'demo' / 'launch').mkdir(parents=True)
    (root / 'lib' / 'demo').mkdir(parents=True)
    exe = root / 'lib' / 'demo' / 'node'
    exe.write_text('#!/bin/sh\n')
    exe.chmod(0o755)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip('\n'))
    return path


def evaluate(prefix: Path, path: Path, args: dict[str, str] | None = None):
    env = {'PATH': '/usr/bin:/bin', 'AMENT_PREFIX_PATH': str(prefix)}
    return evaluate_launch_file(path, args or {}, env=env, param_dir=str(prefix.parent))


def params_of(plan) -> dict:
    merged: dict = {}
    for text in plan.param_files.values():
        for body in yaml.safe_load(text).values():
            merged.update(body['ros__parameters'])
    return merged


def error_of(prefix: Path, path: Path) -> LaunchFileError:
    with pytest.raises(LaunchFileError) as info:
        evaluate(prefix, path)
    return info.value


# --- divergence 1: $(dirname) after an include ---------------------------------------------

def test_dirname_after_an_include_names_the_included_files_directory(prefix: Path) -> None:
    """sim_fleet's `$(dirname)/robot.launch.yaml` after including kpai_sim's file: not found."""
    other = write(prefix.parent / 'other_pkg' / 'launch' / 'sim.launch.yaml', """
        launch:
          - let: {name: sim_seen, value: 'yes'}
        """)
    write(prefix.parent / 'main' / 'robot.launch.yaml', 'launch:\n  - let: {name: r, value: x}\n')
    top = write(prefix.parent / 'main' / 'fleet.launch.yaml', f"""
        launch:
          - group:
              children:
                - include: {{file: {other}}}
          - include: {{file: $(dirname)/robot.launch.yaml}}
        """)
    err = error_of(prefix, top)
    assert err.line == 5
    assert f"'{other.parent}/robot.launch.yaml' not found" in err.message
    assert 'most recently included launch file' in err.message


def test_dirname_and_filename_follow_the_last_include(prefix: Path) -> None:
    inc = write(prefix.parent / 'a' / 'inc.launch.yaml', 'launch:\n  - let: {name: i, value: x}\n')
    top = write(prefix.parent / 'b' / 'top.launch.yaml', f"""
        launch:
          - executable: {{cmd: echo $(dirname) $(filename)}}
          - include: {{file: {inc}}}
          - executable: {{cmd: echo $(dirname) $(filename)}}
        """)
    first, second = (p.cmd[1:] for p in evaluate(prefix, top).processes)
    assert first == [str(top.parent.resolve()), str(top.resolve())]
    assert second == [str(inc.parent.resolve()), str(inc.resolve())]


def test_find_pkg_share_include_works_after_another_include(prefix: Path) -> None:
    """The stack's fix: siblings named through the package share, not $(dirname)."""
    write(prefix / 'share' / 'demo' / 'launch' / 'robot.launch.yaml',
          'launch:\n  - executable: {cmd: echo robot}\n')
    other = write(prefix.parent / 'elsewhere' / 'x.launch.yaml', 'launch: []\n')
    top = write(prefix.parent / 'top.launch.yaml', f"""
        launch:
          - include: {{file: {other}}}
          - include: {{file: $(find-pkg-share demo)/launch/robot.launch.yaml}}
        """)
    assert [p.cmd[1:] for p in evaluate(prefix, top).processes] == [['robot']]


def test_relative_include_is_relative_to_the_working_directory(prefix: Path,
                                                              tmp_path: Path) -> None:
    write(prefix.parent / 'sub' / 'inc.launch.yaml', 'launch: []\n')
    top = write(prefix.parent / 'sub' / 'top.launch.yaml',
                'launch:\n  - include: {file: inc.launch.yaml}\n')
    err = error_of(prefix, top)
    assert 'relative to the working directory' in err.message
    cwd = os.getcwd()
    os.chdir(top.parent)
    try:
        evaluate(prefix, top)  # from the file's own directory it is found
    finally:
        os.chdir(cwd)


# --- divergence 2: parameter typing -----------------------------------------------------------

def test_quoted_literal_parameter_stays_a_string(prefix: Path) -> None:
    """`value: 'true'` reaches the node as the STRING 'true' (its bool declaration rejects it)."""
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - arg: {name: sim, default: 'true'}
          - node:
              pkg: demo
              exec: node
              param:
                - {name: quoted, value: 'true'}
                - {name: quoted_number, value: '7'}
                - {name: plain, value: true}
                - {name: number, value: 7}
                - {name: substituted, value: $(var sim)}
                - {name: substituted_number, value: '$(var sim)x'}
        """)
    assert params_of(evaluate(prefix, top)) == {
        'quoted': 'true', 'quoted_number': '7', 'plain': True, 'number': 7,
        'substituted': True, 'substituted_number': 'truex'}


def test_typed_parameter_converts_substitutions_only(prefix: Path) -> None:
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - arg: {name: n, default: '5'}
          - node:
              pkg: demo
              exec: node
              param:
                - {name: as_str, value: $(var n), type: str}
                - {name: as_float, value: $(var n), type: float}
                - {name: as_bool, value: '$(var n)', type: bool}
        """)
    with pytest.raises(LaunchFileError, match="'5' is not a valid bool"):
        evaluate(prefix, top)
    top.write_text(top.read_text().replace("$(var n)', type: bool", "1', type: bool"))
    with pytest.raises(LaunchFileError, match='quoted string but its type is bool'):
        evaluate(prefix, top)


def test_substituted_parameter_that_is_not_a_parameter_type_is_an_error(prefix: Path) -> None:
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - arg: {name: d, default: '{a: 1}'}
          - node: {pkg: demo, exec: node, param: [{name: p, value: $(var d)}]}
        """)
    with pytest.raises(LaunchFileError, match='gives a dict'):
        evaluate(prefix, top)


def test_set_parameter_values_are_always_yaml_typed(prefix: Path) -> None:
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - set_parameter: {name: use_sim_time, value: 'true'}
          - node: {pkg: demo, exec: node}
        """)
    cmd = evaluate(prefix, top).processes[0].cmd
    assert cmd[cmd.index('-p') + 1] == 'use_sim_time:=true'
    top.write_text(top.read_text().replace("value: 'true'", 'value: true'))
    assert 'must be a string' in error_of(prefix, top).message


# --- attribute types as launch_yaml checks them ----------------------------------------------

@pytest.mark.parametrize(('attr', 'expected'), [
    ('if: true', 'must be a string'),
    ('respawn: true', 'must be a string'),
    ('output: 1', 'must be a string'),
    ('respawn_delay: 2', 'must be a YAML float'),
    ("respawn_delay: '2.0'", 'must be a YAML float'),
    ('sigterm_timeout: 3', 'must be a YAML float'),
    ("respawn_max_retries: '3'", 'must be a YAML integer'),
    ("shell: 'false'", 'must be a YAML boolean'),
])
def test_attribute_types_follow_launch_yaml(prefix: Path, attr: str, expected: str) -> None:
    top = write(prefix.parent / 't.launch.yaml', f"""
        launch:
          - executable:
              cmd: echo hi
              {attr}
        """)
    err = error_of(prefix, top)
    assert expected in err.message and err.line == 4


def test_arg_default_must_be_a_string(prefix: Path) -> None:
    top = write(prefix.parent / 't.launch.yaml', 'launch:\n  - arg: {name: n, default: 2}\n')
    assert "'default' of 'arg' must be a string (quote it), got the integer 2" in \
        error_of(prefix, top).message


def test_group_scoped_false_as_a_string_is_an_error(prefix: Path) -> None:
    """ros2 launch would take the text 'false' as true (a non-empty string)."""
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - group: {scoped: 'false', children: []}
        """)
    assert 'must be a YAML boolean' in error_of(prefix, top).message


def test_well_typed_process_attributes(prefix: Path) -> None:
    top = write(prefix.parent / 't.launch.yaml', """
        launch:
          - executable:
              cmd: echo hi
              respawn: '$(not false)'
              respawn_delay: 2.0
              respawn_max_retries: 3
              sigterm_timeout: 1.5
              shell: false
              emulate_tty: true
        """)
    spec = evaluate(prefix, top).processes[0]
    assert (spec.respawn, spec.respawn_delay, spec.respawn_max_retries) == (True, 2.0, 3)
    assert spec.sigterm_timeout == 1.5 and not spec.shell


def test_include_values_leak_but_group_values_do_not(prefix: Path) -> None:
    inc = write(prefix.parent / 'inc.launch.yaml', """
        launch:
          - arg: {name: x, default: from_include}
          - let: {name: y, value: set_in_include}
        """)
    top = write(prefix.parent / 't.launch.yaml', f"""
        launch:
          - group:
              children:
                - let: {{name: z, value: grouped}}
          - include: {{file: {inc}}}
          - executable: {{cmd: echo $(var x) $(var y) $(var z)}}
        """)
    with pytest.raises(LaunchFileError, match="'z' does not exist"):
        evaluate(prefix, top)
    top.write_text(top.read_text().replace(' $(var z)', ''))
    assert evaluate(prefix, top).processes[0].cmd[1:] == ['from_include', 'set_in_include']


@pytest.mark.parametrize('value', ['yes', 'T', 'on', ''])
def test_if_takes_only_true_false_1_0(prefix: Path, value: str) -> None:
    top = write(prefix.parent / 't.launch.yaml', f"""
        launch:
          - arg: {{name: c, default: '{value}'}}
          - executable: {{cmd: echo hi, if: $(var c)}}
        """)
    with pytest.raises(LaunchFileError, match='is not a boolean'):
        evaluate(prefix, top)
