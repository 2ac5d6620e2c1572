"""How good a detector is on labelled frames: the held-out evaluation of `steerbench
train-detector` (losses, precision, recall, average precision and localisation error, per
scenario) and the classical detector as the baseline on the same frames.

Matching is `perception.metrics` (Hungarian, centres within 2 m). Precision, recall and error
are taken at the operating score threshold; average precision over every detection down to
`AP_THRESHOLD`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .classical import ClassicalDetector
from .detector_data import Boxes, FrameSet
from .detector_targets import Targets, losses
from .learned import CenterNetSmall, DecodeOptions, decode
from .metrics import DetectionQuality, FrameMatch, match_frame, quality
from .types import Detection, Detector

AP_THRESHOLD = 0.05  # detections down to this score enter the PR curve and average precision
EVAL_BATCH = 256  # frames per forward pass


@dataclass(frozen=True)
class Evaluation:
    """The learned detector on one held-out split."""

    detections: tuple[tuple[Detection, ...], ...]  # per frame, down to AP_THRESHOLD
    losses: dict[str, float]
    at_threshold: DetectionQuality  # precision, recall and error at the operating threshold
    average_precision: float  # over all detections down to AP_THRESHOLD
    by_scenario: dict[str, dict]
    pr_scores: np.ndarray  # detection scores, then 0 for each missed vehicle
    pr_labels: np.ndarray  # True: a matched detection or a missed vehicle

    def summary(self) -> dict:
        """The split's numbers as metrics.json and the history hold them."""
        return quality_row(self.at_threshold, self.average_precision)


def quality_row(q: DetectionQuality, ap: float, frames: int | None = None) -> dict:
    """One results row: `q`'s precision, recall and error, the average precision `ap`, and the
    number of frames when given."""
    row = {"precision": q.precision, "recall": q.recall, "ap": ap, "loc_error_m": q.mean_error_m,
           "n_true": q.n_true, "n_detected": q.n_detected}
    if frames is not None:
        row["frames"] = frames
    return row


def truth_m(b: Boxes) -> np.ndarray:
    """The true centres [m] of the vehicles a detector is expected to find."""
    return b.true_m[b.expected]


def score(dets_per_frame: Sequence[Sequence[Detection]], data: FrameSet,
          threshold: float) -> tuple[list[FrameMatch], list[FrameMatch]]:
    """Matches (perception.metrics) of all detections and of those at `threshold` or above."""
    every, kept = [], []
    for dets, b in zip(dets_per_frame, data.boxes):
        every.append(match_frame(dets, truth_m(b)))
        kept.append(match_frame([d for d in dets if d.score >= threshold], truth_m(b)))
    return every, kept


def evaluate_detector(detector: Detector, data: FrameSet, threshold: float = 0.0) -> list[FrameMatch]:
    """Matches (perception.metrics) of any `Detector` on every frame of `data`, detections below
    `threshold` left out. The detector's geometry must suit the frames: use one per scenario."""
    return [match_frame([d for d in detector.detect(f) if d.score >= threshold], truth_m(b))
            for f, b in zip(data.frames, data.boxes)]


def classical_baseline(data: FrameSet) -> dict:
    """The classical detector on the same frames (its own score has no threshold to tune)."""
    out = {}
    for k, name in enumerate(data.scenarios):
        sel = np.flatnonzero(data.scenario == k)
        part = dataclasses.replace(data, frames=data.frames[sel], boxes=tuple(data.boxes[i] for i in sel),
                                   scenario=data.scenario[sel])
        out[name] = evaluate_detector(ClassicalDetector(data.geometries[k]), part)
    q = quality([m for ms in out.values() for m in ms])
    summary = quality_row(q, q.average_precision, len(data))
    summary["by_scenario"] = {}
    for name, ms in out.items():
        qs = quality(ms)
        summary["by_scenario"][name] = quality_row(qs, qs.average_precision, len(ms))
    return summary


@torch.no_grad()
def evaluate(net: CenterNetSmall, data: FrameSet, targets: Targets, size_weight: float, threshold: float,
             device: str) -> Evaluation:
    """The network on every frame of `data`: mean losses (`size_weight` as in training) and the
    detections' quality, `threshold` being the operating score threshold."""
    net.eval()
    dets, totals = _detect_all(net, data, targets, size_weight, device)
    every, kept = score(dets, data, threshold)
    q_all, q_kept = quality(every), quality(kept)
    by_scenario = {}
    for k, name in enumerate(data.scenarios):
        sel = np.flatnonzero(data.scenario == k)
        qa, qk = quality([every[i] for i in sel]), quality([kept[i] for i in sel])
        by_scenario[name] = quality_row(qk, qa.average_precision, int(len(sel)))
    scores = np.concatenate([m.scores for m in every] + [np.zeros(0)])
    hits = np.concatenate([m.matched for m in every] + [np.zeros(0, bool)])
    missed = q_all.n_true - int(hits.sum())
    return Evaluation(
        detections=tuple(tuple(d) for d in dets), losses={k: v / len(data) for k, v in totals.items()},
        at_threshold=q_kept, average_precision=q_all.average_precision, by_scenario=by_scenario,
        pr_scores=np.concatenate([scores, np.zeros(missed)]), pr_labels=np.concatenate([hits, np.ones(missed, bool)]),
    )


def _detect_all(net: CenterNetSmall, data: FrameSet, targets: Targets, size_weight: float,
                device: str) -> tuple[list[list[Detection]], dict[str, float]]:
    """Detections per frame down to AP_THRESHOLD, and the losses summed over the frames."""
    dets: list[list[Detection]] = [[] for _ in range(len(data))]
    totals: dict[str, float] = {}
    options = DecodeOptions(score_threshold=AP_THRESHOLD)
    for start in range(0, len(data), EVAL_BATCH):
        idx = torch.arange(start, min(start + EVAL_BATCH, len(data)))
        out = net(torch.from_numpy(data.frames[idx.numpy()]).to(device))
        for k, v in losses(out, targets.batch(idx).to(device), size_weight).items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(idx)
        scenario = data.scenario[idx.numpy()]
        for s in np.unique(scenario):  # one geometry per decode call
            sel = np.flatnonzero(scenario == s)
            part = {k: v[torch.from_numpy(sel).to(v.device)] for k, v in out.items()}
            for j, d in zip(sel, decode(part, data.geometries[s], net.config.stride, options)):
                dets[start + j] = d
    return dets, totals
