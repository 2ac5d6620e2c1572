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
5. Lanes: the nearest marking on each side at x = 0 bound the ego lane. The width is the median
   spacing of neighbouring dashed markings (solid ones can be off: highway-env draws a
   CONTINUOUS_LINE as one straight chord per lane, metres inside a curved lane), else any
   lane-like spacing, else the caller's `prior`, else `default_width_m`. Between a dashed and a
   solid marking the lane is the dashed one shifted by half that width; a missing side is
   inferred the same way (confidence 0.5). Neighbour lanes: across a dashed marking, when the
   next marking out is seen at least a lane width away; the centre line of a lane from two
   markings ends where they stop being a lane apart (junctions, exits). Use them as
   `[planning.planner.Lane(o, c) for o, c in estimate.centre_lines()]`.

Range: each polynomial holds within its `x_range`, which the centre lines keep to: on straight
and gently curved roads from `back_m` behind the ego to the frame's forward edge (51 m ahead at
the highway's centering, 36 m at the others'); into the racetrack's 15-25 m radius curves only
until the marking turns 45 degrees away or the quadratic stops fitting (a median 11 m ahead
on the stock racetrack); see `LaneEstimate.ahead_m` and `centre_lines(extend_to_m=...)`. Measured accuracy: docs/perception.md. Nothing here raises on a blank
or odd frame: it returns an estimate with `valid=False`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .classical import newest, to_gray
from .types import FrameGeometry


@dataclass(frozen=True)
class PixelLaneOptions:
    # Markings are 124-155 grey levels above the road in both looks (test look: x0.8 brightness,
    # noise sd 6); 50 is 8 sd of that noise and under half the dimmest marking's contrast.
    contrast: int = 50  # [grey levels] brighter than the road: a marking pixel
    # Outlines are 32-40 levels below the road; 24 is 4 sd of the test look's noise.
    dark_contrast: int = 24  # [grey levels] darker than the road: a vehicle outline pixel
    seed_half_m: float = 6.0  # [m] pixels this close ahead/behind the ego seed the markings
    reach_m: float = 10.0  # [m] markings farther to a side are not traced: 2 lanes (of 4-5 m) reach
    # the ego lane's neighbours' outer markings; farther ones (other roads) cost time and add nothing
    max_heading: float = 0.6  # [rad] headings searched by the seeding (the ego's, relative to lanes)
    gate_px: float = 1.0  # [px] a marking pixel this far from the prediction is taken
    gate_growth: float = 0.15  # [px per px of gap] the prediction's error grows across gaps
    max_gate_px: float = 2.5  # [px] under half the spacing of markings (7 px): no jumping to the next
    max_gap_m: float = 8.0  # [m] a longer gap ends a trace (a car on a marking hides ~6 m)
    min_radius_m: float = 12.0  # [m] tightest curve the tracing follows (the racetrack's: 15 m)
    max_slope: float = 1.0  # a trace ends where the marking turns 45 degrees from the ego's heading
    back_m: float = 10.0  # [m] traced behind the ego: enough for heading, little curve to bend the fit
    min_pixels: int = 8  # a shorter trace is noise (a stray stripe, a car's lamp)
    near_m: float = 6.0  # [m] the fit starts from the traced pixels this close ahead/behind the ego
    fit_tol_m: float = 0.35  # [m] the fit grows while its residual (5 px running mean) stays under this
    dashed_share: float = 0.08  # short gaps over this share of its span: a dashed marking (dashes: ~0.2)
    flat_slope: float = 0.3  # dashes are counted where the marking is within 17 deg of the ego's heading
    width_m: tuple[float, float] = (2.5, 7.0)  # [m] plausible lane widths (suite: 4 and 5 m)
    spacing_tol: float = 0.3  # two markings a lane width apart within this fraction bound a lane
    default_width_m: float = 4.0  # [m] highway-env's lane width, when nothing else tells
    # A neighbour lane whose outer marking is unseen, inferred across a dashed marking. Off by
    # default: on tight curves a solid edge, resampled to the rotated view, has 1 px holes that
    # look like dashes (a third of them on the stock racetrack), which would put a lane off the road.
    infer_neighbours: bool = False


@dataclass(frozen=True)
class Marking:
    """One lane marking: y(x) = c0 + c1 x + c2 x^2 [m] in the ego frame (x ahead, y right)."""

    coef: np.ndarray  # (3,) c0, c1, c2
    x_range: tuple[float, float]  # [m] where it was traced; the polynomial holds there
    dashed: bool
    support: int  # traced pixels

    def y(self, x: np.ndarray | float) -> np.ndarray:
        c = self.coef
        return c[0] + c[1] * np.asarray(x) + c[2] * np.asarray(x) ** 2


