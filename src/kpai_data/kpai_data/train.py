"""`kpai-train`: train the stack's detector on a YOLO dataset, evaluate, export ONNX + manifest.

PyTorch is an optional extra (requirements/train.txt); inference uses the exported ONNX.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .dataset import load_dataset
from .errors import DataError, TrainingError
from .evaluation import decode_predictions, write_report
from .metrics import evaluate_map
from .train_data import LoadedSplit, augment, load_split

__all__ = ['TrainConfig', 'main', 'train']


@dataclass(frozen=True)
class TrainConfig:
    """Training options (saved in checkpoints; a resume must use the same ones)."""

    dataset: str
    out: str
    name: str = 'kpai_detector'
    epochs: int = 30
    batch: int = 16
    lr: float = 3e-3
    width: int = 320
    height: int = 256
    seed: int = 0
    threads: int = 2
    eval_every: int = 5
    max_minutes: float = 0.0  # wall-time budget: the LR schedule anneals to fit it
    score: float = 0.25
    iou: float = 0.45

    def validate(self) -> None:
        """Raise TrainingError with a reason on a bad option."""
        if self.width % 32 or self.height % 32 or self.width < 64 or self.height < 64:
            raise TrainingError('input width/height must be multiples of 32, >= 64')
        if self.epochs < 1 or self.batch < 1 or not self.lr > 0 or self.threads < 1:
            raise TrainingError('epochs, batch, threads >= 1 and lr > 0 required')


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise TrainingError('PyTorch is not installed: pip install -r requirements/train.txt '
                            '(torch==2.13.0, CPU build)') from err
    return torch


def _batch_tensor(torch: Any, images: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def _lr_at(cfg: TrainConfig, step: int, total: int, warmup: int, time_frac: float = 0.0,
           ) -> float:
    """Warmup then cosine; with a time budget the cosine follows the larger of step/time."""
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_frac))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def evaluate(torch: Any, model: Any, split: LoadedSplit, num_classes: int, *,
             batch: int = 32) -> tuple[float, list]:
    """Return mAP@0.5 and per-class AP of model on a loaded split."""
    from .detector import ExportWrapper

    wrapper = ExportWrapper(model).eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(split.images), batch):
            out = wrapper(_batch_tensor(torch, split.images[i:i + batch])).numpy()
            preds += decode_predictions(out)
    gts = [(t[:, 1:5], t[:, 0].astype(int)) for t in split.targets]
    model.train()
    return evaluate_map(preds, gts, num_classes)


def _save(torch: Any, path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix('.tmp')
    torch.save(state, tmp)
    tmp.replace(path)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train, evaluate on the val split, export ONNX + manifest + report; return the report."""
    cfg.validate()
    torch = _torch()
    from tqdm import tqdm

    from .detector import DetectorLoss, TinyDetector

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_samples, classes = load_dataset(cfg.dataset, 'train')
    val_samples, _ = load_dataset(cfg.dataset, 'val')
    if not train_samples or not val_samples:
        raise TrainingError(f'{cfg.dataset}: need images in both train ({len(train_samples)}) '
                            f'and val ({len(val_samples)}) splits')
    train_split = load_split(train_samples, cfg.height, cfg.width)
    val_split = load_split(val_samples, cfg.height, cfg.width)
    model = TinyDetector(len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=5e-4)
    criterion = DetectorLoss(len(classes))
    steps_per_epoch = math.ceil(len(train_split.images) / cfg.batch)
    total_steps, warmup = steps_per_epoch * cfg.epochs, min(steps_per_epoch, 100)
    ckpt_path = out / 'checkpoint.pt'
    start_epoch, best_map, history, best_state = 0, -1.0, [], None
    elapsed = 0.0
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        if ckpt['config'] != asdict(cfg) | {'epochs': ckpt['config']['epochs'],
                                          'max_minutes': ckpt['config']['max_minutes']}:
            raise TrainingError(f'{ckpt_path} was made with other options: {ckpt["config"]}')
        model.load_state_dict(ckpt['model'])
        optimizer.load_state_dict(ckpt['optimizer'])
        start_epoch, best_map = ckpt['epoch'], ckpt['best_map']
        history, best_state, elapsed = ckpt['history'], ckpt['best_state'], ckpt['elapsed']
    model.train()
    started = time.monotonic() - elapsed
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(train_split.images))
        bar = tqdm(range(steps_per_epoch), desc=f'epoch {epoch + 1}/{cfg.epochs}',
                   disable=not progress, unit='batch')
        losses = []
        for b in bar:
            time_frac = ((time.monotonic() - started) / (cfg.max_minutes * 60)
                         if cfg.max_minutes > 0 else 0.0)
            if time_frac >= 1.0:
                break
            idx = order[b * cfg.batch:(b + 1) * cfg.batch]
            pairs = [augment(rng, train_split.images[i], train_split.targets[i]) for i in idx]
            images = _batch_tensor(torch, np.stack([p[0] for p in pairs]))
            targets = [torch.from_numpy(p[1]) for p in pairs]
            for group in optimizer.param_groups:
                group['lr'] = _lr_at(cfg, epoch * steps_per_epoch + b, total_steps, warmup,
                                     time_frac)
            loss, parts = criterion(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f'{np.mean(losses[-20:]):.3f}', cls=f'{parts["cls"]:.3f}',
                            box=f'{parts["box"]:.3f}')
        bar.close()
        over_budget = cfg.max_minutes > 0 and time.monotonic() - started > cfg.max_minutes * 60
        last = epoch + 1 == cfg.epochs or over_budget
        entry: dict[str, Any] = {'epoch': epoch + 1, 'steps': len(losses),
                                 'loss': float(np.mean(losses)) if losses else None}
        if (epoch + 1) % cfg.eval_every == 0 or last:
            entry['map50'], _ = evaluate(torch, model, val_split, len(classes))
            if entry['map50'] > best_map:
                best_map = entry['map50']
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            if progress:
                print(f'epoch {epoch + 1}: val mAP@0.5 {entry["map50"]:.3f} (best {best_map:.3f})',
                      flush=True)
        history.append(entry)
        _save(torch, ckpt_path, {'config': asdict(cfg), 'model': model.state_dict(),
                                 'optimizer': optimizer.state_dict(), 'epoch': epoch + 1,
                                 'best_map': best_map, 'history': history,
                                 'best_state': best_state,
                                 'elapsed': time.monotonic() - started})
        if over_budget:
            stopped_early = epoch + 1 < cfg.epochs
            break
    train_seconds = time.monotonic() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    map50, per_class = evaluate(torch, model, val_split, len(classes))
    onnx_path = export_onnx(torch, model, out / f'{cfg.name}.onnx', cfg.height, cfg.width)
    manifest = write_manifest(onnx_path, classes, cfg)
    latency = onnx_latency_ms(onnx_path, val_split.images[:20])
    extra = {'train_images': len(train_split.images), 'val_images': len(val_split.images),
             'epochs_run': len(history), 'epochs_planned': cfg.epochs,
             'stopped_by_time_budget': stopped_early,
             'train_minutes': round(train_seconds / 60, 2), 'threads': cfg.threads,
             'input': f'{cfg.width}x{cfg.height} letterbox', 'seed': cfg.seed,
             'onnx_cpu_latency_ms_p50': latency, 'onnx_bytes': onnx_path.stat().st_size,
             'sha256': manifest['sha256'], 'torch': torch.__version__,
             'dataset': str(Path(cfg.dataset).resolve())}
    write_report(out, cfg.name, classes=classes, map50=map50, per_class=per_class, extra=extra)
    (out / f'{cfg.name}.history.json').write_text(json.dumps(history, indent=1) + '\n')
    return {'map50': map50, 'onnx': str(onnx_path), **extra}


