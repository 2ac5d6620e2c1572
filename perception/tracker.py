"""Multi-object tracking: detections across frames, with velocities from a Kalman filter.

Each track is a constant-velocity Kalman filter on (x, y, vx, vy) in the ego frame (x ahead,
y right). When the ego's own motion per step is given, tracks are moved into the new ego frame
before prediction, so velocities are the other vehicles' own, not relative to the ego.

Rules:
- association: predicted positions and detections are paired one to one by the Hungarian
  algorithm (`scipy.optimize.linear_sum_assignment`) on centre distance; pairs further apart
  than `gate_m` are not associated;
- birth: an unassociated detection starts a tentative track;
- confirmation: a track is confirmed after `confirm_hits` associated frames;
- deletion: a tentative track is deleted at its first miss, a confirmed one after `max_misses`
  consecutive misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .types import Detection


@dataclass(frozen=True)
class TrackerOptions:
    """The Kalman tracker's noise, gating and track life (the time between frames is the tracker's
    `dt`, the policy period)."""

    gate_m: float = 4.0  # [m] largest distance between prediction and detection that associates
    confirm_hits: int = 3  # associated frames that confirm a track
    max_misses: int = 3  # consecutive misses that delete a confirmed track
    measurement_sd_m: float = 0.5  # [m] detection position noise
    accel_sd: float = 2.0  # [m/s2] white-acceleration process noise


@dataclass(frozen=True)
class EgoMotion:
    """How the ego moved since the previous frame (from its speedometer and steering)."""

    distance_m: float  # along its heading
    dheading: float  # [rad], positive towards +y (to the right)


@dataclass(frozen=True)
class Track:
    """A tracked vehicle in the current ego frame."""

    id: int
    position: np.ndarray  # (2,) [m] ego frame
    velocity: np.ndarray  # (2,) [m/s] ego frame axes
    length: float
    width: float
    heading: float
    hits: int
    misses: int
    confirmed: bool


@dataclass
class _Filter:
    id: int
    x: np.ndarray  # (4,) state
    p: np.ndarray  # (4, 4) covariance
    det: Detection
    hits: int = 1
    misses: int = 0
    confirmed: bool = False


class KalmanTracker:
    """Constant-velocity Kalman filters in the ego frame, one per vehicle, moved along with the ego."""
    def __init__(self, options: TrackerOptions = TrackerOptions(), dt: float = 0.2) -> None:
        """`dt` [s]: the time between two updates (the policy period)."""
        self.o = options
        self._f = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], float)
        g = np.array([[dt**2 / 2, 0], [0, dt**2 / 2], [dt, 0], [0, dt]])
        self._q = g @ g.T * options.accel_sd**2
        self._h = np.eye(2, 4)
        self._r = np.eye(2) * options.measurement_sd_m**2
        self._filters: list[_Filter] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget every track (a new episode)."""
        self._filters.clear()
        self._next_id = 0

    def update(self, detections: Sequence[Detection], ego: EgoMotion | None = None) -> list[Track]:
        """Advance one frame; returns the tracks (confirmed and tentative) after the update."""
        for f in self._filters:
            if ego is not None:
                self._to_new_ego_frame(f, ego)
            f.x = self._f @ f.x
            f.p = self._f @ f.p @ self._f.T + self._q
        pairs, unmatched = self._associate(detections)
        for f, det in pairs:
            self._correct(f, det)
        for f in self._filters:
            if f not in (p[0] for p in pairs):
                f.misses += 1
        self._filters = [f for f in self._filters if f.misses <= (self.o.max_misses if f.confirmed else 0)]
        for det in unmatched:
            self._birth(det)
        return [self._track(f) for f in self._filters]

    def confirmed(self) -> list[Track]:
        """The confirmed tracks now."""
        return [self._track(f) for f in self._filters if f.confirmed]

    # -- internals --------------------------------------------------------------------------
    def _to_new_ego_frame(self, f: _Filter, ego: EgoMotion) -> None:
        c, s = np.cos(ego.dheading), np.sin(ego.dheading)
        rot = np.array([[c, s], [-s, c]])  # old ego axes -> new ego axes
        pos = rot @ (f.x[:2] - [ego.distance_m * np.cos(ego.dheading / 2), ego.distance_m * np.sin(ego.dheading / 2)])
        big = np.zeros((4, 4))
        big[:2, :2] = big[2:, 2:] = rot
        f.x = np.concatenate([pos, rot @ f.x[2:]])
        f.p = big @ f.p @ big.T

    def _associate(self, detections: Sequence[Detection]) -> tuple[list, list]:
        if not self._filters or not detections:
            return [], list(detections)
        pred = np.array([f.x[:2] for f in self._filters])
        meas = np.array([d.center_m for d in detections])
        cost = np.linalg.norm(pred[:, None, :] - meas[None, :, :], axis=2)
        rows, cols = linear_sum_assignment(cost)
        pairs = [(self._filters[r], detections[c]) for r, c in zip(rows, cols) if cost[r, c] <= self.o.gate_m]
        used = {id(d) for _, d in pairs}
        return pairs, [d for d in detections if id(d) not in used]

    def _correct(self, f: _Filter, det: Detection) -> None:
        y = det.center_m - self._h @ f.x
        s = self._h @ f.p @ self._h.T + self._r
        k = f.p @ self._h.T @ np.linalg.inv(s)
        f.x = f.x + k @ y
        f.p = (np.eye(4) - k @ self._h) @ f.p
        f.det, f.misses = det, 0
        f.hits += 1
        f.confirmed = f.confirmed or f.hits >= self.o.confirm_hits

    def _birth(self, det: Detection) -> None:
        p = np.diag([self.o.measurement_sd_m**2] * 2 + [10.0**2] * 2)  # speed unknown: +-10 m/s
        self._filters.append(_Filter(self._next_id, np.array([*det.center_m, 0.0, 0.0]), p, det,
                                     confirmed=self.o.confirm_hits <= 1))
        self._next_id += 1

    @staticmethod
    def _track(f: _Filter) -> Track:
        return Track(f.id, f.x[:2].copy(), f.x[2:].copy(), f.det.length_m, f.det.width_m, f.det.heading,
                     f.hits, f.misses, f.confirmed)