@dataclass(frozen=True)
class LaneCurve:
    """A lane centre line y(x) (coefficients as `Marking`); `offset` as `planning.planner.Lane`."""

    offset: int  # 0: the ego's lane, -1: the lane to its left (y < 0), +1: to its right
    coef: np.ndarray  # (3,)
    x_range: tuple[float, float]  # [m]
    inferred: bool  # a boundary was inferred from the lane width rather than seen


@dataclass(frozen=True)
class LaneEstimate:
    """The ego's place in its lane and the lanes' centre lines, from one frame."""

    valid: bool
    offset_m: float = 0.0  # [m] ego from its lane's centre, + right (lane.local_coordinates()[1])
    heading: float = 0.0  # [rad] ego heading - lane heading (+: the ego points right of the lane)
    width_m: float = 0.0  # [m] of the ego's lane
    curvature: float = 0.0  # [1/m] of the ego lane's centre line at the ego (+: turns right)
    confidence: float = 0.0  # 1: both boundaries seen; 0.5: one inferred from the width; 0: invalid
    markings: tuple[Marking, ...] = ()  # sorted from left to right at x = 0
    lanes: tuple[LaneCurve, ...] = field(default=())  # the ego lane first, then neighbours

    @property
    def ahead_m(self) -> float:
        """[m] how far ahead the ego lane's centre line is known (0 when invalid)."""
        return float(self.lanes[0].x_range[1]) if self.lanes else 0.0

    def centre_lines(self, behind_m: float = 5.0, step_m: float = 1.0,
                     extend_to_m: float | None = None) -> list[tuple[int, np.ndarray]]:
        """(offset, (N, 2) centre polyline) per lane, ego frame, ordered along travel, from
        `behind_m` behind the ego to the end of the lane's traced range. `extend_to_m`: continue
        straight along the end tangent to that x (an extrapolation, for planners that need more)."""
        out = []
        for lane in self.lanes:
            lo, hi = max(-behind_m, lane.x_range[0]), lane.x_range[1]
            if hi - lo < 0.1 * step_m:
                continue
            x = np.arange(lo, hi, step_m)
            x = np.append(x, hi) if hi - x[-1] > 0.1 * step_m else x  # no zero-length last step
            if len(x) < 2:
                x = np.array([lo, hi])
            pts = np.stack([x, _poly(lane.coef, x)], axis=1)
            if extend_to_m is not None and extend_to_m > hi:
                pts = _extend(pts, lane.coef, extend_to_m, step_m)
            out.append((lane.offset, pts))
        return out


INVALID = LaneEstimate(valid=False)


