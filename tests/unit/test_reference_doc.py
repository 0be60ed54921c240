"""docs/reference.md covers every node executable of the workspace."""

from __future__ import annotations

import ast
import re

from kpai_testing import ROOT

# console scripts that are command-line tools or test/data helpers, not deployed nodes
NOT_IN_REFERENCE = {'kpai', 'kpai-npu', 'kpai-fleet', 'kpai-sim-map', 'kpai-sim-gazebo',
                    'kpai-dataset', 'kpai-train', 'kpai-select', 'player', 'wander',
                    'kinematic_sim', 'talker', 'listener',
                    'robot_stack'}  # not a node: it hosts documented nodes in one process


def _console_scripts() -> set[str]:
    names = set()
    for setup in ROOT.glob('src/*/setup.py'):
        for node in ast.walk(ast.parse(setup.read_text())):
            if not isinstance(node, ast.Dict):
                continue
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    assert isinstance(value, ast.List)
                    names |= {str(e.value).split('=')[0].strip() for e in value.elts
                              if isinstance(e, ast.Constant)}
    return names


def test_every_node_is_documented() -> None:
    text = (ROOT / 'docs' / 'reference.md').read_text()
    documented = set(re.findall(r'^## `([\w-]+)`', text, re.M))
    nodes = _console_scripts() - NOT_IN_REFERENCE
    assert nodes, 'no console scripts found'
    missing = nodes - documented
    assert not missing, f'run scripts/gen_reference.py: {sorted(missing)} not in the reference'
    assert '| parameter | type | default | description |' in text
