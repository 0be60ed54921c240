"""Multi-object tracking metrics: CLEAR MOT (MOTA, id switches) and identity F1 (IDF1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from kpai_perception.tracking.boxes import iou_matrix

__all__ = ['MotAccumulator', 'MotSummary']


@dataclass(frozen=True)
class MotSummary:
    """Totals over a sequence and the derived scores."""

    num_gt: int
    num_hyp: int
    matches: int
    false_positives: int
    misses: int
    id_switches: int
    idtp: int
    mota: float
    idf1: float
    motp_iou: float  # mean IoU of matched pairs


class MotAccumulator:
    """Accumulate frames of ground truth and hypotheses; a pair matches when IoU >= threshold.

    MOTA follows CLEAR MOT: a ground-truth object keeps its previous hypothesis while their IoU
    stays above threshold, the rest is assigned by the Hungarian method; an id switch is counted
    when an object is matched to a different hypothesis than at its last match.
    MOTA = 1 - (misses + false positives + id switches) / ground-truth count. IDF1 assigns whole
    trajectories one-to-one to maximise the frames they share (IDTP);
    IDF1 = 2 IDTP / (ground-truth count + hypothesis count).
    """

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self._last_match: dict[int, int] = {}
        self._pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        self._num_gt = self._num_hyp = self._matches = 0
        self._fp = self._fn = self._idsw = 0
        self._iou_sum = 0.0

    def update(self, gt_ids: Sequence[int], gt_boxes: np.ndarray, hyp_ids: Sequence[int],
               hyp_boxes: np.ndarray) -> None:
        """Add one frame; boxes are corner arrays [x1, y1, x2, y2] aligned with their ids."""
        gt_ids, hyp_ids = list(gt_ids), list(hyp_ids)
        if len(set(gt_ids)) != len(gt_ids) or len(set(hyp_ids)) != len(hyp_ids):
            raise ValueError('ids must be unique within a frame')
        iou = iou_matrix(gt_boxes, hyp_boxes)
        thr = self.iou_threshold
        self._num_gt += len(gt_ids)
        self._num_hyp += len(hyp_ids)
        for gi, hi in zip(*np.nonzero(iou >= thr), strict=True):
            self._pair_counts[(gt_ids[gi], hyp_ids[hi])] += 1

        hyp_index = {h: j for j, h in enumerate(hyp_ids)}
        pairs: list[tuple[int, int]] = []
        used_g: set[int] = set()
        used_h: set[int] = set()
        for gi, g in enumerate(gt_ids):  # keep last frame's correspondences that still hold
            hj = hyp_index.get(self._last_match.get(g, -1))
            if hj is not None and hj not in used_h and iou[gi, hj] >= thr:
                pairs.append((gi, hj))
                used_g.add(gi)
                used_h.add(hj)
        free_g = [i for i in range(len(gt_ids)) if i not in used_g]
        free_h = [j for j in range(len(hyp_ids)) if j not in used_h]
        if free_g and free_h:
            sub = iou[np.ix_(free_g, free_h)]
            cost = np.where(sub >= thr, 1.0 - sub, 1e6)
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if sub[r, c] >= thr:
                    pairs.append((free_g[r], free_h[c]))
        for gi, hj in pairs:
            g, h = gt_ids[gi], hyp_ids[hj]
            if g in self._last_match and self._last_match[g] != h:
                self._idsw += 1
            self._last_match[g] = h
            self._iou_sum += float(iou[gi, hj])
        self._matches += len(pairs)
        self._fn += len(gt_ids) - len(pairs)
        self._fp += len(hyp_ids) - len(pairs)

    def summary(self) -> MotSummary:
        """Return the totals and MOTA/IDF1 for everything accumulated so far."""
        idtp = 0
        if self._pair_counts:
            gts = sorted({g for g, _ in self._pair_counts})
            hyps = sorted({h for _, h in self._pair_counts})
            gi = {g: i for i, g in enumerate(gts)}
            hi = {h: j for j, h in enumerate(hyps)}
            counts = np.zeros((len(gts), len(hyps)))
            for (g, h), n in self._pair_counts.items():
                counts[gi[g], hi[h]] = n
            r, c = linear_sum_assignment(-counts)
            idtp = int(counts[r, c].sum())
        denom = self._num_gt + self._num_hyp
        mota = 1.0 - (self._fn + self._fp + self._idsw) / self._num_gt if self._num_gt else 1.0
        return MotSummary(
            num_gt=self._num_gt, num_hyp=self._num_hyp, matches=self._matches,
            false_positives=self._fp, misses=self._fn, id_switches=self._idsw, idtp=idtp,
            mota=mota, idf1=2.0 * idtp / denom if denom else 1.0,
            motp_iou=self._iou_sum / self._matches if self._matches else 0.0)
