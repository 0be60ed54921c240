"""Unit tests of the npu_bridge configuration and its topic naming rule."""

from __future__ import annotations

import pytest
from kpai_npu_bridge.bridge_config import (
    DEFAULTS,
    BridgeConfig,
    ConfigError,
    detections_topic_for,
    output_topics_for,
    validate_value,
)


@pytest.mark.parametrize(('image', 'expected'), [
    ('camera/image_raw', 'detections'),
    ('front/image_raw', 'front/detections'),
    ('/robot1/front/image', '/robot1/front/detections'),
    ('/robot1/camera/image_raw', '/robot1/detections'),
    ('image_raw', 'detections'),
    ('cams/left/image_rect', 'cams/left/detections'),
])
def test_detections_topic_rule(image: str, expected: str) -> None:
    assert detections_topic_for(image) == expected


def test_output_topics_override_and_collisions() -> None:
    assert output_topics_for(['a/img', 'b/img'], ['']) == ['a/detections', 'b/detections']
    assert output_topics_for(['a/img', 'b/img'], ['x', 'y']) == ['x', 'y']
    assert output_topics_for(['a/img', 'b/img'], ['x', '']) == ['x', 'b/detections']
    with pytest.raises(ConfigError, match='one per camera'):
        output_topics_for(['a/img', 'b/img'], ['x'])
    with pytest.raises(ConfigError, match='same topic'):
        output_topics_for(['camera/image_raw', 'image_raw'], [''])


def test_defaults_build_a_config() -> None:
    cfg = BridgeConfig.from_values({'model_path': ' /m.onnx '})
    assert cfg.model_path == '/m.onnx'
    assert cfg.image_topics == ('camera/image_raw',)
    assert cfg.output_topics == ('detections',)
    assert cfg.score_threshold is None
    assert cfg.backend == DEFAULTS['backend']
    assert BridgeConfig.from_values({'score_threshold': 0.4}).score_threshold == 0.4


@pytest.mark.parametrize(('name', 'value', 'match'), [
    ('max_batch', 0, 'max_batch'),
    ('max_wait_ms', -1.0, 'max_wait_ms'),
    ('image_topics', [], 'at least one'),
    ('image_topics', ['a', 'a'], 'duplicates'),
    ('fallback_after_failures', -2, '>= 0'),
    ('score_threshold', 1.5, '<= 1'),
    ('stats_period', 0.0, 'stats_period'),
    ('backend', ' ', 'empty'),
])
def test_bad_values_rejected_with_reason(name: str, value: object, match: str) -> None:
    reason = validate_value(name, value)
    assert reason is not None and match in reason
    with pytest.raises(ConfigError, match=match):
        BridgeConfig.from_values({name: value})


def test_good_values_accepted() -> None:
    for name, value in DEFAULTS.items():
        assert validate_value(name, value) is None
