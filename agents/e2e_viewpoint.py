"""Viewpoint augmentation for the end-to-end network (PilotNet, Bojarski et al., 2016, section 5.2).

PilotNet shows its network views from a camera shifted sideways and rotated, and labels each with
the steering that brings the car back to the recorded path in about two seconds: the recorded
expert never drifts, so without these samples the network never sees how to recover.

On steerbench's frames this is exact, not an approximation: `sim/viewwarp.py` warps a frame to
the view from an ego displaced by `d` metres to its right and turned by `yaw` towards its right
(the ego's own drawing kept in place, the background grey where nothing is known).

Label correction (`corrected_steering`): pure pursuit (Coulter, 1992) on highway-env's kinematic
bicycle. The recorded steering defines the recorded path, the arc of its curvature from the
original pose; the displaced ego aims at the point of that arc it would reach in `recover_s`
seconds at its speed (arc length L = max(v * recover_s, min_lookahead_m)), at angle alpha and
distance l in its own frame, and steers the curvature 2 sin(alpha) / l. With no displacement the
target lies on the arc itself, and pure pursuit toward any point of a circle through the pose
returns that circle's curvature: the label comes back unchanged. For a small offset y and heading
error psi on a straight path, the closed loop is y'' + (2/T) y' + (2/T^2) y = 0 with T = recover_s:
poles (-1 +- i) / T, damping 0.71, the offset's envelope decays with time constant T (half of it
is gone after T). Curvature and steering convert through the bicycle's slip angle (highway-env
`Vehicle`, as `sim/longitudinal.py` `curvature_from_steering`): kappa = 2 sin(beta) / length,
tan(beta) = tan(delta) / 2, delta = steering * STEERING_RANGE (pi/4 rad, `sim/env.py`); the
result is clipped to the action's [-1, 1]. Positive steering turns towards +y, the ego's right.
The pursued arc is capped at MAX_TURN (1 rad) of heading change: far round a tight turn the
target would pull the pursuit the wrong way.

Size: the correction is gentle next to the expert's (its lateral time constant is 0.6 s): at
22 m/s, 1 m off gives -0.0065 here and -0.109 from the expert at the displaced pose; 0.05 rad
gives -0.014 and -0.072 (tests/agents/test_e2e_viewpoint.py). The curvature scales as
1 / recover_s^2: `recover_s` is the knob if the network should learn to recover harder.
Cost: about 19 ms for a 64-sample batch of 4 x 64 x 128 frames at prob 0.5 on one CPU thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from steerbench.sim.env import STEERING_RANGE
from steerbench.sim.viewwarp import EGO_LENGTH, Displacement, WarpGeometry, sample_displacements, warp_frames

__all__ = ["Viewpoint", "WarpGeometry", "augment", "corrected_steering", "curvature_to_steering",
           "sample_viewpoints", "steering_to_curvature", "warp_frames"]

MAX_TURN = 1.0  # [rad] most heading change along the pursued arc of the recorded path


@dataclass(frozen=True)
class Viewpoint:
    """How far the augmentation displaces the ego, and how its label is corrected. ValueError for
    negative ranges, `recover_s` or `min_lookahead_m` <= 0, or `prob` outside [0, 1]."""

    shift_m: float = 1.0  # [m] largest |lateral shift|, uniform in [-shift_m, shift_m] (lane 4 m, car 2 m)
    rotate_deg: float = 5.0  # [deg] largest |yaw|, uniform in [-rotate_deg, rotate_deg]
    recover_s: float = 2.0  # [s] pure-pursuit horizon: aim at the recorded path this far ahead
    prob: float = 0.5  # share of the samples that are displaced; the rest pass through untouched
    min_lookahead_m: float = 5.0  # [m] shortest pursuit distance (one car), for a car at a crawl

    def __post_init__(self) -> None:
        if self.shift_m < 0 or self.rotate_deg < 0:
            raise ValueError("shift_m and rotate_deg must be >= 0")
        if self.recover_s <= 0 or self.min_lookahead_m <= 0:
            raise ValueError("recover_s and min_lookahead_m must be > 0")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError("prob must be in [0, 1]")

    @property
    def displacement(self) -> Displacement:
        """The displacement part (what `sim.viewwarp` draws and warps by)."""
        return Displacement(self.shift_m, self.rotate_deg, self.prob)


def sample_viewpoints(
    batch: int, viewpoint: Viewpoint, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift [m] to the ego's right, yaw [rad] towards its right), each (batch,) float64: zero for
    the samples left untouched (`sim.viewwarp.sample_displacements`)."""
    return sample_displacements(batch, viewpoint.displacement, generator)


