"""Every rclpy name the stack imports exists in the installed rclpy.

CI runs this on Jazzy (make test) and again on Kilted (.ci/run's Kilted tier), so code that
uses an API only one of the two distributions has fails here, with the file and the name.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _rclpy_imports() -> dict[tuple[str, str | None], list[str]]:
    """Map (module, name or None) -> files, for every `import rclpy...`/`from rclpy... import`."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for path in sorted([*ROOT.glob('src/**/*.py'), *ROOT.glob('tests/**/*.py'),
                        *ROOT.glob('bench/**/*.py')]):
        if 'build' in path.parts or 'install' in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            where = f'{path.relative_to(ROOT)}:{getattr(node, "lineno", 0)}'
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split('.')[0] == 'rclpy':
                for alias in node.names:
                    found.setdefault((node.module, alias.name), []).append(where)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split('.')[0] == 'rclpy':
                        found.setdefault((alias.name, None), []).append(where)
    return found


IMPORTS = _rclpy_imports()


def test_the_scan_finds_the_stacks_rclpy_imports() -> None:
    assert ('rclpy.node', 'Node') in IMPORTS
    assert ('rclpy.lifecycle', 'LifecycleNode') in IMPORTS
    assert len(IMPORTS) > 25


@pytest.mark.parametrize(('module', 'name'), sorted(IMPORTS, key=str), ids=str)
def test_rclpy_name_exists(module: str, name: str | None) -> None:
    mod = importlib.import_module(module)
    if name is not None:
        assert hasattr(mod, name) or importlib.util.find_spec(f'{module}.{name}'), (
            f'{module}.{name} (used at {", ".join(IMPORTS[(module, name)])}) is missing '
            f'from rclpy {importlib.metadata.version("rclpy")}')
