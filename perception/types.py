"""Detections, in pixels and in metres in the ego frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FrameGeometry:
    """What a pixel agent may know of its own camera: size, scale and where the ego sits."""

    width: int = 128
    height: int = 64
    scaling: float = 1.75  # [px/m]
    centering: tuple[float, float] = (0.3, 0.5)  # the ego's place, as fractions of W and H

    @property
    def ego_px(self) -> np.ndarray:
        """The ego's pixel (corner coordinates), as the camera places it."""
        return np.round([self.centering[0] * self.width, self.centering[1] * self.height])

    def to_metres(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) metres in the ego frame: x ahead, y to the right."""
        return (np.atleast_2d(uv) - self.ego_px) / self.scaling

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) metres in the ego frame -> (N, 2) pixels (the inverse of `to_metres`)."""
        return np.atleast_2d(xy) * self.scaling + self.ego_px


@dataclass(frozen=True)
class Detection:
    """One detected vehicle, in pixels and in the ego frame."""

    corners_px: np.ndarray  # (4, 2) oriented box, pixel corner coordinates (u column, v row)
    center_m: np.ndarray  # (2,) x ahead, y right [m], ego frame
    length_m: float
    width_m: float
    heading: float  # [rad] relative to the ego, in [-pi/2, pi/2) (a box has no front)
    score: float  # in [0, 1]

    @property
    def center_px(self) -> np.ndarray:
        """The box's centre in pixels."""
        return self.corners_px.mean(axis=0)


class Detector(Protocol):
    """Anything that finds vehicles in camera frames (classical, learned)."""

    def detect(self, frames: np.ndarray) -> list[Detection]:
        """Detections in the newest frame of a stack, or in a single frame."""
        ...
