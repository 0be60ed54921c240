"""kpai-npu: list backends, compile ahead of time, certify a backend, benchmark a model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .backends.registry import available_backends
from .errors import ModelLoadError, NpuBridgeError

__all__ = ['main']


def _components(cls: object) -> list[tuple[str, bool, str]]:
    """Return (part, present, detail) rows a backend class reports, or a row saying why not."""
    hook = getattr(cls, 'components', None)
    if not callable(hook):
        return []
    try:
        return [(c.name, bool(c.present), str(c.detail)) for c in hook()]
    except Exception as err:  # a plug-in's report must not break the listing
        return [('components', False, f'report failed: {type(err).__name__}: {err}')]


def _cmd_backends(args: argparse.Namespace) -> int:
    from .aot import supports_compile

    rows = [('name', 'available', 'vendor / device / runtime, or reason')]
    parts: dict[str, list[tuple[str, bool, str]]] = {}
    for name, status in sorted(available_backends().items()):
        detail = status.reason
        if status.cls is not None:
            vendor = getattr(status.cls, 'vendor', '')
            detail = '; '.join(x for x in (vendor, status.reason) if x)
            parts[name] = _components(status.cls)
            missing = [part for part, present, _ in parts[name] if not present]
            if parts[name] and not status.available:  # the parts below give the reasons
                detail = f'{vendor}; missing: {", ".join(missing) or "see the probe"}'
            if supports_compile(status.cls) and not parts[name]:
                parts[name] = [('compile', True, 'ahead-of-time: kpai-npu compile')]
        rows.append((name, 'yes' if status.available else 'NO', detail))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for row in rows:
        print(f'{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}')
        for part, present, text in parts.get(row[0], []):
            print(f'{"":<{widths[0]}}    {"+" if present else "-"} {part}: {text}')
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from .aot import compile_model

    progress = _Progress(args.quiet)
    try:
        options = json.loads(args.options) if args.options else None
    except ValueError as err:
        raise ModelLoadError(f'--options is not valid JSON: {err}') from err
    if options is not None and not isinstance(options, dict):
        raise ModelLoadError('--options must be a JSON object')
    result = compile_model(args.backend, Path(args.model), device=args.device,
                           cache_dir=args.out or args.cache_dir, options=options,
                           progress=progress.compile)
    how = 'found in cache, compiled earlier' if result.cache_hit else 'compiled'
    print(f'{args.backend}: {how} in {result.compile_seconds:.2f} s with {result.compiler}; '
          f'artifact {result.artifact} ({result.artifact_bytes} bytes); record {result.record}')
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2) + '\n')
    return 0


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(',') if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'batch sizes must be integers: {text!r}') from err
    if not sizes or any(b < 1 or b > 256 for b in sizes):
        raise argparse.ArgumentTypeError(f'batch sizes must be in 1..256: {text!r}')
    return sizes


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from err
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'expected a value in [0, 1], got {text!r}')
    return value


def _image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'image size must be WxH, got {text!r}') from err
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f'image size must be positive, got {text!r}')
    return w, h


class _Progress:
    """Progress lines on stderr with elapsed time (plain lines, so logs stay readable)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.monotonic()

    def line(self, message: str) -> None:
        if not self.quiet:
            print(f'[{time.monotonic() - self.t0:6.1f}s] {message}', file=sys.stderr, flush=True)

    def compile(self, message: str, fraction: float) -> None:
        self.line(message + (f' ({fraction:.0%})' if 0.0 < fraction < 1.0 else ''))


