"""Viewpoint augmentation for the lane model (`train-lanes --viewpoint SHARE`).

The lane model trains on the expert's frames, whose ego drives near its lane's centre. A model
that learned "the ego lane lies under the ego" is right on every such frame, and wrong exactly
when a small error has let the closed loop drift: its prediction then follows the ego off the
road. The cure is the end-to-end network's (PilotNet's viewpoint augmentation): show frames from
a displaced ego. On steerbench's frames both halves are exact:
* the frame: `sim.viewwarp.warp_frames` renders the view from the ego shifted `d` metres to its
  right and turned `yaw` towards its right;
* the labels: the map's lane centre lines are the same lines, seen from the new pose
  (`sim.viewwarp.to_displaced`), resampled at the label's arc lengths from abreast of the new
  ego (`displace_labels`). Lane widths, validity and the command do not change: a shift under
  half a lane keeps the ego in the lane its tracker follows.

Resampling: "abreast" is the ego's projection onto its lane's centre polyline, at arc length s*
of the old samples; the new sample j is the old polyline's point at s_j + s*, linear between
neighbouring samples, NaN where either is NaN (at a lane's end, or beyond the labelled range:
at most one sample, |s*| being under a step for shifts of a few metres). Neighbour lanes use the
same s*: their samples are taken abreast of the ego lane's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from steerbench.sim.camera import BACKGROUND_GREY
from steerbench.sim.viewwarp import Displacement, WarpGeometry, sample_displacements, to_displaced, warp_frames

from .lane_data import LaneFrameSet
from .lane_eval import error_stats, predict_arrays, sample_index
from .lane_model import EGO, LaneNet
from .types import FrameGeometry

# Lanes are 4 m (5 m on the racetrack) wide and the ego 2 m: 1.5 m keeps it inside its lane, yet
# reaches the offsets a drifting closed loop shows before it leaves the road. 10 degrees is twice
# the e2e network's: the lane model needs no label correction, so a larger turn costs nothing.
SNAP = 1e-4  # a resampled point this close (as a share of a step) to a sample is that sample

LANE_DISPLACEMENT = Displacement(shift_m=1.5, rotate_deg=10.0, prob=0.5)
MAX_ROTATE_DEG = 45.0  # [deg] beyond this most of a turned frame is fill grey, not road


def abreast(points: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(B,) arc length [m] on the polylines `points` (B, K, 2), sampled at `s` (K,), of the origin's
    projection (the closest point of the finite segments); 0 where a polyline has no finite segment."""
    a, b = points[:, :-1], points[:, 1:]
    seg = b - a
    length2 = (seg * seg).sum(-1)
    lam = (-(a * seg).sum(-1) / length2.clamp(min=1e-12)).clamp(0.0, 1.0)
    near = a + lam[..., None] * seg
    dist = (near * near).sum(-1)
    dist = torch.where(torch.isfinite(dist) & (length2 > 0), dist, torch.inf)
    k = dist.argmin(dim=1)
    lam_k = lam.gather(1, k[:, None]).squeeze(1)
    at = s[k] + lam_k * (s[k + 1] - s[k])
    return torch.where(torch.isfinite(dist.min(dim=1).values), at, torch.zeros_like(at))


