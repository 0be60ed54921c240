"""FuriosaAI RNGD backend: EDF compilation through the vendor compiler; no runner yet.

Compilation runs ``furiosa.native_compiler.compile`` in the Furiosa toolchain's own environment
(``.venv-furiosa``: the compiler pins torch 2.7.0) through ``furiosa_worker.py``. Running needs
an RNGD card and a runtime API that executes a compiled vision graph; the published
``furiosa-native-runtime`` (2026.x) offers an LLM engine only, so this backend always reports
itself unavailable to run and the bridge falls back to CPU. It never emulates the device.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from kpai_npu_bridge.backends.base import CompilePlan, Component, ProgressFn
from kpai_npu_bridge.backends.common import BackendBase, pop_option, require_model_file
from kpai_npu_bridge.cache import ArtifactCache, CacheKey, file_sha256
from kpai_npu_bridge.compile_worker import run_worker
from kpai_npu_bridge.errors import BackendUnavailableError, ModelLoadError
from kpai_npu_bridge.manifest import load_manifest
from kpai_npu_bridge.toolchains import find_toolchain, install_command

__all__ = ['COMPILER_DIST', 'DEVICE_GLOB', 'NO_RUNNER', 'RUNTIME_DIST', 'FuriosaRngdBackend']

VENDOR = 'furiosa'
COMPILER_DIST = 'furiosa-native-compiler'
RUNTIME_DIST = 'furiosa-native-runtime'
# The RNGD kernel driver creates one management node per card (and npu<N>pe<k> per core).
DEVICE_GLOB = '/dev/rngd/npu*mgmt'
TARGET_NPUS = ('renegade',)  # RNGD's compiler target name
NO_RUNNER = ('none: the published furiosa-native-runtime Python API (2026.x) exposes only an LLM '
             'engine (furiosa.native_runtime.llm), no runner for a compiled vision graph; '
             'compiled EDF artifacts cannot be run by the bridge yet')
WORKER = Path(__file__).with_name('furiosa_worker.py')
# bump when the worker's conversion changes what it builds (part of the cache key)
WORKER_REVISION = 3
_DEFAULT_TIMEOUT_S = 4 * 3600.0  # a 6-layer CNN took 427 s on one core; YOLO-size takes far more


def static_onnx(src: Path, dst: Path, input_shape: list[int]) -> Path:
    """Write src with its input fixed to input_shape and shape arithmetic folded, to dst.

    The vendor compiler traces a torch module of static shapes: dynamic dimensions (the batch)
    become input_shape's, and ONNX Runtime's basic graph optimisations (standard operators
    only) fold what depends only on shapes (Shape, Range, Expand, ConstantOfShape, ...) into
    constants. Returns dst.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(src))
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        raise ModelLoadError(f'{src}: {len(inputs)} graph inputs; the compiler path takes one')
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise ModelLoadError(f'{src}: input rank {len(dims)} but the manifest gives '
                             f'{input_shape}')
    for dim, size in zip(dims, input_shape, strict=True):
        if dim.HasField('dim_value') and dim.dim_value not in (size, 0):
            raise ModelLoadError(f'{src}: input dimension {dim.dim_value} but the manifest '
                                 f'gives {size}')
        dim.Clear()
        dim.dim_value = size
    fixed = dst.with_name(dst.stem + '.fixed.onnx')
    onnx.save(model, str(fixed))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    try:
        ort.InferenceSession(str(fixed), options, providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime raises several unrelated exception types
        raise ModelLoadError(f'{src}: onnxruntime cannot fold the fixed-shape model: {err}'
                             ) from err
    finally:
        fixed.unlink(missing_ok=True)
    return dst


def _devices() -> list[str]:
    return sorted(glob.glob(DEVICE_GLOB))


def _local_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class FuriosaRngdBackend(BackendBase):
    """FuriosaAI RNGD: compiles to EDF ahead of time; cannot run (no published runner)."""

    name = 'furiosa-rngd'
    vendor = 'FuriosaAI (RNGD)'

    @staticmethod
    def components() -> list[Component]:
        """Report device, runtime, compiler and runner: what is present and what is missing."""
        devices = _devices()
        runtime = _local_version(RUNTIME_DIST)
        chain = find_toolchain(VENDOR)
        compiler = chain.versions.get(COMPILER_DIST)
        if compiler:
            compiler_text = f'{COMPILER_DIST} {compiler} in {chain.python}'
        elif chain.present:
            compiler_text = (f'{COMPILER_DIST} not installed in {chain.python}; '
                             f'install with: {install_command(VENDOR)}')
        else:
            compiler_text = f'not installed: {chain.describe_missing()}; ' \
                            f'install with: {install_command(VENDOR)}'
        return [
            Component('device', bool(devices), ', '.join(devices) if devices else
                      f'no RNGD card (nothing matches {DEVICE_GLOB})'),
            Component('runtime', runtime is not None,
                      f'{RUNTIME_DIST} {runtime}' if runtime else
                      f'{RUNTIME_DIST} not installed in this environment'),
            Component('compiler', bool(compiler), compiler_text),
            Component('runner', False, NO_RUNNER),
        ]

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        """Report whether models can run here, with every missing part."""
        missing = [c for c in cls.components() if not c.present]
        return not missing, '; '.join(f'{c.name}: {c.detail}' for c in missing)

    def load(self, model_path: Path, *, device: str = '',
             options: Mapping[str, Any] | None = None, cache: ArtifactCache | None = None,
             progress: ProgressFn | None = None) -> None:
        """Refuse to load: there is no runner (and no device here); never emulate."""
        raise BackendUnavailableError(f'{self.name}: cannot run models: {self.probe()[1]}')

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Refuse to run (nothing can be loaded)."""
        raise BackendUnavailableError(f'{self.name}: cannot run models: {NO_RUNNER}')

    def close(self) -> None:
        """Nothing to release."""
        self._info = None

    @classmethod
    def compile_plan(cls, model_path: Path, *, device: str = '',
                     options: Mapping[str, Any] | None = None) -> CompilePlan:
        """Plan an EDF build by furiosa.native_compiler in the Furiosa toolchain environment."""
        path = require_model_file(model_path)
        opts = dict(options or {})
        timeout_s = float(pop_option(opts, 'compile_timeout_s', float, _DEFAULT_TIMEOUT_S))
        BackendBase._reject_unknown(opts, cls.name)
        target = device or TARGET_NPUS[0]
        if target not in TARGET_NPUS:
            raise ModelLoadError(f'{cls.name}: unknown target NPU {target!r}; use one of '
                                 f'{list(TARGET_NPUS)}')
        manifest = load_manifest(path)
        chain = find_toolchain(VENDOR)
        version = chain.versions.get(COMPILER_DIST)
        if chain.python is None or not version:
            where = (chain.describe_missing() if chain.python is None else
                     f'{COMPILER_DIST} is not installed in {chain.python}')
            raise BackendUnavailableError(f'{cls.name}: compiler not installed: {where}; '
                                          f'install it with: {install_command(VENDOR)}')
        python = chain.python
        shape = [1 if d is None else int(d) for d in manifest.input.shape]
        key = CacheKey(file_sha256(path, reuse=True), cls.name, f'{COMPILER_DIST} {version}',
                       target, {'target_ir': 'edf', 'config': 'vision', 'dtype': 'bfloat16',
                                'input_shape': shape, 'worker': WORKER_REVISION})
        request = {'op': 'compile', 'model': str(path.resolve()), 'target_npu': target,
                   'input_name': manifest.input.name, 'input_shape': shape}

        def build(out: Path, progress: ProgressFn | None) -> None:
            if progress is not None:
                progress('fixing the input shape and folding shape arithmetic (ONNX Runtime)',
                         0.01)
            static = static_onnx(path, out.with_name('static.onnx'), shape)
            result = run_worker([str(python), str(WORKER)],
                                {**request, 'model': str(static.resolve()),
                                 'output': str(out.resolve())},
                                label=cls.name, progress=progress, timeout_s=timeout_s)
            # what the worker says it ran (compiler, graph count, versions), kept with the EDF
            out.with_name('worker.json').write_text(json.dumps(result, indent=2) + '\n')

        return CompilePlan(key, 'model.edf', f'{COMPILER_DIST} {version}', build)
