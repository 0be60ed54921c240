"""Furiosa RNGD compile worker, run by path with the toolchain environment's Python.

Only the standard library, that environment's packages (torch 2.7.0, furiosa-native-compiler,
onnx, PyYAML) and ``static_graph.py`` beside this file are importable here: the kpai packages
are not installed in it. The request's model is already static (batch fixed, shape arithmetic
folded: ``backend.static_onnx``); ``static_graph`` turns it into the torch module the compiler
traces. It speaks the
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
DISTS = ('furiosa-native-compiler', 'furiosa-torch-ext', 'torch', 'onnx', 'PyYAML')


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
        import onnx
        import torch
        import yaml
        from furiosa.native_compiler import compile as furiosa_compile
        from furiosa.native_compiler import create_vision_compiler_config

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from static_graph import NotStaticError, StaticGraphModule, UnsupportedOperatorError
    except ImportError as err:
        return chan.fail(f'toolchain incomplete: {err}', 'missing')
    versions = _versions()
    compiler = f'furiosa-native-compiler {versions.get("furiosa-native-compiler", "?")}'
    chan.progress('converting the static ONNX graph to a torch module', 0.05)
    model = onnx.load(req['model'])
    try:
        module = StaticGraphModule(model)
    except UnsupportedOperatorError as err:
        return chan.fail(f'ONNX operators the torch lowering does not support: {err}',
                         'unsupported-operator')
    except NotStaticError as err:
        return chan.fail(str(err), 'not-static')
    # The RNGD compiler takes bf16 graphs (it rejects fp32 convolutions): compile_ casts.
    example = torch.zeros(req['input_shape'], dtype=torch.bfloat16)
    # create_vision_compiler_config() returns YAML text and compile() takes a mapping: the
    # vendor's own caller (furiosa_llm.parallelize.compiler_config) yaml.safe_loads it too
    config = yaml.safe_load(create_vision_compiler_config())

    def compile_(mod: Any) -> Any:
        return furiosa_compile(mod.eval().to(torch.bfloat16), (example,),
                               target_npu=req['target_npu'], target_ir='edf', config=config)

    chan.progress(f'compiling for {req["target_npu"]} (EDF); this takes minutes on a CPU', 0.1)
    t0 = time.monotonic()
    try:
        result = compile_(module)
    except RuntimeError as err:  # the compiler names an operator by an internal id only
        reason = _first_line(err)
        if not req.get('bisect', True) or not _rejects_operator(reason):
            raise
        blocked = _first_rejected(chan, lambda k: compile_(StaticGraphModule(model, upto=k)),
                                  module.node_names)
        return chan.fail(f'the compiler rejects an operator ({reason}); {blocked}',
                         'unsupported-operator')
    compile_s = time.monotonic() - t0
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
              compiler_s=round(compile_s, 2), lowered_nodes=len(module.node_names),
              bytes=out.stat().st_size, versions=versions)
    return 0


_REJECTS = ('is not an operator that is yet supported', 'Not importable', 'failed to lower')


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _rejects_operator(reason: str) -> bool:
    return any(r in reason for r in _REJECTS)


def _first_rejected(chan: _Channel, compile_prefix: Any, names: list[str]) -> str:
    """Bisect over graph prefixes for the first node the compiler rejects; describe it.

    A prefix of k nodes compiles when none of its nodes is rejected (each prefix returns its
    whole frontier, so nothing in it is dead code), so log2(n) compiles find the first one.
    """
    ok, bad = 0, len(names)  # the empty prefix compiles; the whole graph did not
    bad_reason = ''
    step = 0
    while bad - ok > 1:
        mid = (ok + bad) // 2
        step += 1
        chan.progress(f'finding the operator the compiler rejects: compiling the first {mid} '
                      f'of {len(names)} nodes (step {step})', min(0.95, 0.1 + 0.1 * step))
        try:
            compile_prefix(mid)
            ok = mid
        except RuntimeError as err:
            bad, bad_reason = mid, _first_line(err)
    node = names[bad - 1]
    tail = f' (compiling the first {bad} nodes: {bad_reason})' if bad_reason else ''
    return f'first rejected node: {node}, node {bad} of {len(names)} in graph order{tail}'


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