def _cmd_certify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .certify import EXIT_CODES, certify
    from .conformance import TASK_TOLERANCES
    from .manifest import load_manifest
    from .report import write_report

    progress = _Progress(args.quiet)
    out = args.out or Path('certification') / f'{args.backend}_{Path(args.model).stem}'
    overrides = {k: getattr(args, k) for k in ('rtol', 'atol', 'min_match_rate', 'score_abs')
                 if getattr(args, k) is not None}
    tolerances = None
    if overrides:
        task = load_manifest(Path(args.model)).task
        tolerances = replace(TASK_TOLERANCES[task], **overrides)
    report = certify(Path(args.model), args.backend, device=args.device,
                     iterations=args.iterations, batch_sizes=args.batch_sizes,
                     num_images=args.images, seed=args.seed, cache_dir=args.cache_dir,
                     tolerances=tolerances, isolate=not args.no_isolate,
                     progress=progress.line)
    paths = write_report(report, out)
    for check in report.checks:
        mark = 'SKIP' if check.skipped else 'PASS' if check.passed else 'FAIL'
        print(f'{mark}  {check.name:<12} {check.detail}')
    for stats in report.latency.get('candidate', []):
        print(f'      batch {stats.batch_size}: p50 {stats.p50_ms:.2f} ms, '
              f'p95 {stats.p95_ms:.2f} ms, {stats.throughput_fps:.1f} images/s')
    verdict = {'pass': 'PASSED', 'fail': 'FAILED', 'incomplete': 'INCOMPLETE'}[report.verdict]
    print(f'{args.backend}: certification {verdict}; report: {paths["markdown"]}')
    if report.incomplete:
        print(f'  {report.incomplete}', file=sys.stderr)
    return EXIT_CODES[report.verdict]


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .backends.registry import create_backend
    from .manifest import load_manifest, manifest_to_dict

    manifest = load_manifest(args.model)
    backend = create_backend(args.backend)
    backend.load(args.model)
    try:
        inputs, outputs = backend.inputs(), backend.outputs()
    finally:
        backend.close()
    data = manifest_to_dict(manifest)
    print(f'{args.model}: manifest {manifest.source} valid, sha256 verified')
    print(f'  task {data["task"]}, decoder {data["decoder"]["type"]}, '
          f'{manifest.num_classes} labels: {", ".join(manifest.labels)}')
    print(f'  input {data["input"]}')
    print(f'  preprocess {data["preprocess"]}')
    print(f'  thresholds {data["thresholds"]}')
    for kind, specs in (('model input', inputs), ('model output', outputs)):
        for spec in specs:
            shape = ['?' if d is None else d for d in spec.shape]
            print(f'  {kind} {spec.name}: {shape} {spec.dtype}')
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from .benchmark import bench_pipeline, bench_tensor
    from .golden import golden_images
    from .pipeline import Pipeline

    progress = _Progress(args.quiet)
    pipe = Pipeline.open(Path(args.model), backend=args.backend, device=args.device,
                         cache_dir=args.cache_dir, progress=progress.compile)
    try:
        info = pipe.backend_info
        w, h = args.image_size
        image = np.ascontiguousarray(
            np.resize(golden_images(4, args.seed)[2], (h, w, 3)).astype(np.uint8))
        tensor, _ = pipe.preprocess([image])
        progress.line(f'measuring backend latency at batch sizes {args.batch_sizes}')
        stats = bench_tensor(pipe, tensor, args.batch_sizes, iterations=args.iterations)
        progress.line('measuring the whole pipeline (pre + infer + post) on one image')
        stages = bench_pipeline(pipe, [image], iterations=args.iterations)
    finally:
        pipe.close()
    print(f'{info.name} {info.runtime_version} on {info.device}; model {args.model}')
    print(f'{"batch":>5} {"p50 ms":>9} {"p95 ms":>9} {"p99 ms":>9} {"images/s":>9}')
    for s in stats:
        print(f'{s.batch_size:>5} {s.p50_ms:>9.2f} {s.p95_ms:>9.2f} {s.p99_ms:>9.2f} '
              f'{s.throughput_fps:>9.1f}')
    print(f'pipeline {w}x{h} image: pre {stages["pre_p50_ms"]:.2f} ms, infer '
          f'{stages["infer_p50_ms"]:.2f} ms, post {stages["post_p50_ms"]:.2f} ms (p50)')
    if args.json:
        data = {'backend': info.name, 'device': info.device, 'runtime': info.runtime_version,
                'model': str(args.model), 'latency': [s.as_dict() for s in stats],
                'pipeline': stages}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + '\n')
    return 0


