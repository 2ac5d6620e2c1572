"""What the learned detector is trained to output, and how far it is from it: CenterNet
targets, losses and the photometric augmentation of `steerbench train-detector`.

Targets: a Gaussian (sd `sigma_px`) on the output grid around each vehicle's drawn centre (the
mean of its box corners as rendered), 1 at the peak cell; at that cell the offset to the
vehicle's true centre projected to pixels, its length and width [m] and (sin 2θ, cos 2θ).
Vehicles that `perception.metrics` does not expect (centre off the frame or within 2 px of its
edge) and the ego's own place are left out of the heatmap loss (neither positive nor
negative): the ego is drawn like any car, and the decoder drops both places.

Losses: the penalty-reduced focal loss of CenterNet (alpha 2, beta 4) on the heatmap, normalised
by the number of vehicles; L1 on offset (cells, weight 1), log size ratio (weight `size_weight`)
and heading (weight 1) at the vehicles' peak cells only.

Augmentation (photometric only, so the labels stay valid; per frame): a gain drawn from
U(1 - brightness, 1 + brightness) and Gaussian pixel noise whose sd is drawn from U(0, noise_sd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .detector_data import FrameSet
from .learned import REFERENCE_SIZE_M

EGO_IGNORE_PX = 6.0  # [px] heatmap cells this close to the ego's pixel are left out of the loss
IGNORE_LEVEL = 0.05  # cells where a not-expected vehicle's Gaussian exceeds this are left out


@dataclass(frozen=True)
class Targets:
    """The training targets of a set of frames, on the output grid (h, w) for up to K vehicles."""

    heat: torch.Tensor  # (N, h, w) float: Gaussian targets, 1 at the peak cells
    weight: torch.Tensor  # (N, h, w) float: 0 where the heatmap loss is left out
    index: torch.Tensor  # (N, K) long: flattened peak cell of each vehicle
    mask: torch.Tensor  # (N, K) float: 1 for a real vehicle
    regress: torch.Tensor  # (N, K, 6) float: offset (2, cells), log(size / reference) (2), sin 2θ, cos 2θ

    def batch(self, idx: torch.Tensor) -> "Targets":
        """The targets of the frames `idx`."""
        return Targets(*(t[idx] for t in self._tensors()))

    def to(self, device: str) -> "Targets":
        """The same targets on `device`."""
        return Targets(*(t.to(device) for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.heat, self.weight, self.index, self.mask, self.regress


def encode(data: FrameSet, stride: int, sigma_px: float) -> Targets:
    """The targets of every frame of `data` on a grid of `stride` px (module docstring)."""
    n = len(data)
    H, W = data.frames.shape[1:]
    h, w = math.ceil(H / stride), math.ceil(W / stride)
    k = max(1, max((int(b.expected.sum()) for b in data.boxes), default=1))
    heat = np.zeros((n, h, w), np.float32)
    weight = np.ones((n, h, w), np.float32)
    index = np.zeros((n, k), np.int64)
    mask = np.zeros((n, k), np.float32)
    regress = np.zeros((n, k, 6), np.float32)
    cu = (np.arange(w) + 0.5) * stride  # cell centres [px]
    cv = (np.arange(h) + 0.5) * stride
    ego_near = [((cu[None, :] - g.ego_px[0]) ** 2 + (cv[:, None] - g.ego_px[1]) ** 2) <= EGO_IGNORE_PX ** 2
                for g in data.geometries]
    for i, b in enumerate(data.boxes):
        weight[i][ego_near[data.scenario[i]]] = 0.0
        j = 0
        for d, tpx, size, theta, exp in zip(b.drawn_px, b.true_px, b.size_m, b.heading, b.expected):
            g = np.exp(-((cu[None, :] - d[0]) ** 2 + (cv[:, None] - d[1]) ** 2) / (2 * sigma_px**2))
            if not exp:
                weight[i][g > IGNORE_LEVEL] = 0.0
                continue
            r, c = min(int(d[1] // stride), h - 1), min(int(d[0] // stride), w - 1)
            heat[i] = np.maximum(heat[i], g)
            heat[i, r, c] = 1.0
            index[i, j], mask[i, j] = r * w + c, 1.0
            regress[i, j] = [tpx[0] / stride - (c + 0.5), tpx[1] / stride - (r + 0.5),
                             np.log(size[0] / REFERENCE_SIZE_M[0]), np.log(size[1] / REFERENCE_SIZE_M[1]),
                             np.sin(2 * theta), np.cos(2 * theta)]
            j += 1
        # A vehicle's peak stays a positive where an ignored neighbour's halo or the ego's place covers it.
        weight[i][heat[i] == 1.0] = 1.0
    return Targets(*(torch.from_numpy(a) for a in (heat, weight, index, mask, regress)))


def losses(out: dict[str, torch.Tensor], t: Targets, size_weight: float) -> dict[str, torch.Tensor]:
    """CenterNet's focal loss on the heatmap and L1 on the regression heads at the peak cells."""
    logit = out["heatmap"][:, 0]
    pos = (t.heat == 1.0).float()
    p = torch.sigmoid(logit)
    pos_loss = -(F.logsigmoid(logit) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(F.logsigmoid(-logit) * p**2 * (1 - t.heat) ** 4 * t.weight * (1 - pos)).sum()
    result = {"heatmap": (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)}
    n = t.mask.sum().clamp(min=1.0)
    heads = (("offset", slice(0, 2), 1.0), ("size", slice(2, 4), size_weight), ("heading", slice(4, 6), 1.0))
    for name, cols, scale in heads:
        x = out[name].flatten(2)  # (B, 2, h * w)
        pred = x.gather(2, t.index[:, None, :].expand(-1, x.shape[1], -1)).permute(0, 2, 1)  # (B, K, 2)
        result[name] = scale * ((pred - t.regress[..., cols]).abs() * t.mask[..., None]).sum() / (2 * n)
    result["total"] = result["heatmap"] + result["offset"] + result["size"] + result["heading"]
    return result


def augment(frames: torch.Tensor, brightness: float, noise_sd: float, gen: torch.Generator) -> torch.Tensor:
    """Gain and sensor noise per frame, photometric only (module docstring); draws from `gen`."""
    x = frames.float()
    n = len(x)
    gain = 1.0 + (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * brightness
    sd = torch.rand(n, 1, 1, generator=gen) * noise_sd
    x = x * gain + torch.randn(x.shape, generator=gen) * sd
    return x.clamp(0, 255).round().to(torch.uint8)