class PixelLaneDetector:
    def __init__(self, geometry: FrameGeometry = FrameGeometry(),
                 options: PixelLaneOptions = PixelLaneOptions()) -> None:
        self.g = geometry
        self.o = options
        self._ego = geometry.ego_px.astype(int)  # (u, v) corner coordinates of the ego
        self._slopes = np.tan(np.linspace(-options.max_heading, options.max_heading, 31))
        self._max_k = 0.5 / (options.min_radius_m * geometry.scaling)  # [px/px^2] half of 1 / R

    def detect(self, frames: np.ndarray, prior: LaneEstimate | None = None) -> LaneEstimate:
        """Lanes in the newest frame of a stack ((stack, H, W[, 3]) or one frame), grey or RGB.
        `prior` (the last estimate, optional) lends its width when one boundary is missing."""
        gray = self._gray(frames)
        if gray is None:
            return INVALID
        return self._estimate(self._markings(self._marking_pixels(gray)), prior)

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
        local = _Local(u_e, slope, self._max_k)
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
        grown = _grow(xy[:, 0], xy[:, 1], self.o)
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

    # -- lanes ------------------------------------------------------------------------------
    def _estimate(self, markings: list[Marking], prior: LaneEstimate | None) -> LaneEstimate:
        d = _across(markings)
        left = int(np.flatnonzero(d < 0)[-1]) if np.any(d < 0) else None
        right = int(np.flatnonzero(d >= 0)[0]) if np.any(d >= 0) else None
        if left is None and right is None:
            return INVALID
        width, trusted = self._width(markings, d, prior)
        if left is not None and right is not None and not self._spaced(d[right] - d[left], width, trusted):
            # One of them is not this lane's (a marking missed between, another road): keep one.
            keep_left = markings[left].dashed > markings[right].dashed or (
                markings[left].dashed == markings[right].dashed and -d[left] <= d[right])
            left, right = (left, None) if keep_left else (None, right)
        if left is not None and right is not None:
            ego = self._between(markings[left], markings[right], 0, width, trusted)
            width = float(d[right] - d[left]) if not trusted else width
        else:
            side = (markings[left], width / 2) if left is not None else (markings[right], -width / 2)
            ego = _shifted(side[0], 0, side[1])
        lanes = [ego] + self._side(markings, d, left, -1, width, trusted) \
            + self._side(markings, d, right, +1, width, trusted)
        return _from_centre(ego, width, tuple(markings), tuple(lanes))

    def _width(self, markings: list[Marking], d: np.ndarray, prior: LaneEstimate | None) -> tuple[float, bool]:
        """[m] lane width, and whether it is measured between dashed markings. Solid markings
        can be off: highway-env draws a CONTINUOUS_LINE as one straight segment per lane, a chord
        of a curved lane (metres off on the highway's arcs and the merge ramp); dashed markings
        are drawn stripe by stripe and follow the lane. Else: any lane-like spacing, the prior's
        width, the default."""
        pairs = [(float(d[i + 1] - d[i]), markings[i].dashed and markings[i + 1].dashed) for i in range(len(d) - 1)]
        dashed = [w for w, both in pairs if both and self._plausible(w)]
        if dashed:
            return float(np.median(dashed)), True
        spacing = [w for w, _ in pairs if self._plausible(w)]
        if spacing:
            return float(np.median(spacing)), False
        if prior is not None and prior.valid:
            return prior.width_m, False
        return self.o.default_width_m, False

    def _plausible(self, width: float) -> bool:
        return self.o.width_m[0] <= width <= self.o.width_m[1]

    def _spaced(self, spacing: float, width: float, trusted: bool) -> bool:
        """Whether two markings this far apart bound one lane."""
        if trusted:
            return abs(spacing - width) <= self.o.spacing_tol * width
        return self._plausible(spacing)

    @staticmethod
    def _between(a: Marking, b: Marking, offset: int, width: float, trusted: bool) -> LaneCurve:
        """The lane between markings a (left) and b (right): their mean, or, beside a solid
        marking that may be a chord, the dashed one shifted by half the dashed-measured width."""
        if trusted and a.dashed != b.dashed:
            lane = _shifted(a, offset, width / 2) if a.dashed else _shifted(b, offset, -width / 2)
            return replace(lane, inferred=False)
        return LaneCurve(offset, (a.coef + b.coef) / 2, _parallel(a, b, width), inferred=False)

    def _side(self, markings: list[Marking], d: np.ndarray, edge: int | None, side: int,
              width: float, trusted: bool) -> list[LaneCurve]:
        """Lanes beyond the ego lane's `edge` marking on one side (-1 left, +1 right), nearest
        first, across dashed markings only (a solid one bounds the road, or a ramp). A lane needs
        its outer marking seen at least a lane width away: a lane apart, the lane lies between
        the two; farther (a chord of a curved edge, see `_width`), beside the dashed one."""
        out, offset = [], side
        while edge is not None and markings[edge].dashed:
            nxt = edge + side
            seen = 0 <= nxt < len(markings) and abs(d[nxt] - d[edge]) >= (1 - self.o.spacing_tol) * width
            if seen and self._spaced(abs(d[nxt] - d[edge]), width, True):
                a, b = (markings[nxt], markings[edge]) if side < 0 else (markings[edge], markings[nxt])
                out.append(self._between(a, b, offset, width, trusted))
                edge, offset = nxt, offset + side
                continue
            if seen or self.o.infer_neighbours:  # outer marking misplaced, or unseen (hidden, out of frame)
                out.append(_shifted(markings[edge], offset, side * width / 2))
            break
        return out


# -- helpers ----------------------------------------------------------------------------------
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


