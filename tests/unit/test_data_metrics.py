"""mAP@0.5 and NMS on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from kpai_data.metrics import average_precision, box_iou, evaluate_map, nms


def _p(boxes: list, scores: list, classes: list) -> tuple:
    return (np.array(boxes, float).reshape(-1, 4), np.array(scores, float),
            np.array(classes, int))


def _g(boxes: list, classes: list) -> tuple:
    return np.array(boxes, float).reshape(-1, 4), np.array(classes, int)


def test_box_iou_values() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                        [20, 20, 30, 30]]))
    assert iou[0] == pytest.approx([1.0, 1 / 3, 0.0])


def test_nms_suppresses_overlaps_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_perfect_detections_give_map_one() -> None:
    gts = [_g([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    preds = [_p([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])]
    m, per = evaluate_map(preds, gts, 3)
    assert m == pytest.approx(1.0)
    assert per[0].ap == pytest.approx(1.0) and per[2].ap is None  # class 2 absent


def test_duplicate_and_wrong_class_are_false_positives() -> None:
    gts = [_g([[0, 0, 10, 10]], [0])]
    # best box matches; the duplicate and a wrong-class box do not
    preds = [_p([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.95], [0, 0, 1])]
    m, per = evaluate_map(preds, gts, 2)
    assert per[0].ap == pytest.approx(1.0)  # TP ranked first: precision 1 at recall 1
    assert per[0].true_positives == 1 and per[0].detections == 2
    assert m == pytest.approx(1.0)


def test_hand_computed_ap() -> None:
    # 2 ground truths; ranked detections: TP, FP, TP -> precision 1, 1/2, 2/3 at recall .5,.5,1
    gts = [_g([[0, 0, 10, 10]], [0]), _g([[0, 0, 10, 10]], [0])]
    preds = [_p([[0, 0, 10, 10], [30, 30, 40, 40]], [0.9, 0.8], [0, 0]),
             _p([[1, 1, 10, 10]], [0.7], [0])]
    m, per = evaluate_map(preds, gts, 1)
    # envelope: recall 0..0.5 at precision 1, 0.5..1 at precision 2/3
    assert m == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # a low-IoU detection is not a match
    preds_off = [_p([[5, 5, 15, 15]], [0.9], [0]), _p([], [], [])]
    m_off, _ = evaluate_map(preds_off, gts, 1)
    assert m_off == 0.0


def test_missed_objects_lower_recall() -> None:
    gts = [_g([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0])]
    preds = [_p([[0, 0, 10, 10]], [0.9], [0])]
    m, _ = evaluate_map(preds, gts, 1)
    assert m == pytest.approx(0.5)
    assert average_precision(np.array([]), np.array([])) == 0.0
