"""Substitution syntax and evaluation of the kpai launcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from kpai_bringup.launch.errors import PackageNotFoundError, SubstitutionError
from kpai_bringup.launch.substitutions import Subst, parse_template, to_bool


class Ctx:
    """A minimal SubstitutionContext."""

    def __init__(self, confs: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 prefixes: dict[str, str] | None = None) -> None:
        self.confs = confs or {}
        self.env = env or {}
        self.prefixes = prefixes or {}
        self.anons: dict[str, str] = {}

    @property
    def current_file(self) -> str:
        return '/pkgs/demo/launch/x.launch.yaml'

    def configuration(self, name: str) -> str | None:
        return self.confs.get(name)

    def environ(self) -> dict[str, str]:
        return self.env

    def package_prefix(self, package: str) -> str:
        if package not in self.prefixes:
            raise PackageNotFoundError(f"package '{package}' not found")
        return self.prefixes[package]

    def anon(self, name: str) -> str:
        return self.anons.setdefault(name, f'{name}_{len(self.anons)}')


def ev(text: str, ctx: Ctx | None = None) -> str:
    return parse_template(text, file='f.yaml', line=3).evaluate(ctx or Ctx())


def test_plain_text_is_unchanged() -> None:
    t = parse_template('hello world (1)')
    assert t.is_text
    assert t.evaluate(Ctx()) == 'hello world (1)'


def test_var_env_and_text_mix() -> None:
    ctx = Ctx({'robot': 'robot2'}, {'HOME': '/home/u'})
    assert ev('ns_$(var robot)/x', ctx) == 'ns_robot2/x'
    assert ev('$(env HOME)/.ros', ctx) == '/home/u/.ros'


def test_env_default_optenv_and_missing_env() -> None:
    assert ev('$(env NOPE fallback)') == 'fallback'
    assert ev("$(env NOPE 'two words')") == 'two words'
    assert ev('[$(optenv NOPE)]') == '[]'
    with pytest.raises(SubstitutionError, match="environment variable 'NOPE'"):
        ev('$(env NOPE)')


def test_nested_substitutions() -> None:
    ctx = Ctx({'which': 'robot', 'robot': 'r7'})
    assert ev('$(var $(var which))', ctx) == 'r7'
    assert ev('$(env X_$(var robot) none)', Ctx({'robot': 'r7'}, {'X_r7': 'yes'})) == 'yes'


def test_find_pkg_share_prefix_dirname_filename() -> None:
    ctx = Ctx(prefixes={'demo': '/opt/ws/install/demo'})
    assert ev('$(find-pkg-share demo)/config/a.yaml', ctx) == \
        '/opt/ws/install/demo/share/demo/config/a.yaml'
    assert ev('$(find-pkg-prefix demo)', ctx) == '/opt/ws/install/demo'
    assert ev('$(dirname)/other.yaml', ctx) == '/pkgs/demo/launch/other.yaml'
    assert ev('$(filename)', ctx) == '/pkgs/demo/launch/x.launch.yaml'
    with pytest.raises(PackageNotFoundError):
        ev('$(find-pkg-share missing)', ctx)


def test_anon_is_stable_per_name() -> None:
    ctx = Ctx()
    first = ev('$(anon node)', ctx)
    assert first.startswith('node_')
    assert ev('$(anon node)', ctx) == first
    assert ev('$(anon other)', ctx) != first


def test_boolean_substitutions() -> None:
    ctx = Ctx({'a': 'true', 'b': 'False'})
    assert ev('$(not $(var a))', ctx) == 'false'
    assert ev('$(and $(var a) $(var b))', ctx) == 'false'
    assert ev('$(or $(var a) $(var b))', ctx) == 'true'
    assert ev('$(equals $(var a) true)', ctx) == 'true'
    assert ev('$(not-equals $(var a) true)', ctx) == 'false'


def test_escaped_dollar_is_literal() -> None:
    assert ev(r'cost \$(var x)') == 'cost $(var x)'


def test_parse_structure() -> None:
    t = parse_template("a$(env X 'b c')d")
    assert t.parts[0] == 'a' and t.parts[2] == 'd'
    sub = t.parts[1]
    assert isinstance(sub, Subst) and sub.name == 'env'
    assert [a.evaluate(Ctx()) for a in sub.args] == ['X', 'b c']


@pytest.mark.parametrize('text, message', [
    ('$(bogus x)', 'unknown substitution'),
    ('$(var x', 'unterminated'),
    ('$(var)', 'takes 1 argument'),
    ('$(var a b)', 'takes 1 argument'),
    ("$(env X 'open)", 'unterminated'),
    ('$()', 'expected a substitution name'),
])
def test_syntax_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message) as info:
        parse_template(text, file='robot.launch.yaml', line=12)
    assert str(info.value).startswith('robot.launch.yaml:12: ')


def test_missing_var_is_an_error_with_location() -> None:
    with pytest.raises(SubstitutionError) as info:
        ev('$(var robot)')
    assert "launch configuration 'robot' does not exist" in str(info.value)
    assert str(info.value).startswith('f.yaml:3:')


def test_to_bool() -> None:
    assert to_bool('True') and to_bool('1') and not to_bool('false') and not to_bool('0')
    with pytest.raises(SubstitutionError):
        to_bool('yes please')


def test_find_exec_uses_path(tmp_path: Path) -> None:
    exe = tmp_path / 'mytool'
    exe.write_text('#!/bin/sh\n')
    exe.chmod(0o755)
    assert ev('$(find-exec mytool)', Ctx(env={'PATH': str(tmp_path)})) == str(exe)
    with pytest.raises(SubstitutionError):
        ev('$(find-exec nothere)', Ctx(env={'PATH': str(tmp_path)}))