class _Local:
    """Least-squares parabola through the last ~`n` traced points (exponentially weighted sums,
    O(1) a point; solved every 4th point): slope and half the second derivative at the newest
    point, px/px and px/px^2. Rows are whole pixels and stripes are drawn a row apart: three
    points would make a curvature of noise, and a trace that extrapolates a false curve across a
    gap jumps to the next marking."""

    def __init__(self, u0: float, slope: float, max_k: float, n: int = 24) -> None:
        self.u0, self.slope, self.k, self.max_k = u0, slope, 0.0, max_k
        self.decay = 1.0 - 1.0 / n
        self.s = [0.0] * 8  # weighted sums of t^0..t^4 and v t^0..t^2, t = (u - u0) / 32
        self.count, self.t_first = 0, None

    def add(self, u: float, v: float) -> tuple[float, float]:
        t, d, s = (u - self.u0) / 32.0, self.decay, self.s  # scaled: sums of t^4 stay near 1
        t2 = t * t
        s[0], s[1], s[2] = d * s[0] + 1.0, d * s[1] + t, d * s[2] + t2
        s[3], s[4] = d * s[3] + t2 * t, d * s[4] + t2 * t2
        s[5], s[6], s[7] = d * s[5] + v, d * s[6] + v * t, d * s[7] + v * t2
        self.count += 1
        self.t_first = t if self.t_first is None else self.t_first
        if abs(t - self.t_first) * 32.0 < 8 or self.count % 4:
            return self.slope, self.k  # the seed's slope (voted by all the markings) beats a few pixels'
        c = _solve3(*s)
        if abs(t - self.t_first) * 32.0 >= 12 and c is not None:
            self.slope = (c[1] + 2.0 * c[2] * t) / 32.0
            self.k = max(-self.max_k, min(self.max_k, c[2] / 1024.0))
        else:
            det = s[0] * s[2] - s[1] * s[1]
            self.slope = (s[0] * s[6] - s[1] * s[5]) / det / 32.0 if abs(det) > 1e-12 else self.slope
        return self.slope, self.k


def _solve3(s0: float, s1: float, s2: float, s3: float, s4: float, t0: float, t1: float,
            t2: float) -> tuple[float, float, float] | None:
    """Normal equations of a quadratic least-squares fit, by Cramer's rule in plain floats
    (numpy's solver costs more than the arithmetic on 3 x 3)."""
    m0, m1, m2 = s2 * s4 - s3 * s3, s1 * s4 - s2 * s3, s1 * s3 - s2 * s2  # cofactors of row 0
    det = s0 * m0 - s1 * m1 + s2 * m2
    if abs(det) <= 1e-9 * max(abs(s0 * m0), 1.0):
        return None
    return ((t0 * m0 - s1 * (t1 * s4 - s3 * t2) + s2 * (t1 * s3 - s2 * t2)) / det,
            (s0 * (t1 * s4 - s3 * t2) - t0 * m1 + s2 * (s1 * t2 - t1 * s2)) / det,
            (s0 * (s2 * t2 - t1 * s3) - s1 * (s1 * t2 - t1 * s2) + t0 * m2) / det)


