"""From markings to lanes (step 5 of lanes.py's module docstring): the ego lane between the
nearest marking on each side, its width, the lanes beside it, and the ego's offset, heading and
curvature relative to the ego lane's centre line.

The width is the median spacing of neighbouring dashed markings (solid ones can be off:
highway-env draws a CONTINUOUS_LINE as one straight chord per lane, metres inside a curved
lane), else any lane-like spacing, else the caller's `prior`, else `default_width_m`. Between a
dashed and a solid marking the lane is the dashed one shifted by half that width; a missing side
is inferred the same way (confidence 0.5). Neighbour lanes: across a dashed marking, when the
next marking out is seen at least a lane width away; the centre line of a lane from two markings
ends where they stop being a lane apart (junctions, exits).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .lane_types import INVALID, LaneCurve, LaneEstimate, Marking, PixelLaneOptions


class LaneAssembler:
    """Lanes from the markings of one frame (sorted left to right at x = 0)."""

    def __init__(self, options: PixelLaneOptions = PixelLaneOptions()) -> None:
        self.o = options

    def estimate(self, markings: list[Marking], prior: LaneEstimate | None) -> LaneEstimate:
        """The lanes and the ego's place; INVALID without a marking. `prior` (the last
        estimate) lends its width when nothing in this frame measures it."""
        d = across(markings)
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
            ego = shifted(side[0], 0, side[1])
        lanes = [ego] + self._side(markings, d, left, -1, width, trusted) \
            + self._side(markings, d, right, +1, width, trusted)
        return from_centre(ego, width, tuple(markings), tuple(lanes))

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
            lane = shifted(a, offset, width / 2) if a.dashed else shifted(b, offset, -width / 2)
            return replace(lane, inferred=False)
        return LaneCurve(offset, (a.coef + b.coef) / 2, parallel(a, b, width), inferred=False)

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
                out.append(shifted(markings[edge], offset, side * width / 2))
            break
        return out


def across(markings: list[Marking]) -> np.ndarray:
    """[m] each marking's perpendicular distance from the ego at x = 0, signed (+ right): its
    intercept times the cosine of the markings' common heading."""
    if not markings:
        return np.zeros(0)
    slope = float(np.median([m.coef[1] for m in markings]))
    return np.array([m.coef[0] for m in markings]) / np.hypot(1.0, slope)


def parallel(a: Marking, b: Marking, width: float, tol: float = 0.15) -> tuple[float, float]:
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


def shifted(m: Marking, offset: int, dy: float) -> LaneCurve:
    """A centre line parallel to a marking, `dy` [m] across it (vertical shift of a
    perpendicular distance: dy / cos(heading))."""
    coef = m.coef.copy()
    coef[0] += dy * np.hypot(1.0, coef[1])
    return LaneCurve(offset, coef, m.x_range, inferred=True)


def from_centre(lane: LaneCurve, width: float, markings: tuple, lanes: tuple) -> LaneEstimate:
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
