"""The learned ego lane checked against the frame's own lane markings, and moved where it is far off.

Why: the lane model regresses its lanes from the whole frame, so on a road layout no training
frame showed (the test split's three-lane racetrack) it can put the ego's lane a metre or more
to the side, between two lanes: on that track's held-out frames the median error 10 m ahead was
0.78 m (1.20 m after DAgger) against 0.10-0.12 m on the training track. The markings are in the
frame, a pixel wide and 124-155 grey levels above the road (perception/lane_types.py), and they
say where the lane is.

How, per frame:

1. trace: from abreast of the ego along the predicted ego lane, at each sample a profile of
   grey levels across the lane (along its normal, to half a width and `search_m` beyond each
   side) is searched for markings: runs of pixels `contrast` above the road grey, at most
   `max_run_px` long (a marking crossed, not one lying along the profile, nor a car). The
   nearest marking each side, when their spacing is a plausible width, puts the lane's centre
   between them; one marking alone does so when it lies within `one_side_m` of where the lane's
   boundary is expected. A correction of more than `gate` of a width in one step is not taken
   (another road's marking). Corrections add up along the lane, so the trace follows a lane
   that bends away from the prediction;
2. fit: the traced corrections against arc length, a quadratic (a line under 8 samples), held at
   its last value beyond the last traced sample; fewer than `min_samples` traced: no correction;
3. dead band: the fit is applied only where it moves the lane by more than `dead_m` somewhere
   within `dead_reach_m` ahead. A single marking's place is good to half a pixel (0.29 m), the
   model's to a few centimetres on roads like the training ones; so the markings only overrule
   gross errors, and on those roads little changes (bench/lane_refine.py measures it).

All three lanes move with the ego lane (by its normal at the same sample): they are predicted
together, and the agent's filter compares their spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from .types import FrameGeometry

EGO = 1  # row of the ego lane (planning.lane_labels)
PROFILE_STEP_PX = 0.5


@dataclass(frozen=True)
class MarkingRefineOptions:
    """The marking check's thresholds (module docstring)."""

    contrast: int = 50  # [grey levels] above the road grey: a marking pixel (as PixelLaneOptions)
    max_run_px: float = 3.0  # [px] a longer bright run across the profile is no crossed marking
    search_m: float = 2.0  # [m] searched beyond each expected boundary (1 m missed most DAgger-model errors)
    spacing: tuple[float, float] = (0.6, 1.4)  # two markings bound the lane if this many widths apart
    one_side_m: float = 0.5  # [m] a lone marking this close to the expected boundary places the lane
    gate: float = 0.3  # [widths] a larger correction in one step is not taken
    cap: float = 0.6  # [widths] the traced correction never exceeds this
    min_samples: int = 4  # traced samples needed for a correction
    dead_m: float = 1.0  # [m] a fitted correction smaller than this everywhere within dead_reach_m is dropped
    dead_reach_m: float = 20.0  # [m]
    default_width_m: float = 4.0  # [m] when the model gives no width

    def __post_init__(self) -> None:
        if self.contrast < 1 or min(self.max_run_px, self.search_m, self.one_side_m, self.gate, self.cap) <= 0 \
                or not 0 < self.spacing[0] < 1 < self.spacing[1] or self.min_samples < 2 or self.dead_m < 0:
            raise ValueError("marking check: contrast >= 1; max_run_px, search_m, one_side_m, gate, cap > 0; "
                             "spacing (low < 1 < high); min_samples >= 2; dead_m >= 0")


def refine_lanes(grey: np.ndarray, centres: np.ndarray, s: np.ndarray, width_m: float, geometry: FrameGeometry,
                 options: MarkingRefineOptions = MarkingRefineOptions()) -> tuple[np.ndarray, bool]:
    """(H, W) uint8 grey frame, (3, K, 2) predicted lane centres [m, ego frame] at arc lengths `s`
    (NaN where absent), the ego lane's width [m] -> (the lanes, moved or not; whether they were)."""
    s = np.asarray(s, np.float64)
    ego = np.asarray(centres[EGO], np.float64)
    k0 = int(np.argmin(np.abs(s)))
    if not np.isfinite(ego[k0]).all():
        return centres, False
    width = width_m if np.isfinite(width_m) and width_m > 0 else options.default_width_m
    known = np.isfinite(ego).all(axis=1)
    pts = np.full_like(ego, np.nan)
    pts[known] = geometry.to_pixels(ego[known]) - 0.5  # array coordinates: pixel i's centre is at i + 0.5
    normals = _normals(pts)  # pixel axes (u, v) run along the ego frame's (x, y): one direction in both
    traced = _trace(grey, pts, normals, k0, _Scale(width, geometry.scaling), options)
    if len(traced) < options.min_samples:
        return centres, False
    shift = _fitted(s[[k for k, _ in traced]], np.array([d for _, d in traced]), s) / geometry.scaling  # [m]
    ahead = (s >= 0) & (s <= options.dead_reach_m)
    if not np.nanmax(np.abs(shift[ahead])) > options.dead_m:
        return centres, False
    move = np.nan_to_num(shift[:, None] * normals)
    return np.asarray(centres, np.float64) + move[None], True


