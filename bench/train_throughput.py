"""Training throughput: train-e2e's epoch loop against a bare PyTorch loop over in-memory tensors.

Method. A small dataset (the expert on the highway, `collect()`; or `--data DIR`) is split as
train-e2e splits it (`_splits`: train episodes minus the held-out train-dev ones). Side A runs one
epoch of train-e2e's own loop, `agents/e2e_loop.py:epoch` (its DataLoader over
`ImitationDataset`, which rebuilds each sample's frame stack, batch 64, shuffled, augmentation,
L1 loss, Adam, `loss.item()` per batch). Side B runs one epoch over the same train samples,
stacked beforehand into tensors in memory: a `randperm`, slices of 64, the same `photometric`
(augmentation ON on both sides: brightness and noise on the CPU, as in train-e2e), the same
device transfer, loss, optimiser step and `loss.item()`. Both sides start from the same freshly
seeded PilotNet M and a new Adam (lr 1e-3); only the epoch is timed (not building the tensors). The
device is CUDA when available, else the CPU with torch's default threads. After one untimed epoch
of each, the sides alternate (A B, B A, A B ...); the ratio is the median of the paired ratios of
samples/s, train-e2e / bare.

Target (project issue): train-e2e's samples/s >= 0.9 x the bare loop's.
Usage: python bench/train_throughput.py [--episodes 8] [--reps 3] [--size M] [--data DIR] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
from benchlib import ratio_line
from torch.utils.data import Subset

from steerbench.agents.e2e_loop import epoch as train_epoch
from steerbench.agents.e2e_loop import photometric
from steerbench.agents.e2e_train import TrainConfig, _splits
from steerbench.agents.pilotnet import NetConfig, PilotNet
from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.collect import CollectConfig, collect
from steerbench.sim.runner import EnvSettings

TARGET = 0.9  # train-e2e samples/s / bare samples/s


def fresh(net_cfg: NetConfig, cfg: TrainConfig, device: str) -> tuple[PilotNet, torch.optim.Optimizer]:
    torch.manual_seed(cfg.seed)
    net = PilotNet(net_cfg).to(device)
    return net, torch.optim.Adam(net.parameters(), lr=cfg.lr)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def harness_epoch(train_set: Subset, net_cfg: NetConfig, cfg: TrainConfig, device: str) -> float:
    net, opt = fresh(net_cfg, cfg, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    sync(device)
    t0 = time.perf_counter()
    train_epoch(net, opt, train_set, cfg, device, gen, 1)
    sync(device)
    return time.perf_counter() - t0


def bare_epoch(tensors: tuple[torch.Tensor, ...], net_cfg: NetConfig, cfg: TrainConfig, device: str) -> float:
    frames, speed, command, target = tensors
    net, opt = fresh(net_cfg, cfg, device)
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    sync(device)
    t0 = time.perf_counter()
    total = 0.0
    for idx in torch.randperm(len(frames), generator=gen).split(cfg.batch):
        x = photometric(frames[idx], cfg, gen)
        out = net(x.to(device), speed[idx].to(device), command[idx].to(device))
        loss = torch.nn.functional.l1_loss(out, target[idx].to(device).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    sync(device)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="", help="a collected dataset (default: collect one in a temp dir)")
    p.add_argument("--scenario", default="highway", help="what to collect when --data is not given")
    p.add_argument("--episodes", type=int, default=8, help="episodes to collect when --data is not given")
    p.add_argument("--size", default="M")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=3, help="timed epochs per side, interleaved")
    p.add_argument("--max-samples", type=int, default=0, help="the first N train samples only (0: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    a = p.parse_args(argv)
    if a.quick:
        a.scenario, a.episodes, a.reps, a.max_samples = "merge", 2, 2, 64
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(a.data) if a.data else Path(tmp) / "data"
        if not a.data:
            collect(CollectConfig(teacher=AgentSpec("expert", resolve("expert")), scenarios=(a.scenario,),
                                  episodes=a.episodes, workers=1 if a.quick else 2, out=data,
                                  env=EnvSettings(fast=True), progress=False))
        cfg = TrainConfig(data=str(data), logdir=str(Path(tmp) / "run"), size=a.size, batch=a.batch, progress=False)
        full, train_set, _, _ = _splits(cfg, stack=4)
        if a.max_samples:
            train_set = Subset(train_set.dataset, train_set.indices[:a.max_samples])
        sample = full.episodes[0].frames
        net_cfg = NetConfig(size=a.size, stack=4, channels=1 if sample.ndim == 3 else 3,
                            height=sample.shape[1], width=sample.shape[2], outputs=cfg.outputs)
        items = [train_set[i] for i in range(len(train_set))]
        tensors = tuple(torch.stack([it[k] for it in items]) for k in range(4))
        n = len(train_set)
        harness_epoch(train_set, net_cfg, cfg, device)  # untimed warm-up: thread pools, allocator, caches
        bare_epoch(tensors, net_cfg, cfg, device)
        ta, tb = [], []
        for rep in range(a.reps):
            for side in ("AB" if rep % 2 == 0 else "BA"):  # neither side always runs first
                if side == "A":
                    ta.append(harness_epoch(train_set, net_cfg, cfg, device))
                else:
                    tb.append(bare_epoch(tensors, net_cfg, cfg, device))
            print(f"rep {rep}: train-e2e {n / ta[-1]:.1f} samples/s, bare {n / tb[-1]:.1f} samples/s, "
                  f"ratio {tb[-1] / ta[-1]:.3f}", flush=True)
    ratio = statistics.median(b / a_ for a_, b in zip(ta, tb))
    threads = "" if device == "cuda" else f", {torch.get_num_threads()} threads"
    print(f"PilotNet {a.size}, {n} train samples, batch {a.batch}, augmentation on (both), device {device}{threads}; "
          f"median train-e2e {n / statistics.median(ta):.1f} samples/s, bare {n / statistics.median(tb):.1f} samples/s")
    ratio_line("train_throughput", ratio, "train-e2e / bare samples/s, median of paired epochs", TARGET,
               at_least=True)
    return {"train_throughput": ratio}


if __name__ == "__main__":
    main()
