"""What `steerbench train-detector` shows in TensorBoard (tags: docs/perception.md): each epoch's
losses and held-out quality, and for the best checkpoint the PR curves and held-out frames drawn
with their true boxes and detections.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .detector_data import Boxes, FrameSet
from .detector_eval import Evaluation
from .learned import box_corners
from .types import Detection, FrameGeometry

QUALITY = ("precision", "recall", "ap", "loc_error_m")  # the perception/<split>/ scalars
TRUE, TRUE_AT_EDGE, DETECTED = (230, 30, 30), (150, 80, 80), (30, 220, 30)  # RGB


def draw(frame: np.ndarray, boxes: Boxes, dets: Sequence[Detection], geometry: FrameGeometry, threshold: float,
         scale: int = 4) -> np.ndarray:
    """RGB picture, `scale` x upscaled: true boxes red (at the true position), detections at or
    above `threshold` green with their score."""
    img = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    s = geometry.scaling
    for tpx, size, theta, exp in zip(boxes.true_px, boxes.size_m, boxes.heading, boxes.expected):
        corners = box_corners(tpx, size[0] * s, size[1] * s, theta)
        colour = TRUE if exp else TRUE_AT_EDGE  # not expected (at the edge): darker
        cv2.polylines(img, [np.round(corners * scale).astype(np.int32)], True, colour, 1)
    for d in dets:
        if d.score < threshold:
            continue
        pts = np.round(d.corners_px * scale).astype(np.int32)
        cv2.polylines(img, [pts], True, DETECTED, 1)
        cv2.putText(img, f"{d.score:.2f}", tuple(int(v) for v in pts.min(axis=0) + [0, -2]), cv2.FONT_HERSHEY_SIMPLEX,
                    0.3, DETECTED, 1, cv2.LINE_AA)
    return img


def log_epoch(writer, epoch: int, train_losses: dict, evals: dict[str, Evaluation], seconds: float, n: int,
              lr: float) -> None:
    """One epoch's scalars: train and held-out losses, held-out quality, learning rate, speed."""
    for k, v in train_losses.items():
        writer.add_scalar(f"losses/train/{k}", v, epoch)
    for split, e in evals.items():
        for k, v in e.losses.items():
            writer.add_scalar(f"losses/{split}/{k}", v, epoch)
        summary = e.summary()
        for k in QUALITY:
            writer.add_scalar(f"perception/{split}/{k}", summary[k], epoch)
    writer.add_scalar("train/lr", lr, epoch)
    writer.add_scalar("time/epoch_s", seconds, epoch)
    writer.add_scalar("time/frames_per_s", n / max(seconds, 1e-9), epoch)


def log_best(writer, split: str, e: Evaluation, data: FrameSet, step: int, images: int, threshold: float) -> None:
    """The best checkpoint on one held-out split: its PR curve, its quality as `best_` scalars,
    and up to `images` frames with their boxes, one strip."""
    writer.add_pr_curve(f"perception/{split}/pr", e.pr_labels.astype(np.int64), e.pr_scores, global_step=step)
    summary = e.summary()
    for k in QUALITY:
        writer.add_scalar(f"perception/{split}/best_{k}", summary[k], step)
    with_cars = [i for i, b in enumerate(data.boxes) if b.expected.any()]
    if with_cars:  # evenly spread over the frames that show a car
        picks = [with_cars[int(j)] for j in np.linspace(0, len(with_cars) - 1, min(images, len(with_cars)))]
        pics = [draw(data.frames[i], data.boxes[i], e.detections[i], data.geometries[data.scenario[i]], threshold)
                for i in picks]
        gap = np.full((4, pics[0].shape[1], 3), 255, np.uint8)
        strip = np.concatenate([x for p in pics for x in (p, gap)][:-1], axis=0)
        writer.add_image(f"perception/{split}/boxes", strip, global_step=step, dataformats="HWC")