def _cmd_make_model(args: argparse.Namespace) -> int:
    from .models import build_color_classifier, build_yolov8n_like

    if args.kind == 'yolov8n':
        manifest = build_yolov8n_like(Path(args.out), args.input_size, width=args.width,
                                      seed=args.seed)
    else:
        manifest = build_color_classifier(Path(args.out), input_size=args.input_size)
    print(f'wrote {args.out} and {manifest.source} (sha256 {manifest.sha256})')
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from .cache import ArtifactCache, default_cache_dir

    cache = ArtifactCache(args.cache_dir or default_cache_dir())
    if args.clear:
        print(f'removed {cache.clear()} entries from {cache.root}')
        return 0
    entries = cache.entries()
    print(f'{len(entries)} entries in {cache.root}')
    for e in entries:
        print(f"  {e.get('backend')} {e.get('runtime_version')} {e.get('device')} "
              f"model {str(e.get('model_sha256'))[:12]} -> {e.get('path')}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument('--backend', required=True, help='backend name (see kpai-npu backends)')
    p.add_argument('--model', required=True, type=Path, help='model file with its manifest')
    p.add_argument('--device', default='', help="backend device ('' = backend default)")
    p.add_argument('--iterations', type=int, default=20, help='timed runs per batch size')
    p.add_argument('--batch-sizes', type=_batch_sizes, default=[1, 2, 4],
                   help='comma-separated batch sizes (default 1,2,4)')
    p.add_argument('--cache-dir', type=Path, default=None,
                   help='compiled-artifact cache (default $KPAI_NPU_CACHE or ~/.cache/kpai/npu)')
    p.add_argument('--seed', type=int, default=0, help='seed of the generated golden images')
    p.add_argument('--quiet', action='store_true', help='no progress lines on stderr')


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of kpai-npu."""
    parser = argparse.ArgumentParser(prog='kpai-npu', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('backends', help='list backends and whether they are usable here')
    p.set_defaults(func=_cmd_backends)
    p = sub.add_parser('certify', help='conformance of a backend against onnxruntime CPU',
                       description='Exit code: 0 passed, 1 failed, 2 usage or setup error, '
                                   '3 incomplete (the backend cannot run here, e.g. no device: '
                                   'only the compile stage ran).')
    _common(p)
    p.add_argument('--out', type=Path, default=None,
                   help='report directory (default certification/<backend>_<model>)')
    p.add_argument('--images', type=int, default=8, help='golden images (default 8)')
    p.add_argument('--no-isolate', action='store_true',
                   help='probe bad inputs in this process instead of a child process')
    for flag, meaning in (('--rtol', 'relative tolerance of raw outputs'),
                          ('--atol', 'absolute tolerance of raw outputs'),
                          ('--min-match-rate', 'share of decoded results that must match'),
                          ('--score-abs', 'largest score difference of matched results')):
        p.add_argument(flag, type=_fraction, default=None,
                       help=f'{meaning} (default: per task; recorded in the report)')
    p.set_defaults(func=_cmd_certify)
    p = sub.add_parser('compile', help='compile a model ahead of time into the artifact cache')
    p.add_argument('--backend', required=True, help='backend name (see kpai-npu backends)')
    p.add_argument('--model', required=True, type=Path, help='model file with its manifest')
    p.add_argument('--device', default='', help="backend device ('' = backend default)")
    p.add_argument('--out', type=Path, default=None,
                   help='write into this directory (a cache to ship to robots) instead of the '
                        'cache')
    p.add_argument('--cache-dir', type=Path, default=None,
                   help='compiled-artifact cache (default $KPAI_NPU_CACHE or ~/.cache/kpai/npu)')
    p.add_argument('--options', default='', help='backend options as a JSON object')
    p.add_argument('--json', type=Path, default=None, help='also write the result as JSON')
    p.add_argument('--quiet', action='store_true', help='no progress lines on stderr')
    p.set_defaults(func=_cmd_compile)
    p = sub.add_parser('inspect', help='validate a model manifest (and sha256) and show it')
    p.add_argument('model', type=Path, help='model file with its manifest beside it')
    p.add_argument('--backend', default='onnxruntime', help='backend used to read the model')
    p.set_defaults(func=_cmd_inspect)
    p = sub.add_parser('bench', help='latency and throughput of a backend on a model')
    _common(p)
    p.add_argument('--image-size', type=_image_size, default=(640, 480),
                   help='camera image size WxH for the pipeline figures (default 640x480)')
    p.add_argument('--json', type=Path, default=None, help='also write the figures as JSON')
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser('make-model', help='write a random-weight benchmark model + manifest')
    p.add_argument('kind', choices=['yolov8n', 'classifier'])
    p.add_argument('--out', required=True, type=Path, help='output .onnx path')
    p.add_argument('--input-size', type=int, default=640)
    p.add_argument('--width', type=float, default=1.0, help='channel width multiplier')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(func=_cmd_make_model)
    p = sub.add_parser('cache', help='list (or --clear) compiled artifacts')
    p.add_argument('--cache-dir', type=Path, default=None)
    p.add_argument('--clear', action='store_true')
    p.set_defaults(func=_cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NpuBridgeError as err:
        print(f'kpai-npu: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
