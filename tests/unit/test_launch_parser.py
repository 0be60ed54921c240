"""Parsing and evaluating YAML launch files: errors with file:line, args, scoping, conditions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from kpai_bringup.launch.errors import LaunchFileError
from kpai_bringup.launch.evaluate import evaluate_launch_file, load_actions
from kpai_bringup.middleware import LOCALHOST_PROFILE_NAME, user_profile

ENV = {'PATH': '/usr/bin:/bin', 'AMENT_PREFIX_PATH': ''}


def write(tmp_path: Path, text: str, name: str = 'test.launch.yaml') -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip('\n'))
    return path


def error_of(path: Path, args: dict[str, str] | None = None) -> LaunchFileError:
    with pytest.raises(LaunchFileError) as info:
        evaluate_launch_file(path, args or {}, env=ENV, param_dir=str(path.parent))
    return info.value


def echo_cmds(path: Path, args: dict[str, str] | None = None) -> list[list[str]]:
    plan = evaluate_launch_file(path, args or {}, env=ENV, param_dir=str(path.parent))
    return [p.cmd[1:] for p in plan.processes]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let:
              name: a
              value: [unclosed
          - let: {name: b, value: c}
        """)
    err = error_of(path)
    assert err.file == str(path.resolve())
    assert err.line in (4, 5)
    assert str(err).startswith(f'{path.resolve()}:{err.line}: malformed YAML')


def test_unknown_tag_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let: {name: a, value: b}

          - nod:
              pkg: demo
        """)
    err = error_of(path)
    assert (err.line, err.message) == (4, "unknown tag 'nod'")


def test_unknown_attribute_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - executable:
              cmd: echo hi
              outptu: screen
        """)
    err = error_of(path)
    assert err.line == 4
    assert "unknown attribute 'outptu' in 'executable'" in err.message


def test_unknown_attribute_in_nested_param(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - group:
              children:
                - node:
                    exec: echo
                    param:
                      - name: a
                        valeu: 1
        """)
    err = error_of(path)
    assert err.line == 7
    assert "needs a 'value'" in err.message


def test_missing_required_attribute(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - node:
              pkg: demo
        """)
    err = error_of(path)
    assert err.line == 2 and "missing required attribute 'exec'" in err.message


def test_top_level_must_be_launch(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, 'nodes:\n  - x: 1\n'))
    assert 'launch' in err.message and err.line == 1


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let:
              name: a
              name: b
              value: c
        """)
    err = error_of(path)
    assert err.line == 4 and 'duplicate key' in err.message


def test_action_must_have_one_tag(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let: {name: a, value: b}
            arg: {name: c}
        """)
    assert error_of(path).line == 2


def test_required_argument_missing_and_given(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - arg: {name: robot, description: the robot}
          - executable: {cmd: echo $(var robot)}
        """)
    err = error_of(path)
    assert err.line == 2 and "required argument 'robot' not provided" in err.message
    assert echo_cmds(path, {'robot': 'r1'}) == [['r1']]


def test_argument_default_choices(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - arg:
              name: mode
              default: fast
              choice: [{value: fast}, {value: slow}]
          - executable: {cmd: echo $(var mode)}
        """)
    assert echo_cmds(path) == [['fast']]
    assert echo_cmds(path, {'mode': 'slow'}) == [['slow']]
    err = error_of(path, {'mode': 'warp'})
    assert err.line == 2 and 'valid choices' in err.message


def test_let_and_substitution_in_cmd_keeps_spaces(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let: {name: words, value: two words}
          - executable: {cmd: "echo a$(var words)b 'c d' e"}
        """)
    assert echo_cmds(path) == [['atwo wordsb', 'c d', 'e']]


def test_group_scoping_and_include_leak(tmp_path: Path) -> None:
    write(tmp_path, """
        launch:
          - let: {name: from_include, value: leaked}
        """, 'inc.launch.yaml')
    path = write(tmp_path, """
        launch:
          - let: {name: x, value: outer}
          - group:
              children:
                - let: {name: x, value: inner}
                - executable: {cmd: echo $(var x)}
          - executable: {cmd: echo $(var x)}
          - group:
              scoped: false
              children:
                - let: {name: y, value: unscoped}
          - executable: {cmd: echo $(var y)}
          - include: {file: $(dirname)/inc.launch.yaml}
          - executable: {cmd: echo $(var from_include)}
        """)
    assert echo_cmds(path) == [['inner'], ['outer'], ['unscoped'], ['leaked']]


def test_group_without_forwarding_starts_clean(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - let: {name: x, value: outer}
          - group:
              forwarding: false
              keep: [{name: k, value: kept}]
              children:
                - executable: {cmd: echo $(var k) $(optenv NOT_SET none)}
                - executable: {cmd: echo $(var x)}
        """)
    err = error_of(path)
    assert err.line == 8 and "'x' does not exist" in err.message


