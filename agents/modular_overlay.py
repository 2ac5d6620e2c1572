"""What the modular agent saw and decided, drawn over its camera frame (for TensorBoard).

The newest frame is scaled up `SCALE` times; drawn over it, in the ego frame's pixels:
detections (yellow boxes), confirmed tracks (green boxes, id and a 1 s velocity arrow), the
lanes the planner was given (blue centre lines; the ego's own lane brighter), the rejected
candidates (thin grey), and the chosen trajectory (red, with its lane offset and profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from steerbench.perception.tracker import Track
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.planning.planner import Lane, Trajectory

SCALE = 4
YELLOW, GREEN, BLUE, LIGHT_BLUE, GREY, RED = (
    (255, 220, 0),
    (0, 200, 0),
    (40, 90, 255),
    (120, 170, 255),
    (150, 150, 150),
    (230, 0, 0),
)


@dataclass(frozen=True)
class Snapshot:
    """One step of the agent's state: its input frame and each stage's output."""

    frame: np.ndarray  # (H, W) or (H, W, 3) uint8, the newest frame
    detections: Sequence[Detection]
    tracks: Sequence[Track]
    lanes: Sequence[Lane]
    candidates: Sequence[Trajectory]
    plan: Trajectory


def draw(snap: Snapshot, geometry: FrameGeometry) -> np.ndarray:
    """An (SCALE*H, SCALE*W, 3) uint8 RGB image."""
    frame = snap.frame if snap.frame.ndim == 3 else np.repeat(snap.frame[..., None], 3, axis=2)
    img = cv2.resize(frame, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST).copy()
    px = lambda xy: np.round(geometry.to_pixels(np.asarray(xy, float)) * SCALE).astype(np.int32)  # noqa: E731
    for lane in snap.lanes:
        cv2.polylines(img, [px(lane.centre)], False, LIGHT_BLUE if lane.offset else BLUE, 1, cv2.LINE_AA)
    for c in snap.candidates:
        if not c.safe:
            cv2.polylines(img, [px(c.points)], False, GREY, 1, cv2.LINE_AA)
    for d in snap.detections:
        cv2.polylines(img, [np.round(d.corners_px * SCALE).astype(np.int32)], True, YELLOW, 1, cv2.LINE_AA)
    for t in snap.tracks:
        _track(img, t, px)
    cv2.polylines(img, [px(snap.plan.points)], False, RED, 2, cv2.LINE_AA)
    label = f"plan: lane {snap.plan.lane_offset:+d} {snap.plan.profile}"
    cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, RED, 1, cv2.LINE_AA)
    return img


def _track(img: np.ndarray, t: Track, px) -> None:
    c, s = np.cos(t.heading), np.sin(t.heading)
    half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [t.length / 2, t.width / 2]
    corners = t.position + half @ np.array([[c, s], [-s, c]])
    cv2.polylines(img, [px(corners)], True, GREEN, 1, cv2.LINE_AA)
    a, b = px([t.position, t.position + t.velocity * 1.0])
    cv2.arrowedLine(img, tuple(int(v) for v in a), tuple(int(v) for v in b), GREEN, 1, cv2.LINE_AA, tipLength=0.2)
    cv2.putText(img, str(t.id), (int(a[0]) + 3, int(a[1]) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, GREEN, 1, cv2.LINE_AA)
