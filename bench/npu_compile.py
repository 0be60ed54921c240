"""Ahead-of-time compilation per backend: compile time, artifact size, and the cache-hit cost.

Models: the shipped detector (src/kpai_data/models/kpai_detector.onnx) and a YOLOv8n-shaped
detector (kpai_npu_bridge.models.build_yolov8n_like, 640x640, random weights). Backends: every
backend the registry knows that has a compile step, plus the workspace's vendor plug-ins even
when they are not installed as distributions. Each compile goes into a fresh cache (cold: the
compiler really runs), then a second call measures the cache hit. A backend that cannot
compile here is listed with the exact reason and no figures; nothing is estimated. A model
the vendor compiler refuses is listed as rejected, with the compiler's reason (the Furiosa
worker names the first ONNX node it rejects) and the time it took to reach that verdict.

Run:  python bench/npu_compile.py [--repeat 3] [--input-size 640]
Writes bench/results/npu_compile.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'npu_compile.json'
SHIPPED = ROOT / 'src' / 'kpai_data' / 'models' / 'kpai_detector.onnx'
# the workspace's vendor plug-ins, used when they are not installed as distributions
WORKSPACE_PLUGINS = {
    'furiosa-rngd': ('kpai_npu_furiosa', 'kpai_npu_furiosa.backend:FuriosaRngdBackend'),
    'mobilint': ('kpai_npu_mobilint', 'kpai_npu_mobilint.backend:MobilintBackend'),
}


def _register_workspace_plugins(site: Path) -> None:
    """Declare uninstalled workspace plug-ins through a dist-info, as an install would."""
    from kpai_npu_bridge.backends import available_backends

    known = available_backends()
    for name, (package, target) in WORKSPACE_PLUGINS.items():
        if name in known:
            continue
        dist = site / f'{package}-0.dist-info'
        dist.mkdir(parents=True)
        (dist / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {package}\nVersion: 0\n')
        (dist / 'entry_points.txt').write_text(
            f'[kpai_npu_bridge.backends]\n{name} = {target}\n')
        sys.path[:0] = [str(site), str(ROOT / 'src' / package)]


def _backends() -> tuple[list[str], list[dict[str, str]]]:
    """Return (names of backends with a compile step, rows for the ones without)."""
    from kpai_npu_bridge.aot import supports_compile
    from kpai_npu_bridge.backends import available_backends

    names, skipped = [], []
    for name, status in sorted(available_backends().items()):
        if status.cls is not None and supports_compile(status.cls):
            names.append(name)
        else:
            reason = status.reason if status.cls is None else 'no ahead-of-time compile step'
            skipped.append({'backend': name, 'status': 'no compile step', 'reason': reason})
    return names, skipped


def _compile(backend: str, model: Path, repeat: int) -> dict[str, Any]:
    from kpai_npu_bridge.aot import compile_model
    from kpai_npu_bridge.compile_worker import WorkerError
    from kpai_npu_bridge.errors import NpuBridgeError

    cold, hits, compiler_s = [], [], []
    result = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix='kpai-npu-compile-') as cache:
            t0 = time.perf_counter()
            try:
                result = compile_model(backend, model, cache_dir=Path(cache))
                cold.append(time.perf_counter() - t0)
                compiler_s.append(result.compile_seconds)
                t0 = time.perf_counter()
                hit = compile_model(backend, model, cache_dir=Path(cache))
                hits.append(time.perf_counter() - t0)
            except WorkerError as err:  # the vendor compiler ran and refused the model
                return {'backend': backend, 'status': 'rejected', 'kind': err.kind,
                        'seconds_to_verdict': round(time.perf_counter() - t0, 1),
                        'reason': str(err)}
            except NpuBridgeError as err:
                return {'backend': backend, 'status': 'not available',
                        'reason': f'{type(err).__name__}: {err}'}
            assert hit.cache_hit and not result.cache_hit
    assert result is not None
    return {
        'backend': backend, 'status': 'compiled', 'compiler': result.compiler,
        'device': result.device, 'artifact': result.artifact.name,
        'artifact_bytes': result.artifact_bytes,
        'compile_s_median': round(statistics.median(cold), 3),
        'compile_s_runs': [round(x, 3) for x in cold],
        'compiler_s_median': round(statistics.median(compiler_s), 3),
        'cache_hit_ms_median': round(1000 * statistics.median(hits), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Compile each model on each backend; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3, help='cold compiles per backend')
    parser.add_argument('--input-size', type=int, default=640, help='YOLOv8n-shaped input')
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from kpai_npu_bridge.models import build_yolov8n_like

    with tempfile.TemporaryDirectory(prefix='kpai-npu-models-') as tmp:
        _register_workspace_plugins(Path(tmp) / 'site')
        names, skipped = _backends()
        yolo = Path(tmp) / f'yolov8n_{args.input_size}.onnx'
        build_yolov8n_like(yolo, args.input_size)
        models = {'kpai_detector (shipped)': SHIPPED, f'yolov8n-shaped {args.input_size}': yolo}
        rows = []
        for label, path in models.items():
            for backend in names:
                row = {'model': label, 'model_bytes': path.stat().st_size,
                       **_compile(backend, path, args.repeat)}
                rows.append(row)
                if row['status'] == 'compiled':
                    print(f'{label:<26} {backend:<13} {row["compile_s_median"]:>8.3f} s '
                          f'{row["artifact_bytes"] / 1e6:>8.2f} MB  hit '
                          f'{row["cache_hit_ms_median"]:.1f} ms  ({row["compiler"]})')
                else:
                    print(f'{label:<26} {backend:<13} {row["status"]}: {row["reason"]}')
    for row in skipped:
        print(f'{"(all models)":<26} {row["backend"]:<13} {row["status"]}: {row["reason"]}')
    data = {
        'host': f'{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform(terse=True)}',
        'repeat': args.repeat, 'results': rows, 'without_compile_step': skipped,
        'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