def test_include_args_and_missing_include_arg(tmp_path: Path) -> None:
    write(tmp_path, """
        launch:
          - arg: {name: who}
          - executable: {cmd: echo $(var who)}
        """, 'inc.launch.yaml')
    path = write(tmp_path, """
        launch:
          - include:
              file: $(dirname)/inc.launch.yaml
              arg: [{name: who, value: me}]
          - group:
              children:
                - include: {file: $(dirname)/inc.launch.yaml}
        """)
    # `who` leaks from the first include into the second (include is not scoped)
    assert echo_cmds(path) == [['me'], ['me']]
    path2 = write(tmp_path, """
        launch:
          - include: {file: $(dirname)/inc.launch.yaml}
        """, 'top2.launch.yaml')
    err = error_of(path2)
    assert err.file.endswith('inc.launch.yaml') and err.line == 2


def test_include_of_missing_or_non_yaml_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - include: {file: $(dirname)/nothere.launch.yaml}
        """)
    assert 'not found' in error_of(path).message
    (tmp_path / 'x.launch.py').write_text('')
    path = write(tmp_path, """
        launch:
          - include: {file: $(dirname)/x.launch.py}
        """)
    assert 'YAML launch files only' in error_of(path).message


def test_if_unless_conditions(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - arg: {name: enabled, default: 'true'}
          - executable: {cmd: echo a, if: $(var enabled)}
          - executable: {cmd: echo b, unless: $(var enabled)}
          - group:
              if: $(not $(var enabled))
              children:
                - executable: {cmd: echo c}
        """)
    assert echo_cmds(path) == [['a']]
    assert echo_cmds(path, {'enabled': 'false'}) == [['b'], ['c']]
    err = error_of(path, {'enabled': 'maybe'})
    assert err.line == 3 and 'not a boolean' in err.message


