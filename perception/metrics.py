"""Detection quality: one-to-one matching, precision, recall, average precision, localisation.

Matching rule: detections and true boxes are paired by the Hungarian algorithm on the distance
between centres in metres (ego frame); a pair counts when the distance is at most `MATCH_M`
(2 m: less than half a car length, so a detection cannot match the car behind). True boxes whose
centre lies outside the frame, or within `BORDER_PX` of its edge, are not expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .types import Detection

MATCH_M = 2.0
BORDER_PX = 2.0


@dataclass(frozen=True)
class FrameMatch:
    """One frame's detections matched to its true vehicles."""

    scores: np.ndarray  # (D,) detection scores
    matched: np.ndarray  # (D,) bool: the detection matched a true box
    errors_m: np.ndarray  # (M,) centre error of each match [m]
    n_true: int


@dataclass(frozen=True)
class DetectionQuality:
    """Detection quality over frames (precision and recall 1 when there is nothing to get wrong)."""

    precision: float
    recall: float
    average_precision: float
    mean_error_m: float
    n_true: int
    n_detected: int


def expected(true_centres_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(K,) bool: the vehicles a detector is expected to find: centre at least BORDER_PX inside the frame."""
    c = np.atleast_2d(true_centres_px)
    if c.size == 0:
        return np.zeros(0, bool)
    return ((c[:, 0] >= BORDER_PX) & (c[:, 0] <= width - BORDER_PX)
            & (c[:, 1] >= BORDER_PX) & (c[:, 1] <= height - BORDER_PX))


def match_frame(dets: Sequence[Detection], true_centres_m: np.ndarray) -> FrameMatch:
    """Hungarian matching on centre distance; pairs farther than MATCH_M apart do not match."""
    scores = np.array([d.score for d in dets])
    matched = np.zeros(len(dets), bool)
    truth = np.atleast_2d(true_centres_m).reshape(-1, 2)
    if not len(dets) or not len(truth):
        return FrameMatch(scores, matched, np.zeros(0), len(truth))
    dist = np.linalg.norm(np.array([d.center_m for d in dets])[:, None, :] - truth[None], axis=2)
    rows, cols = linear_sum_assignment(dist)
    ok = dist[rows, cols] <= MATCH_M
    matched[rows[ok]] = True
    return FrameMatch(scores, matched, dist[rows[ok], cols[ok]], len(truth))


def quality(frames: Sequence[FrameMatch]) -> DetectionQuality:
    """Precision, recall, average precision and mean centre error over all `frames`."""
    scores = np.concatenate([f.scores for f in frames]) if frames else np.zeros(0)
    hits = np.concatenate([f.matched for f in frames]) if frames else np.zeros(0, bool)
    n_true = sum(f.n_true for f in frames)
    errors = np.concatenate([f.errors_m for f in frames]) if frames else np.zeros(0)
    tp = int(hits.sum())
    precision = tp / len(hits) if len(hits) else 1.0
    recall = tp / n_true if n_true else 1.0
    return DetectionQuality(precision, recall, average_precision(scores, hits, n_true),
                            float(errors.mean()) if len(errors) else float("nan"), n_true, len(hits))


def average_precision(scores: np.ndarray, hits: np.ndarray, n_true: int) -> float:
    """Area under the precision-recall curve, precision made monotone (VOC/COCO style)."""
    if n_true == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / n_true
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))