def _grow(x: np.ndarray, y: np.ndarray, o: PixelLaneOptions) -> tuple[int, int, np.ndarray] | None:
    """The range [lo, hi) of traced points around the ego that one quadratic describes, and its
    coefficients: from the points within `near_m` of the ego, grown outward (ahead, then behind)
    as far as the residual stays small. A quadratic over a whole trace would bend to fit a
    straight that runs into an arc (the racetrack) and miss the ego's place by half a metre."""
    sums = _Sums(x, y)
    lo, hi = int(np.searchsorted(x, -o.near_m)), int(np.searchsorted(x, o.near_m, "right"))
    if hi - lo < o.min_pixels:  # hidden near the ego (by the ego itself): the nearest points
        mid = int(np.argmin(np.abs(x)))
        lo = max(min(mid - o.min_pixels // 2, len(x) - o.min_pixels), 0)
        hi = lo + o.min_pixels

    def ok(a: int, b: int) -> np.ndarray | None:
        c = sums.fit(a, b)
        return c if _fits(x[a:b], y[a:b], c, o.fit_tol_m) else None

    coef = sums.fit(lo, hi)
    # Looser near the ego: a kink where two segments meet is no reason to drop the marking.
    if not _fits(x[lo:hi], y[lo:hi], coef, 2.0 * o.fit_tol_m):
        return None
    whole = ok(0, len(x))  # the usual case on straight roads: one fit
    if whole is not None:
        return 0, len(x), whole
    for ahead in (True, False):
        good, bad = (hi, len(x) + 1) if ahead else (lo, -1)  # bisect the far end of the range
        while abs(bad - good) > 4:
            mid = (good + bad) // 2
            c = ok(lo, mid) if ahead else ok(mid, hi)
            good, bad, coef = (mid, bad, c) if c is not None else (good, mid, coef)
        lo, hi = (lo, good) if ahead else (good, hi)
    return lo, hi, sums.fit(lo, hi)


def _fits(x: np.ndarray, y: np.ndarray, coef: np.ndarray, tol: float) -> bool:
    """Whether the residual, averaged over 5 points, stays within `tol` everywhere: single pixels
    sit up to half a pixel (0.29 m) off the line they draw, and a stripe or segment end can step
    by a row for 2-3 pixels; a bend that the quadratic misses lasts longer."""
    r = y - _poly(coef, x)
    if len(r) >= 5:
        r = np.convolve(r, np.full(5, 0.2), "valid")
    return bool(np.max(np.abs(r)) <= tol)


class _Sums:
    """Prefix sums of x^k and x^k y: a least-squares polynomial over any range of points in O(1)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        p = np.stack([x ** k for k in range(5)] + [y * x ** k for k in range(3)])
        self.c = np.concatenate([np.zeros((8, 1)), np.cumsum(p, axis=1)], axis=1)
        self.x = x

    def fit(self, lo: int, hi: int) -> np.ndarray:
        """(c0, c1, c2); a straight line when the points span too little for a curve (< 6 m)."""
        s0, s1, s2, s3, s4, t0, t1, t2 = (self.c[:, hi] - self.c[:, lo]).tolist()
        if self.x[hi - 1] - self.x[lo] >= 6.0:
            c = _solve3(s0, s1, s2, s3, s4, t0, t1, t2)
            if c is not None:
                return np.array(c)
        det = s0 * s2 - s1 * s1
        if abs(det) < 1e-9:  # one column: a constant
            return np.array([t0 / max(s0, 1.0), 0.0, 0.0])
        return np.array([(t0 * s2 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det, 0.0])


def _poly(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return coef[0] + coef[1] * x + coef[2] * x * x


def _across(markings: list[Marking]) -> np.ndarray:
    """[m] each marking's perpendicular distance from the ego at x = 0, signed (+ right): its
    intercept times the cosine of the markings' common heading."""
    if not markings:
        return np.zeros(0)
    slope = float(np.median([m.coef[1] for m in markings]))
    return np.array([m.coef[0] for m in markings]) / np.hypot(1.0, slope)


def _parallel(a: Marking, b: Marking, width: float, tol: float = 0.15) -> tuple[float, float]:
    """The x range, around the ego, where both markings are traced and stay a lane apart
    (within `tol` of the width): at a junction, an exit or the ramp's end one turns away, and
    the mean of the two is no lane's centre."""
    lo, hi = max(a.x_range[0], b.x_range[0]), min(a.x_range[1], b.x_range[1])
    if hi <= lo:
        return lo, hi
    x = np.linspace(lo, hi, max(int(hi - lo), 2))
    apart = np.abs((b.y(x) - a.y(x)) - (b.y(0.0) - a.y(0.0))) > tol * width
    ahead, behind = np.flatnonzero(apart & (x > 0)), np.flatnonzero(apart & (x <= 0))
    i = behind[-1] + 1 if len(behind) else 0
    j = ahead[0] - 1 if len(ahead) else len(x) - 1
    return (float(x[i]), float(x[j])) if i <= j else (0.0, 0.0)


def _shifted(m: Marking, offset: int, dy: float) -> LaneCurve:
    """A centre line parallel to a marking, `dy` [m] across it (vertical shift of a
    perpendicular distance: dy / cos(heading))."""
    coef = m.coef.copy()
    coef[0] += dy * np.hypot(1.0, coef[1])
    return LaneCurve(offset, coef, m.x_range, inferred=True)


def _from_centre(lane: LaneCurve, width: float, markings: tuple, lanes: tuple) -> LaneEstimate:
    """Offset, heading and curvature of the ego relative to the ego lane's centre line."""
    c0, c1, c2 = lane.coef
    x = -c0 * c1 / max(1.0 + c1 * c1 + 2.0 * c0 * c2, 1e-3)  # foot of the perpendicular (a Newton step)
    y, dy = c0 + c1 * x + c2 * x * x, c1 + 2.0 * c2 * x
    norm = np.hypot(1.0, dy)
    return LaneEstimate(
        valid=True, offset_m=float((x * dy - y) / norm), heading=float(-np.arctan(dy)),
        width_m=float(width), curvature=float(2.0 * c2 / norm ** 3),
        confidence=0.5 if lane.inferred else 1.0, markings=markings, lanes=lanes,
    )


def _extend(pts: np.ndarray, coef: np.ndarray, to_x: float, step: float) -> np.ndarray:
    """The polyline continued straight along its end tangent until x reaches `to_x`."""
    x_end = pts[-1, 0]
    direction = np.array([1.0, coef[1] + 2.0 * coef[2] * x_end])
    direction /= np.linalg.norm(direction)
    s = np.arange(step, (to_x - x_end) / max(direction[0], 0.1) + step, step)
    return np.vstack([pts, pts[-1] + s[:, None] * direction])
