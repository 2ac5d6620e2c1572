"""What the pixel lane detector (perception/lanes.py) returns: markings, lane centre lines and
the ego's place in its lane, all in the ego frame (x ahead, y right, metres); and its options."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PixelLaneOptions:
    """The pixel lane detector's thresholds and ranges (lanes.py's module docstring)."""

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
        """[m] the marking's lateral position at `x` ahead."""
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
            pts = np.stack([x, poly(lane.coef, x)], axis=1)
            if extend_to_m is not None and extend_to_m > hi:
                pts = extend_straight(pts, lane.coef, extend_to_m, step_m)
            out.append((lane.offset, pts))
        return out


INVALID = LaneEstimate(valid=False)


def poly(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y(x) of a quadratic (c0, c1, c2)."""
    return coef[0] + coef[1] * x + coef[2] * x * x


def extend_straight(pts: np.ndarray, coef: np.ndarray, to_x: float, step: float) -> np.ndarray:
    """The polyline continued straight along its end tangent until x reaches `to_x`."""
    x_end = pts[-1, 0]
    direction = np.array([1.0, coef[1] + 2.0 * coef[2] * x_end])
    direction /= np.linalg.norm(direction)
    s = np.arange(step, (to_x - x_end) / max(direction[0], 0.1) + step, step)
    return np.vstack([pts, pts[-1] + s[:, None] * direction])
