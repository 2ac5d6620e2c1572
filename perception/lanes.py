"""Lane markings from pixels: OpenCV and numpy only, no learning.

What the frames show (sim/camera.py): highway-env draws markings as 1 px white lines, solid or
dashed (3 m stripes every 4.33 m), on a road of the same grey as the background, and vehicles as
boxes with a dark outline. A 4 m lane is 7 px wide. So, on the newest frame:

1. Marking pixels: brighter than the frame's median grey (the road) by `contrast`. Vehicles are
   masked first (a light car body, or its lamps, is as bright as a marking): dark outline
   pixels, grown by a pixel, are grouped and each group's convex hull is filled.
2. Seeds: the marking pixels within `seed_half_m` ahead of and behind the ego vote, for each of
   31 headings up to `max_heading`, for their row at the ego's column (a small Hough transform);
   the heading whose votes are sharpest wins and each run of votes within `reach_m` is a seed.
3. Tracing, column by column from the ego's column forward to the frame's edge and backward to
   `back_m`: the marking pixel nearest a prediction (a least-squares parabola through the last
   ~24 traced pixels) within a gate that widens across gaps. A trace ends after a gap of
   `max_gap_m` or where the marking turns `max_slope` (45 degrees) away from the ego's heading.
4. Fit: a 2nd-order polynomial y(x) in metres, ego frame, over the traced pixels within `near_m`
   of the ego, grown outward (bisection on the far end) as long as it fits within `fit_tol_m`:
   one quadratic does not follow a straight that runs into an arc (the racetrack) or a kink.
   Gaps of 1-4 columns over 8 % of the marking, where it is within 17 degrees of the ego's
   heading, make it dashed.
5. Lanes (lane_assembly.py): the nearest marking on each side at x = 0 bound the ego lane; its
   width comes from the spacing of dashed markings, a missing side is inferred from the width,
   neighbour lanes lie across dashed markings. Use them as
   `[planning.planner.Lane(o, c) for o, c in estimate.centre_lines()]`.

Range: each polynomial holds within its `x_range`, which the centre lines keep to: on straight
and gently curved roads from `back_m` behind the ego to the frame's forward edge (51 m ahead at
the highway's centering, 36 m at the others'); into the racetrack's 15-25 m radius curves only
until the marking turns 45 degrees away or the quadratic stops fitting (a median 11 m ahead
on the stock racetrack); see `LaneEstimate.ahead_m` and `centre_lines(extend_to_m=...)`.
Measured accuracy: docs/perception.md. Nothing here raises on a blank or odd frame: it returns
an estimate with `valid=False`.

Modules: this one finds and traces the markings (steps 1-4); lane_fit.py holds the
least-squares fits of steps 3 and 4, lane_assembly.py step 5, lane_types.py the results and
options (importable from here too).
"""

from __future__ import annotations

import cv2
import numpy as np

from .classical import newest, to_gray
from .lane_assembly import LaneAssembler
from .lane_fit import LocalParabola, grow
from .lane_types import INVALID, LaneCurve, LaneEstimate, Marking, PixelLaneOptions
from .types import FrameGeometry

__all__ = ["INVALID", "LaneCurve", "LaneEstimate", "Marking", "PixelLaneDetector", "PixelLaneOptions"]


