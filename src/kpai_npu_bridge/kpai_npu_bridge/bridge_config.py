"""Validated configuration of the npu_bridge node and its topic naming rule (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    'DEFAULTS',
    'DESCRIPTIONS',
    'BridgeConfig',
    'ConfigError',
    'detections_topic_for',
    'output_topics_for',
    'parse_options',
    'validate_value',
]

# Parameter name -> default; the node declares exactly these.
DEFAULTS: dict[str, Any] = {
    'model_path': '',
    'backend': 'onnxruntime',
    'device': '',
    'image_topics': ['camera/image_raw'],
    'output_topics': [''],
    'max_batch': 4,
    'max_wait_ms': 10.0,
    'cache_dir': '',
    'backend_options': [''],
    'fallback_after_failures': 3,
    'score_threshold': -1.0,
    'stats_period': 1.0,
    'stats_window': 10.0,
    'autostart': True,
}

DESCRIPTIONS: dict[str, str] = {
    'model_path': 'model file (ONNX); its manifest is <model>.yaml beside it',
    'backend': 'backend plug-in name (kpai_npu_bridge.backends entry point), e.g. onnxruntime',
    'device': "backend device, '' for the backend's default",
    'image_topics': 'sensor_msgs/Image topics, one per camera (relative names are namespaced)',
    'output_topics': "Detection2DArray topic per camera; '' or [''] derives it from the image "
                     'topic: <camera namespace>/detections, a trailing camera namespace '
                     'segment `camera` dropped (camera/image_raw -> detections)',
    'max_batch': 'most frames inferred together (one per camera)',
    'max_wait_ms': 'longest wait for more cameras after the oldest pending frame, ms',
    'cache_dir': "compiled-artifact cache directory, '' for the library default",
    'backend_options': "backend load options as 'key=value' strings, e.g. "
                       "'intra_op_num_threads=2' (numbers and true/false are converted)",
    'fallback_after_failures': 'consecutive backend failures before switching to CPU '
                               'onnxruntime (0 disables the fallback)',
    'score_threshold': 'drop detections below this score; < 0 keeps the manifest threshold',
    'stats_period': 'period of /diagnostics and inference_stats, s',
    'stats_window': 'rolling window of latency percentiles and fps, s',
    'autostart': 'configure and activate at start without a lifecycle manager',
}

# The stack's default camera namespace; its detections go to the robot-level `detections`.
_DEFAULT_CAMERA_NS = 'camera'


class ConfigError(ValueError):
    """A parameter value is invalid; the message says which and why."""


def detections_topic_for(image_topic: str) -> str:
    """Derive a camera's detections topic: drop the image topic's last segment, add detections.

    ``front/image_raw`` -> ``front/detections``; ``/r1/front/image`` -> ``/r1/front/detections``;
    a namespace ending in the stack's default camera ``camera`` loses it, so
    ``camera/image_raw`` -> ``detections`` (the per-robot contract);
    a topic without a namespace (``image_raw``) -> ``detections``.
    """
    topic = image_topic.strip()
    absolute = topic.startswith('/')
    parts = [p for p in topic.split('/') if p]
    if not parts:
        raise ConfigError(f'image topic {image_topic!r} is empty')
    ns = parts[:-1]
    if ns and ns[-1] == _DEFAULT_CAMERA_NS:
        ns = ns[:-1]
    name = '/'.join([*ns, 'detections'])
    return '/' + name if absolute else name


def output_topics_for(image_topics: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """Return one detections topic per image topic; non-empty overrides win."""
    given = [o for o in overrides if o]
    if given and len(overrides) != len(image_topics):
        raise ConfigError(
            f'output_topics has {len(overrides)} entries, image_topics {len(image_topics)}; '
            "give one per camera or [''] to derive them")
    out = [o if (given and o) else detections_topic_for(t)
           for t, o in zip(image_topics, overrides if given else [''] * len(image_topics),
                           strict=True)]
    dupes = sorted({o for o in out if out.count(o) > 1})
    if dupes:
        raise ConfigError(f'two cameras would publish to the same topic {dupes}; '
                          'set output_topics explicitly')
    return out


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """Parse 'key=value' strings into a dict; int, float and true/false values converted."""
    out: dict[str, Any] = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, raw = item.partition('=')
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ConfigError(f'backend option {item!r} is not key=value')
        value: Any = raw
        if raw.lower() in ('true', 'false'):
            value = raw.lower() == 'true'
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def validate_value(name: str, value: Any) -> str | None:
    """Return why value is not acceptable for parameter name, or None if it is."""
    if name == 'image_topics':
        if not value or any(not str(t).strip() for t in value):
            return 'image_topics needs at least one non-empty topic'
        if len(set(value)) != len(value):
            return 'image_topics has duplicates'
    elif name == 'backend_options':
        try:
            parse_options([str(v) for v in value])
        except ConfigError as err:
            return str(err)
    elif name == 'backend' and not str(value).strip():
        return 'backend must not be empty'
    elif name == 'max_batch' and not 1 <= int(value) <= 64:
        return f'max_batch must be in 1..64, got {value}'
    elif name == 'max_wait_ms' and not 0.0 <= float(value) <= 10000.0:
        return f'max_wait_ms must be in 0..10000, got {value}'
    elif name == 'fallback_after_failures' and int(value) < 0:
        return f'fallback_after_failures must be >= 0, got {value}'
    elif name == 'score_threshold' and float(value) > 1.0:
        return f'score_threshold must be <= 1 (< 0: manifest value), got {value}'
    elif name in ('stats_period', 'stats_window') and not 0.0 < float(value) <= 3600.0:
        return f'{name} must be in (0, 3600] s, got {value}'
    return None


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the node reads from its parameters, validated."""

    model_path: str
    backend: str
    device: str
    image_topics: tuple[str, ...]
    output_topics: tuple[str, ...]
    max_batch: int
    max_wait_ms: float
    cache_dir: str
    backend_options: tuple[tuple[str, Any], ...]
    fallback_after_failures: int
    score_threshold: float | None
    stats_period: float
    stats_window: float
    autostart: bool = field(default=True)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> BridgeConfig:
        """Build and validate a config from parameter values (missing names take DEFAULTS)."""
        v = {**DEFAULTS, **values}
        for name in DEFAULTS:
            reason = validate_value(name, v[name])
            if reason:
                raise ConfigError(reason)
        images = tuple(str(t).strip() for t in v['image_topics'])
        threshold = float(v['score_threshold'])
        return cls(
            model_path=str(v['model_path']).strip(),
            backend=str(v['backend']).strip(),
            device=str(v['device']).strip(),
            image_topics=images,
            output_topics=tuple(output_topics_for(images, list(v['output_topics']))),
            max_batch=int(v['max_batch']),
            max_wait_ms=float(v['max_wait_ms']),
            cache_dir=str(v['cache_dir']).strip(),
            backend_options=tuple(parse_options([str(o) for o in v['backend_options']]).items()),
            fallback_after_failures=int(v['fallback_after_failures']),
            score_threshold=threshold if threshold >= 0.0 else None,
            stats_period=float(v['stats_period']),
            stats_window=float(v['stats_window']),
            autostart=bool(v['autostart']),
        )