def test_set_env_unset_env_and_process_env(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - set_env: {name: KPAI_X, value: one}
          - group:
              children:
                - set_env: {name: KPAI_X, value: two}
                - executable: {cmd: echo $(env KPAI_X)}
          - executable:
              cmd: echo $(env KPAI_X)
              env: [{name: KPAI_Y, value: why}]
          - unset_env: {name: KPAI_X}
          - executable: {cmd: echo $(optenv KPAI_X gone)}
        """)
    plan = evaluate_launch_file(path, {}, env=ENV, param_dir=str(tmp_path))
    assert [p.cmd[1:] for p in plan.processes] == [['two'], ['one'], ['gone']]
    assert plan.processes[1].env['KPAI_Y'] == 'why'
    assert 'KPAI_X' not in plan.processes[2].env


def test_middleware_defaults_unless_user_set(tmp_path: Path) -> None:
    path = write(tmp_path, 'launch:\n  - executable: {cmd: echo x}\n')
    env = evaluate_launch_file(path, {}, env=ENV, param_dir=str(tmp_path)).processes[0].env
    # LOCALHOST by the stack's Fast DDS profile (rmw's own LOCALHOST reaches 32 processes)
    profile = user_profile(env)
    assert Path(profile).name == LOCALHOST_PROFILE_NAME and Path(profile).is_file()
    # each distribution's Fast DDS reads one name: 2.x (Jazzy) FASTRTPS_, 3.x (Kilted) FASTDDS_
    for distro, var, other in (('jazzy', 'FASTRTPS', 'FASTDDS'),
                               ('kilted', 'FASTDDS', 'FASTRTPS')):
        chosen = evaluate_launch_file(path, {}, env=dict(ENV, KPAI_ROS_DISTRO=distro),
                                      param_dir=str(tmp_path)).processes[0].env
        assert Path(chosen[f'{var}_DEFAULT_PROFILES_FILE']).name == LOCALHOST_PROFILE_NAME
        assert f'{other}_DEFAULT_PROFILES_FILE' not in chosen
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SYSTEM_DEFAULT'
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in env
    assert env['RMW_IMPLEMENTATION'] == 'rmw_fastrtps_cpp'
    for user in (dict(ENV, ROS_STATIC_PEERS='10.0.0.2'),
                 dict(ENV, RMW_IMPLEMENTATION='rmw_cyclonedds_cpp')):
        env = evaluate_launch_file(path, {}, env=user, param_dir=str(tmp_path)).processes[0].env
        assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
        assert env['FASTDDS_BUILTIN_TRANSPORTS'] == 'LARGE_DATA'
        assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in env
        assert 'FASTRTPS_DEFAULT_PROFILES_FILE' not in env
    # a user's profile under the Fast DDS 2.x name counts as a choice too
    old_name = dict(ENV, FASTRTPS_DEFAULT_PROFILES_FILE='/mine.xml')
    env = evaluate_launch_file(path, {}, env=old_name, param_dir=str(tmp_path)).processes[0].env
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['FASTRTPS_DEFAULT_PROFILES_FILE'] == '/mine.xml'
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in env and 'FASTDDS_BUILTIN_TRANSPORTS' not in env
    # a shell that sourced env.sh (profile and SYSTEM_DEFAULT) and then asked for LOCALHOST
    sourced = dict(ENV, KPAI_ROS_DISTRO='kilted',
                   FASTDDS_DEFAULT_PROFILES_FILE='/x/fastdds_localhost_discovery.xml',
                   ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                   FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA')
    env = evaluate_launch_file(path, {}, env=sourced, param_dir=str(tmp_path)).processes[0].env
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SYSTEM_DEFAULT'
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == '/x/fastdds_localhost_discovery.xml'
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in env  # it would replace the profile's transports
    user = dict(ENV, ROS_AUTOMATIC_DISCOVERY_RANGE='SUBNET',
                FASTDDS_DEFAULT_PROFILES_FILE='/p.xml')
    env = evaluate_launch_file(path, {}, env=user, param_dir=str(tmp_path)).processes[0].env
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SUBNET'
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == '/p.xml'
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in env


def test_process_options(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - executable:
              cmd: echo x
              name: worker
              output: screen
              respawn: 'true'
              respawn_delay: 1.5
              respawn_max_retries: 3
              on_exit: shutdown
              sigterm_timeout: 2.0
              launch-prefix: nice -n 5
        """)
    (spec,) = evaluate_launch_file(path, {}, env=ENV, param_dir=str(tmp_path)).processes
    assert spec.name == 'worker-1' and spec.output == 'screen'
    assert spec.respawn and spec.respawn_delay == 1.5 and spec.respawn_max_retries == 3
    assert spec.required and spec.sigterm_timeout == 2.0
    assert spec.cmd[:3] == ['nice', '-n', '5'] and spec.cmd[3].endswith('/echo')


@pytest.mark.parametrize('attrs, message', [
    ('on_exit: restart', "on_exit must be 'shutdown'"),
    ('respawn_delay: -1.0', 'must not be negative'),
    ('output: loud', 'output must be screen, log, both or own_log'),
    ('respawn_max_retries: many', 'must be a YAML integer'),
])
def test_bad_process_options(tmp_path: Path, attrs: str, message: str) -> None:
    path = write(tmp_path, f'launch:\n  - executable:\n      cmd: echo\n      {attrs}\n')
    err = error_of(path)
    assert message in err.message and err.line in (2, 4)


def test_parse_checks_whole_file_before_running(tmp_path: Path) -> None:
    path = write(tmp_path, """
        launch:
          - executable: {cmd: echo fine}
          - group:
              children:
                - executable: {cmd: echo fine, bogus: 1}
        """)
    with pytest.raises(LaunchFileError) as info:
        load_actions(path)
    assert info.value.line == 5