def steering_to_curvature(
    steering: torch.Tensor, length: float = EGO_LENGTH, steering_range: float = STEERING_RANGE
) -> torch.Tensor:
    """[1/m] path curvature of highway-env's kinematic bicycle for a normalised steering (positive:
    towards the ego's right)."""
    beta = torch.atan(0.5 * torch.tan(steering.clamp(-1, 1) * steering_range))
    return 2.0 * torch.sin(beta) / length


def curvature_to_steering(
    curvature: torch.Tensor, length: float = EGO_LENGTH, steering_range: float = STEERING_RANGE
) -> torch.Tensor:
    """Inverse of `steering_to_curvature`, clipped to the action's [-1, 1]."""
    beta = torch.asin((0.5 * curvature * length).clamp(-1.0, 1.0))
    return (torch.atan(2.0 * torch.tan(beta)) / steering_range).clamp(-1.0, 1.0)


def corrected_steering(
    steering: torch.Tensor,
    speed: torch.Tensor,
    shift: torch.Tensor,
    yaw: torch.Tensor,
    recover_s: float = Viewpoint.recover_s,
    min_lookahead_m: float = Viewpoint.min_lookahead_m,
    length: float = EGO_LENGTH,
    steering_range: float = STEERING_RANGE,
) -> torch.Tensor:
    """The normalised steering, (B,), that brings an ego displaced by `shift` [m] to its right and
    turned by `yaw` [rad] towards its right back onto the path that `steering` drives, by pure pursuit
    of the point that path reaches `recover_s` seconds ahead at `speed` [m/s] (module docstring)."""
    dt = torch.float64
    k0 = steering_to_curvature(steering.to(dt), length, steering_range)
    arc = (speed.to(dt) * recover_s).clamp(min=min_lookahead_m)
    # At most MAX_TURN of the recorded arc: on a tight turn a point far round the circle pulls
    # the pursuit the wrong way (inside the turn it would steer tighter still).
    arc = torch.minimum(arc, MAX_TURN / k0.abs().clamp(min=1e-9))
    # The recorded path from the original pose: an arc of curvature k0 (sinc keeps k0 -> 0 exact).
    x = arc * torch.sinc(k0 * arc / math.pi)
    y = 0.5 * k0 * arc**2 * torch.sinc(k0 * arc / (2 * math.pi)) ** 2
    dx, dy = x, y - shift.to(dt)
    c, sn = torch.cos(yaw.to(dt)), torch.sin(yaw.to(dt))
    ahead, right = c * dx + sn * dy, -sn * dx + c * dy  # the target in the displaced ego's frame
    alpha = torch.atan2(right, ahead)
    curvature = 2.0 * torch.sin(alpha) / torch.hypot(ahead, right)
    return curvature_to_steering(curvature, length, steering_range).to(steering.dtype)


def augment(
    frames: torch.Tensor,
    speed: torch.Tensor,
    steering: torch.Tensor,
    geometry: WarpGeometry,
    generator: torch.Generator,
    viewpoint: Viewpoint = Viewpoint(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's frames (B, S, H, W) uint8 and steering labels (B,) (normalised, the dataset's
    `action[:, 1]`), `speed` (B,) [m/s]: a share `prob` of the samples seen from a displaced ego
    and labelled to recover; the others returned bit for bit. Deterministic given the generator."""
    if steering.shape != (frames.shape[0],) or speed.shape != steering.shape:
        raise ValueError(
            f"speed and steering must be ({frames.shape[0]},), got {tuple(speed.shape)} and {tuple(steering.shape)}"
        )
    shift, yaw = sample_viewpoints(frames.shape[0], viewpoint, generator)
    moved = (shift != 0) | (yaw != 0)
    if not bool(moved.any()):
        return frames, steering
    rows = moved.nonzero().squeeze(1).to(frames.device)  # warp only the displaced samples
    out = frames.clone()
    out[rows] = warp_frames(frames[rows], shift[moved], yaw[moved], geometry)
    fixed = corrected_steering(steering, speed, shift.to(steering.device), yaw.to(steering.device),
                               viewpoint.recover_s, viewpoint.min_lookahead_m)
    return out, torch.where(moved.to(steering.device), fixed, steering)
