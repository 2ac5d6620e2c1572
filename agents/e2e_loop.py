"""The updates of `train-e2e` (agents/e2e_train.py): one epoch, or one period of a step budget,
with the batches' augmentation, and the held-out evaluation.

Augmentation: photometric always (brightness and sensor noise, so the label stays valid), and
with `TrainConfig.viewpoint` a share of the samples seen from a displaced ego with a corrected
label (agents/e2e_viewpoint.py, through `Displacer`). Every draw comes from the epoch's (or
period's) generator, so a resumed run draws what an uninterrupted one would have.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from .e2e_displace import Displacer
from .e2e_schedule import StepPlan, period_order
from .pilotnet import PilotNet

if TYPE_CHECKING:
    from .e2e_train import TrainConfig


def photometric(frames: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness and sensor noise: photometric only, so the steering label stays valid."""
    x = frames.float()
    scale = 1.0 + (torch.rand(len(x), *([1] * (x.dim() - 1)), generator=gen) * 2 - 1) * cfg.brightness
    x = x * scale + torch.randn(x.shape, generator=gen) * cfg.noise_sd
    return x.clamp(0, 255).to(torch.uint8)


def loss(net: PilotNet, batch, device: str, cfg: TrainConfig, gen: torch.Generator | None,
         displace: Displacer | None = None, positions: np.ndarray | None = None) -> torch.Tensor:
    """The L1 loss of one batch; with a generator, augmented (viewpoint first when `displace`)."""
    frames, speed, command, target = batch
    if displace is not None and gen is not None:
        frames, steering = displace(frames, speed, target[:, -1], positions, gen)
        target = torch.cat([target[:, :-1].float(), steering[:, None].float()], dim=1)
    if gen is not None:
        frames = photometric(frames, cfg, gen)
    frames = frames.to(device)
    if cfg.channels_last and frames.dim() == 4:
        frames = frames.contiguous(memory_format=torch.channels_last)
    out = net(frames, speed.to(device), command.to(device))
    return torch.nn.functional.l1_loss(out, target.to(device).float())


def _step(net, opt, batch, device, cfg, gen, displace, positions) -> float:
    value = loss(net, batch, device, cfg, gen, displace, positions)
    opt.zero_grad()
    value.backward()
    opt.step()
    return value.item() * len(batch[0])


def _positions(data: Subset, order: list[int], k: int, batch: int) -> np.ndarray:
    """The dataset positions of batch k of `order` (positions into the subset)."""
    return np.asarray(data.indices, dtype=np.int64)[order[k * batch:(k + 1) * batch]]


def epoch(net, opt, data: Subset, cfg: TrainConfig, device: str, gen: torch.Generator, number: int,
          displace: Displacer | None = None) -> tuple[float, float]:
    """One pass over `data`; returns the mean train loss and samples/s. Without viewpoint
    augmentation the loader shuffles as it always has (the same draws, the same model)."""
    net.train()
    order = torch.randperm(len(data), generator=gen).tolist() if displace is not None else None
    loader = (DataLoader(data, batch_size=cfg.batch, shuffle=True, generator=gen, num_workers=0) if order is None
              else DataLoader(data, batch_size=cfg.batch, sampler=order, num_workers=0))
    total, n, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {number}", unit="batch", leave=False, disable=not cfg.progress)
    for k, batch in enumerate(bar):
        where = _positions(data, order, k, cfg.batch) if order is not None else None
        total += _step(net, opt, batch, device, cfg, gen, displace, where)
        n += len(batch[0])
    return total / max(n, 1), n / max(time.perf_counter() - start, 1e-9)


def period(net, opt, data: Subset, cfg: TrainConfig, device: str, gen: torch.Generator, steps: StepPlan,
           number: int, displace: Displacer | None = None) -> tuple[float, float, float]:
    """Period `number` of a step budget: its updates, each at the schedule's learning rate;
    returns the mean train loss, samples/s and the last learning rate."""
    net.train()
    count = steps.steps_in(number)
    order = period_order(len(data), count * cfg.batch, gen)
    loader = DataLoader(data, batch_size=cfg.batch, sampler=order, num_workers=0)
    first, total, n, lr, start = (number - 1) * steps.interval, 0.0, 0, steps.lr, time.perf_counter()
    bar = tqdm(loader, desc=f"steps {first + 1}-{first + count}", unit="step", leave=False, disable=not cfg.progress)
    for k, batch in enumerate(bar):
        lr = steps.lr_at(first + k)
        for group in opt.param_groups:
            group["lr"] = lr
        total += _step(net, opt, batch, device, cfg, gen, displace, _positions(data, order, k, cfg.batch))
        n += len(batch[0])
    return total / max(n, 1), n / max(time.perf_counter() - start, 1e-9), lr


@torch.no_grad()
def evaluate(net, data, device: str) -> tuple[float, float]:
    """Mean L1 over all outputs and the steering MAE alone (the same when only steering is learned)."""
    if not len(data):
        return float("nan"), float("nan")
    net.eval()
    total, steer, n = 0.0, 0.0, 0
    for frames, speed, command, target in DataLoader(data, batch_size=256, shuffle=False):
        out = net(frames.to(device), speed.to(device), command.to(device))
        err = (out - target.to(device).float()).abs()
        total += err.mean().item() * len(frames)
        steer += err[:, -1].sum().item()
        n += len(frames)
    return total / n, steer / n