class PixelLaneDetector:
    """Lane markings and lanes in a camera frame of `geometry` (module docstring)."""

    def __init__(self, geometry: FrameGeometry = FrameGeometry(),
                 options: PixelLaneOptions = PixelLaneOptions()) -> None:
        self.g = geometry
        self.o = options
        self._ego = geometry.ego_px.astype(int)  # (u, v) corner coordinates of the ego
        self._slopes = np.tan(np.linspace(-options.max_heading, options.max_heading, 31))
        self._max_k = 0.5 / (options.min_radius_m * geometry.scaling)  # [px/px^2] half of 1 / R
        self._lanes = LaneAssembler(options)

    def detect(self, frames: np.ndarray, prior: LaneEstimate | None = None) -> LaneEstimate:
        """Lanes in the newest frame of a stack ((stack, H, W[, 3]) or one frame), grey or RGB.
        `prior` (the last estimate, optional) lends its width when one boundary is missing."""
        gray = self._gray(frames)
        if gray is None:
            return INVALID
        return self._lanes.estimate(self._markings(self._marking_pixels(gray)), prior)

    # -- pixels -----------------------------------------------------------------------------
    def _gray(self, frames: np.ndarray) -> np.ndarray | None:
        """The newest frame as int16 grey, or None when it is not a frame of this geometry."""
        try:
            a = np.asarray(frames, dtype=np.float32) if not isinstance(frames, np.ndarray) else frames
        except (TypeError, ValueError):  # ragged or not numbers
            return None
        if a.ndim not in (2, 3, 4) or a.size == 0 or not np.issubdtype(a.dtype, np.number):
            return None
        frame = newest(a)
        if frame.ndim == 3 and frame.shape[-1] != 3:
            return None
        if frame.dtype != np.uint8:  # float frames: NaN as black, clipped to the 8-bit range
            frame = np.nan_to_num(frame.astype(np.float32), nan=0.0).clip(0, 255).astype(np.uint8)
        gray = to_gray(frame)
        if gray.shape != (self.g.height, self.g.width):
            return None
        return gray.astype(np.int16)

    def _marking_pixels(self, gray: np.ndarray) -> np.ndarray:
        """Boolean (H, W): marking pixels, vehicles masked out."""
        road = int(np.median(gray))
        dark = (gray < road - self.o.dark_contrast).astype(np.uint8)
        # A 1 px halo covers the lamps drawn just outside a car's outline.
        grown = cv2.dilate(dark, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cars = np.zeros_like(dark)
        cv2.fillPoly(cars, [cv2.convexHull(c) for c in contours], 1)
        return (gray > road + self.o.contrast) & (cars == 0)

    # -- markings ---------------------------------------------------------------------------
    def _markings(self, bright: np.ndarray) -> list[Marking]:
        cols: list[list[float]] = [[] for _ in range(bright.shape[1])]  # marking rows of each column
        us, vs = np.nonzero(bright.T)
        for u, v in zip(us.tolist(), (vs + 0.5).tolist()):
            cols[u].append(v)  # pixel centres
        out: list[Marking] = []
        for v0, slope in self._seeds(bright):
            m = self._fit(self._trace(cols, v0, slope, +1), self._trace(cols, v0, slope, -1))
            if m is not None and all(abs(m.coef[0] - k.coef[0]) > 1.0 for k in out):
                out.append(m)  # two seeds on one marking: keep the first (the stronger)
        return sorted(out, key=lambda m: m.coef[0])

    def _seeds(self, bright: np.ndarray) -> list[tuple[float, float]]:
        """(row at the ego's column, slope in px/px) of each marking near the ego, strongest first."""
        half = int(round(self.o.seed_half_m * self.g.scaling))
        u_e, (h, w) = self._ego[0], bright.shape
        vs, us = np.nonzero(bright[:, max(u_e - half, 0):min(u_e + half, w)])
        if len(us) < self.o.min_pixels // 2:
            return []
        du = us + max(u_e - half, 0) + 0.5 - u_e  # pixel centres
        rows = np.rint(vs + 0.5 - self._slopes[:, None] * du[None, :]).astype(int) + h  # intercepts, >= 0
        nb = 3 * h
        votes = np.bincount((rows.clip(0, nb - 1) + nb * np.arange(len(self._slopes))[:, None]).ravel(),
                            minlength=nb * len(self._slopes)).reshape(len(self._slopes), nb)
        best = int(np.argmax((votes.astype(float) ** 2).sum(axis=1)))
        reach = self.o.reach_m * self.g.scaling
        return [(v - h, float(self._slopes[best])) for v in _runs(votes[best], self.o.min_pixels // 2)
                if abs(v - h - self._ego[1]) <= reach]

    def _trace(self, cols: list[list[float]], v0: float, slope: float, step: int) -> list[tuple[float, float, int]]:
        """(u, v) pixel centres of one marking from the ego's column outward (`step` +1 or -1),
        each with the gap (in columns) before it. Plain Python: a column holds a few rows."""
        o, s = self.o, self.g.scaling
        u_e = self._ego[0]
        ul, vl, k = u_e, v0, 0.0  # a virtual start point (not traced), slope and curvature there
        local = LocalParabola(u_e, slope, self._max_k)
        pts: list[tuple[float, float, int]] = []
        stop_u = len(cols) if step > 0 else max(int(u_e - o.back_m * s), 0) - 1
        max_gap = o.max_gap_m * s
        for u in range(u_e if step > 0 else u_e - 1, stop_u, step):
            du = u + 0.5 - ul
            if abs(du) > max_gap:
                break
            rows = cols[u]
            if not rows:
                continue
            vp, best, err = vl + du * (slope + k * du), None, min(o.gate_px + o.gate_growth * abs(du), o.max_gate_px)
            for r in rows:  # row centres
                e = r - vp if r > vp else vp - r
                if e <= err:
                    best, err = r, e
            if best is None:
                continue
            run = [r for r in rows if -1.0 <= r - best <= 1.0]  # a steep marking covers 2 rows of a column
            v = sum(run) / len(run)
            pts.append((u + 0.5, v, int(abs(du)) - 1 if pts else 0))
            ul, vl = u + 0.5, v
            slope, k = local.add(ul, vl)
            if abs(slope) > o.max_slope:
                break
        return pts

    def _fit(self, ahead: list, behind: list) -> Marking | None:
        pts = behind[::-1] + ahead  # in order of x
        if len(pts) < self.o.min_pixels:
            return None
        a = np.array(pts)
        xy = self.g.to_metres(a[:, :2])
        grown = grow(xy[:, 0], xy[:, 1], self.o)
        if grown is None:
            return None
        lo, hi, coef = grown
        dashed = self._dashed(xy[lo:hi, 0], a[lo:hi, 2], coef)
        return Marking(coef, (float(xy[lo, 0]), float(xy[hi - 1, 0])), dashed, hi - lo)

    def _dashed(self, x: np.ndarray, gaps: np.ndarray, coef: np.ndarray) -> bool:
        """Gaps of 1-4 columns (a car hides >= 9) over `dashed_share` of the columns: dashes (3 m
        stripes every 4.33 m). Only where the marking runs within `flat_slope` of the ego's
        heading: a steeper solid line, resampled to the rotated view, loses pixels too."""
        flat = np.abs(coef[1] + 2.0 * coef[2] * x) <= self.o.flat_slope
        span = flat.sum() + gaps[flat].sum()
        short = gaps[flat & (gaps >= 1) & (gaps <= 4)].sum()
        return bool(span >= 10 and short / span > self.o.dashed_share)


def _runs(votes: np.ndarray, min_votes: int) -> list[float]:
    """Vote-weighted centres of the runs of non-zero bins, strongest run first."""
    nz = np.flatnonzero(votes)
    if not len(nz):
        return []
    groups = np.split(nz, np.flatnonzero(np.diff(nz) > 1) + 1)
    runs = [(votes[g].sum(), float((g * votes[g]).sum() / votes[g].sum())) for g in groups]
    out: list[float] = []
    for n, c in sorted(runs, reverse=True):
        # Closer runs are one marking spread by a curve (chords can run 3 px from a marking).
        if n >= min_votes and all(abs(c - k) > 2.0 for k in out):
            out.append(c)
    return out
