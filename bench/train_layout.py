"""Training layout: PilotNet's training step as torch lays it out by default, against channels-last
and a compiled network (`torch.compile`), on the CPU (or CUDA when available).

Method. For each network size, batches of 64 observations of the suite's input (4 grey uint8 frames
of 64 x 128, speed, command; random values, generated beforehand) and one training step as
train-e2e takes it (`agents/e2e_loop.py:_step` without its data loader: forward, L1 loss,
backward, Adam, `loss.item()`). Variants: `channels_last` (network and frames in
`torch.channels_last`), `compiled` (`torch.compile` of the network, default mode) and, on
request, `channels_last_weights` (the weights only; the convolutions follow them: for M 1.27x
against 1.36x with the frames converted too, which is why train-e2e converts both). Each
variant starts from the same seeded weights as the default, dropout seeded alike; after untimed warm-up steps (the
compilation among them) timed runs of `--steps` steps alternate default and variant, and the
ratio is the median of the paired samples/s ratios, variant / default. Identity: after the
same steps on the same batches from the same weights, the largest |difference| of any weight
from the default's (0: bit-identical).

No target: issue 14 asks for either only where it measures faster and keeps results identical
or declared. With `--data DIR` (a collected dataset) each size is also timed through
train-e2e's own step-budget loop (`agents/e2e_loop.py:period`: DataLoader, augmentation,
schedule), `--updates` per run, channels-last against the default, alternating.
Usage: python bench/train_layout.py [--sizes S,M,L] [--steps 20] [--reps 3] [--data DIR] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from benchlib import rate_line

from steerbench.agents.e2e_loop import period
from steerbench.agents.e2e_schedule import plan
from steerbench.agents.e2e_train import TrainConfig, _splits, new_network
from steerbench.agents.pilotnet import NetConfig, PilotNet

BATCH = 64
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def batches(cfg: NetConfig, n: int, device: str) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    shape = (BATCH, cfg.stack * cfg.channels, cfg.height, cfg.width)
    return [(torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device),
             30 * torch.rand(BATCH, generator=g).to(device),
             torch.randint(0, cfg.commands, (BATCH,), generator=g).to(device),
             torch.rand(BATCH, cfg.outputs, generator=g).to(device) * 2 - 1) for _ in range(n)]


@dataclass
class Side:
    call: Callable  # the network as called (compiled or not)
    owner: PilotNet  # its parameters
    prep: Callable[[torch.Tensor], torch.Tensor]  # how frames are laid out
    opt: torch.optim.Optimizer


def side(name: str, base: PilotNet) -> Side:
    """Variant `name` of the network, from `base`'s weights, with its own Adam."""
    net = copy.deepcopy(base)
    call, prep = net, (lambda f: f)
    if name == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        call, prep = net, (lambda f: f.contiguous(memory_format=torch.channels_last))
    elif name == "compiled":
        call = torch.compile(net)
    elif name == "channels_last_weights":  # the frames as they come: conv follows its weights' layout
        net = net.to(memory_format=torch.channels_last)
        call = net
    return Side(call, net, prep, torch.optim.Adam(net.parameters(), lr=1e-3))


def run(s: Side, data: list[Batch]) -> float:
    """Train on every batch of `data`; the seconds it took."""
    t0 = time.perf_counter()
    for frames, speed, command, target in data:
        value = torch.nn.functional.l1_loss(s.call(s.prep(frames), speed, command), target)
        s.opt.zero_grad()
        value.backward()
        s.opt.step()
        value.item()
    return time.perf_counter() - t0


