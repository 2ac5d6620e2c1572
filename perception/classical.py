"""The classical vehicle detector: OpenCV only, no learning.

Every vehicle is drawn with a dark outline, whatever its colour, and nothing else in a frame is
darker than the road (lane markings are bright). So: pixels darker than the road's grey by
`contrast`, grouped after a 3 x 3 dilation (a rotated outline breaks into pieces), each group of
car-like size becomes an oriented box fitted to its dark pixels (`cv2.minAreaRect`); the group
at the ego's own pixel is the ego and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .types import Detection, FrameGeometry


@dataclass(frozen=True)
class ClassicalOptions:
    """The classical detector's thresholds."""

    contrast: int = 18  # [grey levels] darker than the road by this: an outline pixel
    min_pixels: int = 5  # fewer dark pixels are sensor noise
    length_m: tuple[float, float] = (1.5, 8.0)  # [m] box lengths accepted (cars 5 m, the barrier 2)
    max_width_m: float = 4.0  # [m]
    ego_radius_px: float = 3.0  # a group this close to the ego's pixel is the ego


def newest(frames: np.ndarray) -> np.ndarray:
    """The newest frame of a stack; a single (H, W) or (H, W, 3) frame is returned as it is."""
    is_stack = frames.ndim == 4 or (frames.ndim == 3 and frames.shape[-1] != 3)
    return frames[-1] if is_stack else frames


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A frame in grey: RGB converted, grey returned as it is."""
    if frame.ndim == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return frame


class ClassicalDetector:
    """Vehicles as groups of dark outline pixels (module docstring), boxed by their minimum-area rectangle."""
    def __init__(self, geometry: FrameGeometry = FrameGeometry(),
                 options: ClassicalOptions = ClassicalOptions()) -> None:
        self.g = geometry
        self.o = options
        self._kernel = np.ones((3, 3), np.uint8)

    def detect(self, frames: np.ndarray) -> list[Detection]:
        """Detections in the newest frame of a stack ((stack, H, W[, 3]) or a single frame)."""
        gray = to_gray(newest(frames)).astype(np.int16)
        road = int(np.median(gray))
        dark = (gray < road - self.o.contrast).astype(np.uint8)
        n, labels = cv2.connectedComponents(cv2.dilate(dark, self._kernel), connectivity=8)
        out = []
        for i in range(1, n):
            ys, xs = np.nonzero((labels == i) & (dark > 0))
            if len(xs) < self.o.min_pixels:
                continue
            det = self._box(np.stack([xs, ys], axis=1).astype(np.float32))
            size_ok = self.o.length_m[0] <= det.length_m <= self.o.length_m[1] and det.width_m <= self.o.max_width_m
            if size_ok and np.linalg.norm(det.center_px - self.g.ego_px) > self.o.ego_radius_px:
                out.append(det)
        return out

    def _box(self, pts: np.ndarray) -> Detection:
        (cu, cv), (w, h), angle = cv2.minAreaRect(pts + 0.5)  # pixel centres
        w, h = w + 1.0, h + 1.0  # from pixel centres to the pixels' outer edges
        if h > w:
            w, h, angle = h, w, angle + 90.0
        corners = cv2.boxPoints(((cu, cv), (w, h), angle))
        heading = (np.radians(angle) + np.pi / 2) % np.pi - np.pi / 2
        s = self.g.scaling
        return Detection(
            corners_px=corners.astype(np.float64), center_m=self.g.to_metres([cu, cv])[0],
            length_m=w / s, width_m=h / s, heading=float(heading),
            # An outline covers the box's border: the share of the border that is dark.
            score=float(np.clip(len(pts) / max(2 * (w + h) - 4, 1.0), 0.0, 1.0)),
        )