def export_onnx(torch: Any, model: Any, path: Path, height: int, width: int) -> Path:
    """Export the deployable [N, 4+C, A] model to ONNX with a dynamic batch."""
    import warnings

    from .detector import ExportWrapper

    wrapper = ExportWrapper(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(wrapper, torch.zeros(1, 3, height, width), str(path), dynamo=False,
                          input_names=['images'], output_names=['output0'], opset_version=17,
                          dynamic_axes={'images': {0: 'batch'}, 'output0': {0: 'batch'}})
    return path


def write_manifest(onnx_path: Path, classes: list[str], cfg: TrainConfig) -> dict[str, Any]:
    """Write the NPU bridge manifest (<model>.yaml) beside the ONNX file."""
    manifest = {
        'task': 'detection',
        'description': f'{cfg.name}: kpai_data TinyDetector trained on {Path(cfg.dataset).name}',
        'input': {'name': 'images', 'shape': [-1, 3, cfg.height, cfg.width], 'layout': 'NCHW',
                  'dtype': 'float32'},
        'preprocess': {'resize': 'letterbox', 'color': 'rgb', 'scale': 1.0 / 255.0,
                       'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0], 'pad_value': 114},
        'decoder': {'type': 'yolov8', 'softmax': False, 'top_k': 1,
                    'class_agnostic_nms': False},
        'thresholds': {'score': cfg.score, 'iou': cfg.iou, 'max_detections': 100},
        'labels': list(classes),
        'sha256': hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
    }
    onnx_path.with_suffix('.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False))
    return manifest


def onnx_latency_ms(path: Path, images: np.ndarray) -> float | None:
    """Median single-image onnxruntime CPU latency (ms), or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    times = []
    for img in images:
        x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        t = time.perf_counter()
        session.run(None, {'images': x})
        times.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(times)), 2) if times else None


def main(argv: list[str] | None = None) -> int:
    """Command line: kpai-train DATASET -o OUT [options]."""
    p = argparse.ArgumentParser(prog='kpai-train', description=__doc__)
    p.add_argument('dataset', help='YOLO dataset directory (from kpai-dataset)')
    p.add_argument('-o', '--out', required=True, help='output directory')
    p.add_argument('--name', default='kpai_detector')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--imgsz', default='320x256', help='input WIDTHxHEIGHT (multiples of 32)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--eval-every', type=int, default=5)
    p.add_argument('--max-minutes', type=float, default=0.0,
                   help='wall-time budget: the LR schedule anneals within it and training '
                        'stops when it is spent (runs are then not bit-reproducible)')
    p.add_argument('--resume', action='store_true', help='continue from OUT/checkpoint.pt')
    p.add_argument('--quiet', action='store_true')
    a = p.parse_args(argv)
    try:
        width, height = (int(v) for v in a.imgsz.lower().split('x'))
        cfg = TrainConfig(dataset=a.dataset, out=a.out, name=a.name, epochs=a.epochs,
                          batch=a.batch, lr=a.lr, width=width, height=height, seed=a.seed,
                          threads=a.threads, eval_every=max(1, a.eval_every),
                          max_minutes=a.max_minutes)
        report = train(cfg, resume=a.resume, progress=not a.quiet)
    except ValueError:
        print(f'kpai-train: bad --imgsz {a.imgsz!r} (WIDTHxHEIGHT)', file=sys.stderr)
        return 2
    except DataError as err:
        print(f'kpai-train: {err}', file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
