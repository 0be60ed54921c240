"""Furiosa RNGD compile worker, run by path with the toolchain environment's Python.

Only the standard library and that environment's packages (torch 2.7.0, furiosa-native-compiler,
onnx, onnx2torch) are importable here: the kpai packages are not installed in it. It speaks the
JSON-lines protocol of kpai_npu_bridge.compile_worker: one request on stdin, progress events
and one result on stdout. Everything the vendor libraries print goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

PROTOCOL = 1
DISTS = ('furiosa-native-compiler', 'furiosa-torch-ext', 'torch', 'onnx', 'onnx2torch')


class _Channel:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.t0 = time.monotonic()

    def send(self, **message: Any) -> None:
        self.stream.write(json.dumps(message) + '\n')
        self.stream.flush()

    def progress(self, message: str, fraction: float) -> None:
        elapsed = time.monotonic() - self.t0
        self.send(event='progress', message=f'{message} [{elapsed:.0f} s]', fraction=fraction)

    def fail(self, error: str, kind: str) -> int:
        self.send(event='result', ok=False, error=error, kind=kind)
        return 1


def _versions() -> dict[str, str]:
    out = {}
    for dist in DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _compile(chan: _Channel, req: dict[str, Any]) -> int:
    chan.progress('importing torch and furiosa.native_compiler', 0.02)
    try:
        import torch
        from furiosa.native_compiler import compile as furiosa_compile
        from furiosa.native_compiler import create_vision_compiler_config
        from onnx2torch import convert
    except ImportError as err:
        return chan.fail(f'toolchain incomplete: {err}', 'missing')
    versions = _versions()
    compiler = f'furiosa-native-compiler {versions.get("furiosa-native-compiler", "?")}'
    chan.progress('converting the ONNX graph to torch (onnx2torch)', 0.05)
    try:
        module = convert(req['model'])
    except NotImplementedError as err:  # onnx2torch names the operator it cannot convert
        return chan.fail(f'ONNX operator not convertible to torch: {err}', 'unsupported-operator')
    # The RNGD compiler takes bf16 graphs (it rejects fp32 convolutions).
    module = module.eval().to(torch.bfloat16)
    example = torch.zeros(req['input_shape'], dtype=torch.bfloat16)
    chan.progress(f'compiling for {req["target_npu"]} (EDF); this takes minutes on a CPU', 0.1)
    result = furiosa_compile(module, (example,), target_npu=req['target_npu'], target_ir='edf',
                             config=create_vision_compiler_config())
    graphs = getattr(result, 'graphs', None)
    if graphs is None:
        graphs = [result] if hasattr(result, 'serialize') else []
    if not graphs:
        return chan.fail(f'the compiler returned {type(result).__name__}, no compiled graph: '
                         'the model was not lowered to the NPU', 'not-lowered')
    non_edf = [i for i, g in enumerate(graphs) if not g.is_edf()]
    if non_edf:
        return chan.fail(f'compiled graph(s) {non_edf} are not EDF', 'not-lowered')
    out = Path(req['output'])
    out.write_bytes(graphs[0].serialize())
    for i, graph in enumerate(graphs[1:], start=1):  # a partitioned model: keep every part
        out.with_name(f'{out.stem}.{i}{out.suffix}').write_bytes(graph.serialize())
    chan.progress('EDF written', 1.0)
    chan.send(event='result', ok=True, compiler=compiler, graphs=len(graphs),
              bytes=out.stat().st_size, versions=versions)
    return 0


def main() -> int:
    """Serve one request from stdin; return the exit code."""
    chan = _Channel(os.fdopen(os.dup(1), 'w'))
    os.dup2(2, 1)  # vendor prints (C and Python) go to stderr; stdout is the protocol
    sys.stdout = sys.stderr
    try:
        req = json.loads(sys.stdin.readline())
    except ValueError as err:
        return chan.fail(f'bad request: {err}', 'protocol')
    if not isinstance(req, dict) or req.get('protocol') != PROTOCOL:
        return chan.fail(f'unsupported protocol in request: {req!r:.200}', 'protocol')
    try:
        if req.get('op') == 'versions':
            chan.send(event='result', ok=True, versions=_versions())
            return 0
        if req.get('op') == 'compile':
            return _compile(chan, req)
        return chan.fail(f'unknown op {req.get("op")!r}', 'protocol')
    except Exception as err:  # the vendor compiler's own errors: report them, do not hide them
        return chan.fail(f'{type(err).__name__}: {err}', 'compile')


if __name__ == '__main__':
    sys.exit(main())
