"""Third-party backend plug-ins for tests, installed as a fake distribution on sys.path."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PLUGIN_MODULE = textwrap.dedent('''
    """Test vendor backends: deliberately wrong in one way each."""
    import numpy as np

    from kpai_npu_bridge.backends.onnxruntime_backend import OnnxRuntimeBackend


    class PerturbedBackend(OnnxRuntimeBackend):
        """Shifts every output: must fail parity."""

        name = 'perturbed'
        vendor = 'Test Vendor (perturbs outputs)'

        def run(self, batch):
            return [o + np.float32(0.5) + np.float32(0.05) * np.abs(o) for o in super().run(batch)]


    class NoisyBackend(OnnxRuntimeBackend):
        """Adds tiny random noise: passes parity, must fail determinism."""

        name = 'noisy'
        vendor = 'Test Vendor (non-deterministic)'

        def run(self, batch):
            rng = np.random.default_rng()
            return [o + rng.normal(0, 1e-4, o.shape).astype(o.dtype) for o in super().run(batch)]


    class SloppyBackend(OnnxRuntimeBackend):
        """Does not validate inputs: runtime exceptions leak, must fail bad inputs."""

        name = 'sloppy'
        vendor = 'Test Vendor (no input checks)'

        def run(self, batch):
            return list(self._session.run(None, dict(batch)))


    class CrashingBackend(OnnxRuntimeBackend):
        """Dies like a segfaulting driver on a malformed batch: must fail bad inputs."""

        name = 'crashing'
        vendor = 'Test Vendor (crashes)'

        def run(self, batch):
            import os
            import signal

            if any(a.shape[1:] != (3, 64, 64) for a in batch.values()):
                os.kill(os.getpid(), signal.SIGSEGV)
            return super().run(batch)


    class NoDeviceBackend(OnnxRuntimeBackend):
        """Its probe finds no device."""

        name = 'nodevice'

        @staticmethod
        def probe():
            return False, 'no NPU found at /dev/fake-npu0'
''')

ENTRY_POINTS = textwrap.dedent("""
    [kpai_npu_bridge.backends]
    perturbed = kpai_test_vendor_plugins:PerturbedBackend
    noisy = kpai_test_vendor_plugins:NoisyBackend
    sloppy = kpai_test_vendor_plugins:SloppyBackend
    crashing = kpai_test_vendor_plugins:CrashingBackend
    nodevice = kpai_test_vendor_plugins:NoDeviceBackend
    broken = kpai_test_vendor_missing_module:Backend
    onnxruntime = kpai_test_vendor_plugins:PerturbedBackend
""")


def install_test_plugins(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the plug-in module and a dist-info declaring its entry points; put it on sys.path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / 'kpai_test_vendor_plugins.py').write_text(PLUGIN_MODULE)
    dist = root / 'kpai_test_vendor-0.1.dist-info'
    dist.mkdir(exist_ok=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: kpai-test-vendor\nVersion: 0.1\n')
    (dist / 'entry_points.txt').write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(root))
    return root


WORKSPACE_PLUGINS = ('kpai_npu_furiosa', 'kpai_npu_mobilint')
_SRC = Path(__file__).resolve().parents[2] / 'src'


def declared_entry_points(package: str, group: str = 'kpai_npu_bridge.backends') -> list[str]:
    """Return the entry points a workspace package's setup.py declares for group."""
    tree = ast.parse((_SRC / package / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'entry_points':
            groups = ast.literal_eval(node.value)
            return list(groups.get(group, []))
    return []


def install_workspace_plugins(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register the workspace's vendor plug-ins as installed distributions would be.

    Writes a dist-info per package with the entry points its setup.py declares (what colcon or
    pip would install) and puts the sources on sys.path, so discovery goes through
    importlib.metadata exactly as on a robot.
    """
    root.mkdir(parents=True, exist_ok=True)
    for package in WORKSPACE_PLUGINS:
        dist = root / f'{package}-0.1.0.dist-info'
        dist.mkdir(exist_ok=True)
        (dist / 'METADATA').write_text(
            f'Metadata-Version: 2.1\nName: {package}\nVersion: 0.1.0\n')
        lines = '\n'.join(declared_entry_points(package))
        (dist / 'entry_points.txt').write_text(f'[kpai_npu_bridge.backends]\n{lines}\n')
        monkeypatch.syspath_prepend(str(_SRC / package))
    monkeypatch.syspath_prepend(str(root))
    return root
