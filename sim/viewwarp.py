"""The view from a displaced ego: an exact warp of steerbench's top-down frames.

The camera (`sim/camera.py`) is a top-down orthographic view centred on the ego and rotated with
it: the ego's position sits at the pixel `ego_pixel(camera)` and it faces +u (right, along a
row); +v (down a column) is the ego's right, the world's +y at heading 0 (`VehicleState.to_local`:
"x ahead, y to its right"). The view from an ego displaced by `d` metres to its right and turned
by `yaw` towards its right is then the same frame under a rigid warp about the ego pixel: output
pixel o shows what the original showed at

    src = e + R(yaw) (o - e) + (0, scaling * d),     R(yaw) = [[cos, -sin], [sin, cos]]

(e the ego pixel); a point q of the displaced ego's frame [m] is the point R(yaw) q + (0, d) of the
original's (`to_displaced` is the inverse). Two things are not part of the world and are handled
apart:
* the ego's own drawing stays at its pixel, facing +u, in every frame: its pixels (the box of its
  sprite, where the frame differs from the background) are kept from the original, and where the
  warp would move them to, the background is drawn (the road under a car is background grey,
  unless a lane marking runs beneath it: such a marking is not redrawn there);
* what the warp brings in from outside the frame is unknown: it is filled with the background
  grey the renderer fills the world with (`sim/camera.py` BACKGROUND_GREY, 99).
Pixels are sampled by nearest neighbour, as the camera samples its canvas, so every output pixel
is a grey the renderer drew. All frames of one sample get the same warp: the stack then shows an
ego that drove a path parallel to the recorded one (shift) or turned about its current pose.

Users: the end-to-end network's viewpoint augmentation (agents/e2e_viewpoint.py, which corrects
the steering label) and the lane model's (perception/lane_displace.py, which moves the lane labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .camera import BACKGROUND_GREY, ego_pixel
from .types import CameraConfig

EGO_LENGTH = 5.0  # [m] highway-env `Vehicle.LENGTH`: the ego's drawn body
EGO_WIDTH = 2.0  # [m] highway-env `Vehicle.WIDTH`
TYRE_WIDTH = 0.3  # [m] highway-env's sprite draws tyres this wide on the body's sides


@dataclass(frozen=True)
class Displacement:
    """How far an augmentation displaces the ego. ValueError for negative ranges or `prob`
    outside [0, 1]."""

    shift_m: float = 1.0  # [m] largest |lateral shift|, uniform in [-shift_m, shift_m] (lane 4 m, car 2 m)
    rotate_deg: float = 5.0  # [deg] largest |yaw|, uniform in [-rotate_deg, rotate_deg]
    prob: float = 0.5  # share of the samples that are displaced; the rest pass through untouched

    def __post_init__(self) -> None:
        if self.shift_m < 0 or self.rotate_deg < 0:
            raise ValueError("shift_m and rotate_deg must be >= 0")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError("prob must be in [0, 1]")


@dataclass(frozen=True)
class WarpGeometry:
    """Where the ego sits in a frame and at what scale; `from_camera` reads the camera's settings."""

    height: int  # [px] rows (across the road)
    width: int  # [px] columns (along the ego's heading, +u ahead)
    scaling: float  # [px/m]
    ego_u: float  # [px] corner coordinate of the ego's position along a row (pixel j covers [j, j+1))
    ego_v: float  # [px] the same down a column (+v is the ego's right)
    background: int = BACKGROUND_GREY  # grey level of empty world, the fill for unknown pixels
    ego_length: float = EGO_LENGTH  # [m] the ego's body, whose drawing stays in place
    ego_width: float = EGO_WIDTH  # [m]

    @classmethod
    def from_camera(cls, camera: CameraConfig, background: int = BACKGROUND_GREY) -> "WarpGeometry":
        """The geometry of `camera`'s frames (its centering resolved, as `EpisodeInfo.camera` has it).
        A split whose look scales brightness draws the background at that gain: pass it."""
        if camera.centering is None:
            raise ValueError("the camera's centering is unresolved (None): take it from the env or episode")
        u, v = ego_pixel(camera)
        return cls(camera.height, camera.width, camera.scaling, float(u), float(v), int(background))

    def ego_box(self) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), ends exclusive: the pixels whose centre lies in the ego sprite's
        box (body plus tyres, one pixel of margin for the renderer's rounding)."""
        half_u = self.ego_length / 2 * self.scaling + 1.0
        half_v = (self.ego_width / 2 + TYRE_WIDTH) * self.scaling + 1.0
        r0, r1 = math.ceil(self.ego_v - half_v - 0.5), math.floor(self.ego_v + half_v - 0.5) + 1
        c0, c1 = math.ceil(self.ego_u - half_u - 0.5), math.floor(self.ego_u + half_u - 0.5) + 1
        return max(r0, 0), min(r1, self.height), max(c0, 0), min(c1, self.width)

    def ego_mask(self) -> torch.Tensor:
        """(H, W) bool: the pixels of `ego_box`."""
        r0, r1, c0, c1 = self.ego_box()
        mask = torch.zeros(self.height, self.width, dtype=torch.bool)
        mask[r0:r1, c0:c1] = True
        return mask


def sample_displacements(
    batch: int, displacement: Displacement, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift [m] to the ego's right, yaw [rad] towards its right), each (batch,) float64 on the
    generator's device; zero for the samples left untouched (a share 1 - prob)."""
    dev = generator.device
    u = torch.rand(3, batch, generator=generator, device=dev, dtype=torch.float64)
    chosen = u[0] < displacement.prob
    shift = (2 * u[1] - 1) * displacement.shift_m * chosen
    yaw = (2 * u[2] - 1) * math.radians(displacement.rotate_deg) * chosen
    return shift, yaw


def to_displaced(points: torch.Tensor, shift: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Points (B, ..., 2) [m] of the original ego's frame (x ahead, y right) in the frame of the
    ego displaced by `shift` [m] to its right and turned by `yaw` [rad] towards its right, (B,)
    each: q = R(-yaw) (p - (0, shift)). NaN stays NaN."""
    b = points.shape[0]
    view = (b,) + (1,) * (points.dim() - 2)
    shift, yaw = shift.to(points).reshape(view), yaw.to(points).reshape(view)
    c, sn = torch.cos(yaw), torch.sin(yaw)
    x, y = points[..., 0], points[..., 1] - shift
    return torch.stack([c * x + sn * y, -sn * x + c * y], dim=-1)


def warp_frames(frames: torch.Tensor, shift: torch.Tensor, yaw: torch.Tensor, geometry: WarpGeometry) -> torch.Tensor:
    """The frames (B, S, H, W) uint8 as seen from the ego displaced by `shift` [m] to its right and
    turned by `yaw` [rad] towards its right, (B,) each: one warp for all S frames of a sample, the
    ego's own drawing kept at its pixel, the background grey where nothing is known."""
    if frames.dim() != 4:
        raise ValueError(f"frames must be (B, S, H, W), got shape {tuple(frames.shape)}")
    b, s, h, w = frames.shape
    if (h, w) != (geometry.height, geometry.width):
        raise ValueError(f"frames are {h}x{w}, the geometry is {geometry.height}x{geometry.width}")
    dev, g, dt = frames.device, geometry, torch.float64
    shift = shift.to(dev, dt).reshape(b, 1, 1)
    yaw = yaw.to(dev, dt).reshape(b, 1, 1)
    du = (torch.arange(w, device=dev, dtype=dt) + (0.5 - g.ego_u)).reshape(1, 1, w)
    dv = (torch.arange(h, device=dev, dtype=dt) + (0.5 - g.ego_v)).reshape(1, h, 1)
    c, sn = torch.cos(yaw), torch.sin(yaw)
    src_u = torch.floor(g.ego_u + c * du - sn * dv).long()  # (B, H, W) source column
    src_v = torch.floor(g.ego_v + sn * du + c * dv + g.scaling * shift).long()  # source row
    r0, r1, c0, c1 = g.ego_box()
    # Sources outside the frame, and the ego's drawing (which must not be dragged along: the road
    # it covers is background), read one extra pixel of background grey at index H * W.
    known = (src_u >= 0) & (src_u < w) & (src_v >= 0) & (src_v < h)
    known &= ~((src_v >= r0) & (src_v < r1) & (src_u >= c0) & (src_u < c1))
    index = torch.where(known, src_v * w + src_u, h * w).reshape(b, 1, h * w).expand(b, s, h * w)
    padded = torch.cat([frames.reshape(b, s, h * w), frames.new_full((b, s, 1), g.background)], dim=2)
    out = padded.gather(2, index).reshape(b, s, h, w)
    box = frames[..., r0:r1, c0:c1]  # the ego's drawing stays where it is
    out[..., r0:r1, c0:c1] = torch.where(box != g.background, box, out[..., r0:r1, c0:c1])
    return out
