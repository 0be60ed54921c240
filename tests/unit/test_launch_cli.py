"""`kpai launch` command line: targets, arguments, --print, --show-args, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kpai_bringup.cli import main

BAD = """
launch:
  - arg: {name: robot, default: robot1}
  - node:
      pkg: kpai_bringup
      exec: talker
      nmae: talker
"""


def write(tmp_path: Path, text: str, name: str = 'x.launch.yaml') -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip('\n'))
    return path


def test_unknown_attribute_exits_2_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    res = subprocess.run([sys.executable, '-m', 'kpai_bringup.cli', 'launch', str(path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert f'{path.resolve()}:6: unknown attribute' in res.stderr
    assert res.stderr.count('\n') == 1  # one clear line, no traceback


def test_malformed_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'launch:\n  - let: {name: a, value: b\n  - let: {}\n')
    assert main(['launch', str(path)]) == 2
    err = capsys.readouterr().err
    assert f'{path.resolve()}:' in err and 'malformed YAML' in err


def test_print_shows_commands_params_and_env(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, """
        launch:
          - arg: {name: word, default: hi}
          - executable:
              cmd: echo $(var word)
              name: say
              env: [{name: KPAI_SAY, value: loud}]
              respawn: 'true'
        """)
    assert main(['launch', str(path), 'word:=hello', '--print']) == 0
    out = capsys.readouterr().out
    assert '[say-1] (output=log, respawn (delay 0.0 s))' in out
    assert 'env KPAI_SAY=loud' in out
    assert out.rstrip().endswith('/echo hello')


def test_show_args_lists_descriptions_and_defaults(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, """
        launch:
          - arg: {name: robot, description: Robot namespace.}
          - arg:
              name: mode
              default: fast
              choice: [{value: fast}, {value: slow}]
          - executable: {cmd: echo $(var robot)}
        """)
    assert main(['launch', str(path), '--show-args']) == 0
    out = capsys.readouterr().out
    assert "'robot':\n        Robot namespace.\n" in out
    assert "'mode':" in out and "(default: 'fast')" in out and "['fast', 'slow']" in out


def test_bad_argument_and_target_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'launch: []\n')
    assert main(['launch', str(path), 'robot=1']) == 2
    assert 'not of the form name:=value' in capsys.readouterr().err
    assert main(['launch', str(tmp_path / 'none.launch.yaml')]) == 2
    assert 'not found' in capsys.readouterr().err
    assert main(['launch', 'kpai_bringup']) == 2
    assert 'expected <package> <file>' in capsys.readouterr().err
    assert main(['bogus']) == 2


def test_missing_package_is_one_clear_message(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv('AMENT_PREFIX_PATH', '/nonexistent')
    assert main(['launch', 'no_such_pkg', 'a.launch.yaml']) == 1
    err = capsys.readouterr().err
    assert err == "kpai launch: error: package 'no_such_pkg' not found: build it with colcon " \
        'and source env.sh (is the overlay sourced?)\n'


def test_missing_executable_in_launch_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'launch:\n  - executable: {cmd: no-such-program-kpai}\n')
    assert main(['launch', str(path)]) == 1
    assert "executable 'no-such-program-kpai' not found on the PATH" in capsys.readouterr().err


def test_launch_by_package_and_file_name(capsys: pytest.CaptureFixture[str]) -> None:
    if 'kpai_bringup' not in os.environ.get('AMENT_PREFIX_PATH', ''):
        pytest.skip('workspace overlay not sourced')
    assert main(['launch', 'kpai_bringup', 'two_robots_chatter.launch.yaml', '--print']) == 0
    out = capsys.readouterr().out
    assert out.count('__ns:=/robot1') == 2 and out.count('__ns:=/robot2') == 2


def test_doctor_missing_module_is_reported(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, 'kpai_bringup.doctor', None)
    assert main(['doctor']) == 1
    assert 'kpai_bringup.doctor is missing' in capsys.readouterr().err


def test_show_args_tolerates_conditions_on_required_args(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, 'launch:\n  - arg: {name: inner, default: x, description: In include.}\n',
          'inc.launch.yaml')
    path = write(tmp_path, """
        launch:
          - arg: {name: use_inc, description: Include or not.}
          - group:
              if: $(var use_inc)
              children:
                - include: {file: $(dirname)/inc.launch.yaml}
        """)
    assert main(['launch', str(path), '-s']) == 0
    out = capsys.readouterr().out
    assert "'use_inc':" in out and "'inner':\n        In include.\n        (default: 'x')" in out
