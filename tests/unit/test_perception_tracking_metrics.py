"""Unit tests for the MOT metrics on hand-made cases, and the tracker benchmark at toy size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from kpai_perception.tracking.metrics import MotAccumulator

A = np.array([[0.0, 0.0, 10.0, 10.0]])
FAR = np.array([[100.0, 100.0, 110.0, 110.0]])


def test_perfect_tracking() -> None:
    acc = MotAccumulator()
    for _ in range(3):
        acc.update([1, 2], np.vstack([A, FAR]), [7, 8], np.vstack([A, FAR]))
    s = acc.summary()
    assert (s.mota, s.idf1, s.id_switches, s.misses, s.false_positives) == (1.0, 1.0, 0, 0, 0)


def test_one_id_switch() -> None:
    acc = MotAccumulator()
    for hyp in (1, 1, 2, 2):
        acc.update([5], A, [hyp], A)
    s = acc.summary()
    assert s.id_switches == 1
    assert s.mota == pytest.approx(0.75)
    assert s.idtp == 2 and s.idf1 == pytest.approx(0.5)


def test_switch_counted_across_a_gap() -> None:
    acc = MotAccumulator()
    acc.update([5], A, [1], A)
    acc.update([5], A, [], np.zeros((0, 4)))   # missed
    acc.update([5], A, [2], A)                 # comes back with another id
    s = acc.summary()
    assert (s.misses, s.id_switches) == (1, 1)
    assert s.mota == pytest.approx(1 - 2 / 3)


def test_miss_and_false_positive() -> None:
    acc = MotAccumulator()
    acc.update([1], A, [3], A)
    acc.update([1], A, [4], FAR)  # hypothesis far away: one miss and one false positive
    s = acc.summary()
    assert (s.misses, s.false_positives, s.id_switches) == (1, 1, 0)
    assert s.mota == pytest.approx(0.0)
    assert s.idf1 == pytest.approx(2 * 1 / 4)


def test_previous_correspondence_kept_while_valid() -> None:
    acc = MotAccumulator(iou_threshold=0.5)
    acc.update([1], A, [10], A)
    shifted = np.array([[2.0, 0.0, 12.0, 10.0]])  # IoU 8/12 = 0.67 with A
    # hypothesis 11 fits better, but 10 still overlaps enough: no switch, 11 is a false positive
    acc.update([1], A, [10, 11], np.vstack([shifted, A]))
    s = acc.summary()
    assert (s.id_switches, s.false_positives, s.matches) == (0, 1, 2)


def test_below_threshold_is_not_a_match() -> None:
    acc = MotAccumulator(iou_threshold=0.5)
    acc.update([1], A, [1], np.array([[5.0, 0.0, 15.0, 10.0]]))  # IoU 1/3
    s = acc.summary()
    assert (s.matches, s.misses, s.false_positives, s.idtp) == (0, 1, 1, 0)


def test_idf1_prefers_longest_shared_trajectory() -> None:
    acc = MotAccumulator()
    for hyp in (1, 1, 1, 2):
        acc.update([9], A, [hyp], A)
    s = acc.summary()
    assert s.idtp == 3 and s.idf1 == pytest.approx(6 / 8)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError):
        MotAccumulator().update([1, 1], np.vstack([A, A]), [], np.zeros((0, 4)))


def test_benchmark_runs_at_toy_scale() -> None:
    path = Path(__file__).resolve().parents[2] / 'bench' / 'tracker.py'
    spec = importlib.util.spec_from_file_location('bench_tracker', path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up while building
    spec.loader.exec_module(bench)
    frames = bench.make_sequence(frames=60, objects=5, seed=3)
    assert len(frames) == 60 and all(len(f.gt_ids) == 5 for f in frames)
    summary, fps = bench.evaluate(frames)
    assert summary.num_gt == 300 and fps > 0
    assert summary.mota > 0.7  # a working tracker on an easy toy sequence
    noiseless = bench.make_sequence(frames=60, objects=5, seed=3, miss_rate=0.0, fp_rate=0.0,
                                    low_score_rate=0.0)
    perfect, _ = bench.evaluate(noiseless)
    assert perfect.id_switches == 0 and perfect.misses <= 5