def prepared(size: str, names: list[str], data: list[Batch], base: PilotNet) -> tuple[dict[str, Side], dict]:
    """Each variant after one untimed run on `data` (the warm-up; the compilation), and its
    largest weight difference from the default's after that same run."""
    sides, after = {}, {}
    for name in ["default", *names]:
        try:
            sides[name] = side(name, base)
            torch.manual_seed(1)  # the same dropout masks on every side
            run(sides[name], data)
            after[name] = [p.detach().clone() for p in sides[name].owner.parameters()]
        except Exception as exc:  # noqa: BLE001 - a variant this machine cannot run is reported, not fatal
            sides.pop(name, None)
            print(f"{size} {name}: unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    gaps = {n: max(float((p - q).abs().max()) for p, q in zip(after["default"], after[n])) for n in after}
    return sides, gaps


def measure(size: str, names: list[str], steps: int, reps: int, device: str) -> dict[str, float]:
    torch.manual_seed(0)
    base = PilotNet(NetConfig(size=size)).to(device)
    data = batches(base.config, steps, device)
    sides, gaps = prepared(size, names, data, base)
    out = {}
    for name in (n for n in names if n in sides):
        pairs = []
        for r in range(reps):  # alternate which side goes first
            order = ("default", name) if r % 2 == 0 else (name, "default")
            t = {k: run(sides[k], data) for k in order}
            pairs.append(t["default"] / t[name])
        out[f"train_layout_{size}_{name}"] = statistics.median(pairs)
        rate_line(f"train_layout_{size}_{name}", statistics.median(pairs),
                  f"samples/s {name} / default, PilotNet {size}, batch {BATCH}, {device}; pairs "
                  f"{', '.join(f'{p:.2f}' for p in pairs)}; largest weight difference after the same "
                  f"{steps} steps {gaps[name]:.1e}")
    return out


def loop_side(data: Path, size: str, channels_last: bool, device: str) -> tuple:
    """train-e2e's own pieces for PilotNet `size` on `data`: its config, train set and a fresh
    seeded network and Adam in the layout asked for."""
    cfg = TrainConfig(data=str(data), logdir="", size=size, channels_last=channels_last, progress=False)
    full, train_set, _, _ = _splits(cfg, stack=4)
    net = new_network(full, cfg, device)
    return cfg, train_set, net, torch.optim.Adam(net.parameters(), lr=cfg.lr)


def measure_loop(data: Path, size: str, updates: int, reps: int, device: str) -> dict[str, float]:
    """The same comparison through train-e2e's step-budget loop (`period`: its DataLoader,
    augmentation, schedule) on a collected dataset, channels-last against the default."""
    sides = {layout: loop_side(data, size, layout, device) for layout in (False, True)}

    def timed(layout: bool) -> float:
        cfg, train_set, net, opt = sides[layout]
        steps = plan(updates, updates, 0, cfg.lr, "cosine", len(train_set), cfg.batch)
        t0 = time.perf_counter()
        period(net, opt, train_set, cfg, device, torch.Generator().manual_seed(0), steps, 1)
        return time.perf_counter() - t0

    for layout in sides:
        timed(layout)  # warm-up
    pairs = []
    for r in range(reps):
        order = (False, True) if r % 2 == 0 else (True, False)
        t = {layout: timed(layout) for layout in order}
        pairs.append(t[False] / t[True])
    name = f"train_layout_loop_{size}_channels_last"
    rate_line(name, statistics.median(pairs),
              f"samples/s channels_last / default in train-e2e's loop, PilotNet {size}, {updates} updates of "
              f"{BATCH} on {data}, {device}; pairs {', '.join(f'{p:.2f}' for p in pairs)}")
    return {name: statistics.median(pairs)}


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="S,M,L")
    p.add_argument("--variants", default="channels_last,compiled")
    p.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    p.add_argument("--reps", type=int, default=3, help="timed pairs per variant")
    p.add_argument("--data", type=Path, default=None,
                   help="a dataset (steerbench collect): also time train-e2e's own loop on it")
    p.add_argument("--updates", type=int, default=60, help="with --data: updates per timed run")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    a = p.parse_args(argv)
    if a.quick:  # no compiled variant: compiling alone takes most of a minute
        a.sizes, a.variants, a.steps, a.reps, a.updates = "S", "channels_last", 2, 1, 4
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads")
    out = {}
    for size in a.sizes.split(","):
        out |= measure(size, a.variants.split(","), a.steps, a.reps, device)
        if a.data is not None:
            out |= measure_loop(a.data, size, a.updates, a.reps, device)
    return out


if __name__ == "__main__":
    main()