@dataclass(frozen=True)
class _Scale:
    width_m: float
    px_per_m: float

    @property
    def width_px(self) -> float:
        return self.width_m * self.px_per_m


def _normals(pts: np.ndarray) -> np.ndarray:
    """(K, 2) unit normals to the right of the polyline (NaN where it has no direction)."""
    tangent = np.gradient(pts, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return normal / np.linalg.norm(normal, axis=1, keepdims=True)


def _trace(grey: np.ndarray, pts: np.ndarray, normals: np.ndarray, k0: int, scale: _Scale,
           o: MarkingRefineOptions) -> list[tuple[int, float]]:
    """(sample, summed correction [px]) at each sample from the ego's on where the markings placed the lane."""
    image = grey.astype(np.float32)
    threshold = float(np.median(image)) + o.contrast
    reach = 0.5 * scale.width_px + o.search_m * scale.px_per_m
    offsets = np.arange(-reach, reach + PROFILE_STEP_PX / 2, PROFILE_STEP_PX)
    delta, traced = 0.0, []
    for k in range(k0, len(pts)):
        if not (np.isfinite(pts[k]).all() and np.isfinite(normals[k]).all()):
            break
        line = pts[k] + (delta + offsets)[:, None] * normals[k]
        if not _inside(line, image.shape):
            continue
        found = _markings(map_coordinates(image, [line[:, 1], line[:, 0]], order=1), offsets, threshold, o.max_run_px)
        step = _centre(found, scale, o)
        if step is not None and abs(step) <= o.gate * scale.width_px:
            delta = float(np.clip(delta + step, -o.cap * scale.width_px, o.cap * scale.width_px))
            traced.append((k, delta))
    return traced


def _inside(line: np.ndarray, shape: tuple[int, ...]) -> bool:
    return bool(line[:, 0].min() >= 0 and line[:, 1].min() >= 0 and line[:, 0].max() <= shape[1] - 1
                and line[:, 1].max() <= shape[0] - 1)


def _markings(profile: np.ndarray, offsets: np.ndarray, threshold: float, max_run_px: float) -> np.ndarray:
    """[px] offsets of the middles of the profile's bright runs no longer than `max_run_px`."""
    edges = np.diff(np.concatenate([[0], (profile > threshold).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.array([offsets[a:b].mean() for a, b in zip(starts, ends) if (b - a) * PROFILE_STEP_PX <= max_run_px])


def _centre(found: np.ndarray, scale: _Scale, o: MarkingRefineOptions) -> float | None:
    """[px] where the markings put the lane's centre, from the profile's middle; None when they do not."""
    left, right = found[found < 0], found[found > 0]
    half = 0.5 * scale.width_px
    if len(left) and len(right):
        lo, hi = left.max(), right.min()
        return 0.5 * (lo + hi) if o.spacing[0] * scale.width_px <= hi - lo <= o.spacing[1] * scale.width_px else None
    lone = o.one_side_m * scale.px_per_m
    if len(left) and abs(left.max() + half) <= lone:
        return float(left.max() + half)
    if len(right) and abs(right.min() - half) <= lone:
        return float(right.min() - half)
    return None


def _fitted(at: np.ndarray, delta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The corrections' fit at every arc length of `s`: a quadratic (a line under 8 samples), held
    at its ends outside the traced range."""
    coef = np.polynomial.polynomial.polyfit(at, delta, 2 if len(at) >= 8 else 1)
    return np.polynomial.polynomial.polyval(np.clip(s, at.min(), at.max()), coef)
