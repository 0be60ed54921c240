"""Active-learning selection logic on hand-made frames."""

from __future__ import annotations

import numpy as np
from kpai_data.selection import FrameVerdict, SelectionConfig, judge_frame, select_frames

LABELS = ['person', 'box']


def _judge(preds: list, gts: list) -> FrameVerdict:
    pb = np.array([p[:4] for p in preds], float).reshape(-1, 4)
    ps = np.array([p[4] for p in preds], float)
    pc = np.array([p[5] for p in preds], int)
    gb = np.array([g[:4] for g in gts], float).reshape(-1, 4)
    gc = np.array([g[4] for g in gts], int)
    return judge_frame(pb, ps, pc, gb, gc, LABELS, SelectionConfig(0.25, 0.1, 0.5))


def test_agreeing_frame_is_not_selected() -> None:
    v = _judge([(0, 0, 10, 10, 0.9, 0)], [(0, 0, 10, 10, 0)])
    assert not v.selected and v.reasons == []


def test_missed_false_and_unsure() -> None:
    missed = _judge([], [(0, 0, 10, 10, 0)])
    assert missed.missed == 1 and missed.reasons == ['missed person']
    wrong_class = _judge([(0, 0, 10, 10, 0.9, 1)], [(0, 0, 10, 10, 0)])
    assert wrong_class.missed == 1 and wrong_class.false_positives == 1
    ghost = _judge([(50, 50, 60, 60, 0.8, 1)], [])
    assert ghost.false_positives == 1 and ghost.reasons == ['false box (0.80)']
    unsure = _judge([(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.15, 1)], [(0, 0, 10, 10, 0)])
    assert unsure.unsure == 1 and unsure.missed == 0 and unsure.selected
    duplicate = _judge([(0, 0, 10, 10, 0.9, 0), (0, 0, 10, 10, 0.8, 0)], [(0, 0, 10, 10, 0)])
    assert duplicate.false_positives == 1 and duplicate.missed == 0


def test_select_frames_ranks_and_limits() -> None:
    verdicts = [FrameVerdict(), FrameVerdict(unsure=1), FrameVerdict(missed=2),
                FrameVerdict(false_positives=1), FrameVerdict(missed=2)]
    assert select_frames(verdicts, budget=10) == [2, 4, 3, 1]
    assert select_frames(verdicts, budget=2) == [2, 4]
    assert select_frames(verdicts, budget=0) == []


def test_small_ground_truth_is_ignored_not_missed() -> None:
    pb = np.array([[0, 0, 4, 4], [20, 20, 40, 40]], float)
    gb = np.array([[0, 0, 4, 4], [50, 50, 52, 53]], float)  # both under 8 px
    v = judge_frame(pb, np.array([0.9, 0.9]), np.array([1, 0]), gb, np.array([1, 1]), LABELS,
                    SelectionConfig(min_box=8.0))
    assert v.missed == 0 and v.false_positives == 1  # only the detection on nothing