def resample(points: torch.Tensor, s: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """Points (B, L, K, 2) sampled at `s` (K,), read at the arc lengths `at` (B, K): linear
    between samples, NaN outside [s_0, s_K-1] or next to a NaN sample."""
    k = s.numel()
    i = (torch.searchsorted(s.contiguous(), at.contiguous(), right=True) - 1).clamp(0, k - 2)  # (B, K)
    w = ((at - s[i]) / (s[i + 1] - s[i]))[:, None, :, None]
    index = i[:, None, :, None].expand(-1, points.shape[1], -1, 2)
    lo, hi = points.gather(2, index), points.gather(2, index + 1)
    # On a sample (to rounding) its neighbour does not matter: the last sample of a lane that
    # ends stays when the view does not move along the lane.
    out = torch.where(w < SNAP, lo, torch.where(w > 1 - SNAP, hi, lo + w * (hi - lo)))
    tol = SNAP * (s[1] - s[0])
    inside = ((at >= s[0] - tol) & (at <= s[-1] + tol))[:, None, :, None]
    return torch.where(inside, out, torch.full_like(out, float("nan")))


def displace_labels(centres: torch.Tensor, s: torch.Tensor, shift: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """The lane labels `centres` (B, 3, K, 2) [m] at arc lengths `s` (K,) as the ego displaced by
    `shift` [m] to its right and turned by `yaw` [rad] towards its right, (B,) each, labels them
    (module docstring)."""
    moved = to_displaced(centres, shift, yaw)
    s = s.to(moved)
    start = abreast(moved[:, EGO], s)
    return resample(moved, s, s[None, :] + start[:, None])


def warp_geometry(geometry: FrameGeometry, background: int = BACKGROUND_GREY) -> WarpGeometry:
    """The warp's geometry of a pixel agent's camera (perception.types.FrameGeometry)."""
    u, v = geometry.ego_px
    return WarpGeometry(geometry.height, geometry.width, geometry.scaling, float(u), float(v), int(background))


@dataclass(frozen=True)
class LaneDisplacer:
    """Displaces lane-model batches: `geometry[k]` is scenario k's (its ego sits elsewhere in the
    frame), `s` the label's arc lengths."""

    displacement: Displacement
    geometry: tuple[WarpGeometry, ...]
    s: torch.Tensor  # (K,) [m]

    @classmethod
    def for_frames(cls, geometries: tuple[FrameGeometry, ...], s: np.ndarray, share: float,
                   displacement: Displacement = LANE_DISPLACEMENT) -> "LaneDisplacer":
        """For a LaneFrameSet's scenario geometries and arc lengths, displacing a `share` of the samples."""
        d = Displacement(displacement.shift_m, displacement.rotate_deg, share)
        return cls(d, tuple(warp_geometry(g) for g in geometries), torch.as_tensor(s, dtype=torch.float32))

    def __call__(self, frames: torch.Tensor, centres: torch.Tensor, scenario: np.ndarray,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey frames (B, H, W) uint8 and labels (B, 3, K, 2) of scenarios `scenario` (B,), with a
        share of the samples seen from a displaced ego; the rest returned bit for bit."""
        shift, yaw = sample_displacements(len(frames), self.displacement, gen)
        moved = ((shift != 0) | (yaw != 0)).numpy()
        if not moved.any():
            return frames, centres
        frames, centres = frames.clone(), centres.clone()
        for k in np.unique(scenario[moved]):
            rows = torch.from_numpy(np.flatnonzero(moved & (scenario == k)))
            frames[rows] = warp_frames(frames[rows, None], shift[rows], yaw[rows], self.geometry[k])[:, 0]
            s = self.s.to(centres.device)
            centres[rows] = displace_labels(centres[rows], s, shift[rows], yaw[rows]).to(centres)
        return frames, centres


OFF_CENTRE_M = 1.5  # [m] how far off its lane's centre `displaced_quality` puts the ego: LANE_DISPLACEMENT's most


def displaced_frames(data: LaneFrameSet, shift_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A frame set's grey frames (N, H, W) and lane labels (N, 3, K, 2) as seen from the ego moved
    `shift_m` [m] to its right (no turn), each scenario with its own geometry."""
    frames, centres = data.frames.copy(), data.centres.copy()
    s = torch.as_tensor(data.s, dtype=torch.float64)
    for k, geometry in enumerate(data.geometries):
        rows = np.flatnonzero(data.scenario == k)
        if not len(rows):
            continue
        shift = torch.full((len(rows),), float(shift_m), dtype=torch.float64)
        frames[rows] = warp_frames(torch.from_numpy(data.frames[rows])[:, None], shift, torch.zeros_like(shift),
                                   warp_geometry(geometry))[:, 0].numpy()
        centres[rows] = displace_labels(torch.from_numpy(data.centres[rows]).double(), s, shift,
                                        torch.zeros_like(shift)).numpy()
    return frames, centres


def displaced_quality(net: LaneNet, data: LaneFrameSet, scaling: float, device: str = "cpu",
                      shift_m: float = OFF_CENTRE_M) -> dict:
    """The ego lane's lateral error at 10 m when the ego is `shift_m` off its lane's centre, to
    either side (every frame twice): `shift_m`, `lateral_10m` (median, p90, n) and the same per
    scenario in `by_scenario`. A model that learned "the lane is under the ego" fails here."""
    errors, at = [], sample_index(data.s, 10.0)
    for side in (-shift_m, shift_m):
        frames, centres = displaced_frames(data, side)
        pred = predict_arrays(net, frames, data.ego_px, scaling, device, data.command, data.turned)
        errors.append(np.abs(pred["centres"][:, EGO, at, 1] - centres[:, EGO, at, 1]))
    err, scenario = np.concatenate(errors), np.concatenate([data.scenario, data.scenario])
    return {"shift_m": float(shift_m), "lateral_10m": error_stats(err),
            "by_scenario": {name: {"lateral_10m": error_stats(err[scenario == k])}
                            for k, name in enumerate(data.scenarios) if (scenario == k).any()}}
