"""Behaviour cloning of the expert: `steerbench train-e2e`.

One readable loop: Adam on the L1 error between the network's output and the teacher's clean
action, photometric augmentation, early stopping on the train-dev split, a checkpoint after
every epoch (state dicts and plain config, loadable with `torch.load(weights_only=True)`), and
resumption from the last checkpoint when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from steerbench.perception.detector_data import shares
from steerbench.sim.episodes import by_split
from steerbench.sim.storage import atomic_write

from .e2e_data import ImitationDataset
from .e2e_saliency import log_inputs_and_saliency
from .errors import TrainingError
from .pilotnet import NetConfig, PilotNet, parameter_count


@dataclass(frozen=True)
class TrainConfig:
    data: str  # dataset directory from `steerbench collect`
    logdir: str  # run directory: TensorBoard, checkpoints/, config.json
    size: str = "M"  # network size: S, M or L
    epochs: int = 10  # most epochs to train
    batch: int = 64  # samples per step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # seeds weights, shuffling and augmentation
    patience: int = 3  # epochs without a better train-dev loss before stopping
    outputs: int = 1  # 1: steering; 2: acceleration and steering (full mode)
    brightness: float = 0.2  # augmentation: frames scaled by U(1 - b, 1 + b)
    noise_sd: float = 4.0  # augmentation: Gaussian pixel noise [grey levels]
    holdout: float = 0.1  # share of train episodes held out when the data has no train-dev split
    init: str = ""  # weights to start from (a best.pt of the same size and inputs): DAgger's warm start
    frames: int = 0  # train on the first `frames` train frames only (0: all); order: `first_frames`
    scenarios: tuple[str, ...] = ()  # with `frames`: whose frames, in this order (empty: the dataset's)
    progress: bool = True


def _augment(frames: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness and sensor noise: photometric only, so the steering label stays valid."""
    x = frames.float()
    scale = 1.0 + (torch.rand(len(x), *([1] * (x.dim() - 1)), generator=gen) * 2 - 1) * cfg.brightness
    x = x * scale + torch.randn(x.shape, generator=gen) * cfg.noise_sd
    return x.clamp(0, 255).to(torch.uint8)


def _splits(cfg: TrainConfig, stack: int) -> tuple[ImitationDataset, Subset, Subset, Subset]:
    """All samples, then train, train-dev (early stopping) and dev (test distribution; may be empty)."""
    try:
        full = ImitationDataset(Path(cfg.data), None, stack=stack, outputs=cfg.outputs)
    except Exception as exc:  # a dataset error of any kind ends here with one line
        raise TrainingError(f"cannot read dataset {cfg.data}: {exc}") from None
    split_of = np.array([full.episodes[e].split for e, _ in full.index])
    train = np.flatnonzero(split_of == "train")
    dev = np.flatnonzero(split_of == "train-dev")
    if not len(train):
        raise TrainingError(f"{cfg.data} has no train-split episodes")
    if cfg.frames:
        train = first_frames(full, train, cfg.frames, cfg.scenarios)
    if not len(dev):  # hold out whole episodes: neighbouring frames would leak
        episode = full.index[train, 0]
        ids = np.unique(episode)
        held = ids[: max(1, int(round(len(ids) * cfg.holdout)))] if len(ids) > 1 else ids[:0]
        dev, train = train[np.isin(episode, held)], train[~np.isin(episode, held)]
    if not len(dev) or not len(train):
        raise TrainingError("early stopping needs a train-dev split or at least 2 train episodes")
    test_dist = np.flatnonzero(split_of == "dev")
    return full, Subset(full, train.tolist()), Subset(full, dev.tolist()), Subset(full, test_dist.tolist())


def first_frames(full: ImitationDataset, candidates: np.ndarray, frames: int, scenarios: Sequence[str]) -> np.ndarray:
    """The first `frames` of `candidates` in the order the learned detector takes its frames
    (perception.detector_data): each scenario an equal share, its episodes by index, their steps
    in order; so `scale` trains both contestants on the same frames."""
    episode = full.index[candidates, 0]
    scenario_of = np.array([full.episodes[e].scenario for e in episode])
    names = list(scenarios) or list(dict.fromkeys(scenario_of))
    order = np.lexsort((full.index[candidates, 1], [full.episodes[e].index for e in episode]))
    chosen = []
    for name, share in shares(frames, names).items():
        mine = candidates[order][scenario_of[order] == name]
        if len(mine) < share:
            raise TrainingError(f"{full.root} holds {len(mine)} {name} train frames, {share} needed for --frames {frames}")
        chosen.append(mine[:share])
    return np.concatenate(chosen)


def _episodes_of(full: ImitationDataset, subset: Subset) -> dict[str, list[list[int]]]:
    """The (split, index) runs of the episodes a subset's samples come from (the checkpoint's record)."""
    ids = np.unique(full.index[np.asarray(subset.indices, dtype=int), 0]) if len(subset) else []
    return by_split((full.episodes[e].split, full.episodes[e].index) for e in ids)


def _loss(net: PilotNet, batch, device: str, cfg: TrainConfig, gen: torch.Generator | None) -> torch.Tensor:
    frames, speed, command, target = batch
    if gen is not None:
        frames = _augment(frames, cfg, gen)
    out = net(frames.to(device), speed.to(device), command.to(device))
    return torch.nn.functional.l1_loss(out, target.to(device).float())


def _save(path: Path, state: dict) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(f"{path} is not a readable steerbench checkpoint ({first[:160]})") from None


def train(cfg: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) the run in cfg.logdir; `on_epoch` gets every epoch's history record, the
    ones a resumed run had already done first (a sweep's scheduler sees the whole curve)."""
    logdir = Path(cfg.logdir)
    ckpt_dir = logdir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    full, train_set, dev_set, test_dist_set = _splits(cfg, stack=4)
    seen = {"trained": _episodes_of(full, train_set), "selected": _episodes_of(full, dev_set)}
    sample = full.episodes[0].frames
    net_cfg = NetConfig(size=cfg.size, stack=4, channels=1 if sample.ndim == 3 else 3,
                        height=sample.shape[1], width=sample.shape[2], outputs=cfg.outputs)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(cfg.seed)
    net = PilotNet(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    state = {"epoch": 0, "best": float("inf"), "stale": 0, "history": []}
    last = ckpt_dir / "last.pt"
    if last.exists():
        blob = load_checkpoint(last)
        if not _same_run(blob["train_config"], cfg):
            raise TrainingError(f"{logdir} holds a run with another configuration; use another --logdir")
        net.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        state = json.loads(blob["state"])
        torch.set_rng_state(blob["rng"])
    elif cfg.init:
        _warm_start(net, net_cfg, Path(cfg.init))
    (logdir / "config.json").write_text(json.dumps({"train": dataclasses.asdict(cfg), "net": net_cfg.as_dict(),
                                                    "parameters": parameter_count(net)}, indent=2))
    writer = SummaryWriter(str(logdir / "tb"))
    writer.add_text("hparams", json.dumps({**dataclasses.asdict(cfg), "parameters": parameter_count(net)}, indent=1))
    gen = torch.Generator().manual_seed(cfg.seed + state["epoch"])
    for record in state["history"] if on_epoch else ():
        on_epoch(record)
    try:
        while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
            epoch = state["epoch"] + 1
            train_loss, rate = _epoch(net, opt, train_set, cfg, device, gen, epoch)
            dev_loss, dev_steer = _evaluate(net, dev_set, cfg, device)
            test_dist_loss, test_dist_steer = _evaluate(net, test_dist_set, cfg, device)
            improved = dev_loss < state["best"]
            state.update(epoch=epoch, best=min(state["best"], dev_loss), stale=0 if improved else state["stale"] + 1)
            state["history"].append({"epoch": epoch, "train_l1": train_loss, "train_dev_l1": dev_loss,
                                     "dev_l1": test_dist_loss if np.isfinite(test_dist_loss) else None})
            for tag, value in (("losses/train_l1", train_loss), ("losses/train_dev_l1", dev_loss),
                               ("losses/dev_l1", test_dist_loss), ("metrics/train_dev_steering_mae", dev_steer),
                               ("metrics/dev_steering_mae", test_dist_steer), ("charts/learning_rate", cfg.lr),
                               ("time/samples_per_s", rate)):
                if np.isfinite(value):
                    writer.add_scalar(tag, value, epoch)
            blob = {"model": net.state_dict(), "optimizer": opt.state_dict(), "config": net_cfg.as_dict(),
                    "train_config": _comparable(cfg), "state": json.dumps(state), "rng": torch.get_rng_state()}
            if improved:
                _save(ckpt_dir / "best.pt", {"model": net.state_dict(), "config": net_cfg.as_dict(), "epoch": epoch,
                                             "episodes": seen})
            _save(last, blob)
            gen = torch.Generator().manual_seed(cfg.seed + epoch)
            if on_epoch:  # after the checkpoint: a sweep may stop the trial inside this call
                on_epoch(state["history"][-1])
        log_inputs_and_saliency(writer, net, dev_set, device, state["epoch"])
    finally:
        writer.close()
    return state


def _warm_start(net: PilotNet, net_cfg: NetConfig, path: Path) -> None:
    blob = load_checkpoint(path)
    if not isinstance(blob, dict) or blob.get("config") != net_cfg.as_dict() or "model" not in blob:
        raise TrainingError(f"{path} is not a best.pt of a network of this size and input; it cannot start this one")
    net.load_state_dict(blob["model"])


def _comparable(cfg: TrainConfig) -> str:
    """What must match to resume (not `epochs`: a run may be extended)."""
    d = dataclasses.asdict(cfg)
    for k in ("epochs", "progress", "patience"):
        d.pop(k)
    return json.dumps(d, sort_keys=True)


def _same_run(stored: str, cfg: TrainConfig) -> bool:
    """A field at its default matches a stored configuration that lacks it: runs made before the
    field existed stay resumable."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}

    def norm(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in defaults or json.loads(json.dumps(defaults[k])) != v}

    return norm(json.loads(stored)) == norm(json.loads(_comparable(cfg)))


def _epoch(net, opt, data, cfg: TrainConfig, device: str, gen: torch.Generator, epoch: int) -> tuple[float, float]:
    net.train()
    loader = DataLoader(data, batch_size=cfg.batch, shuffle=True, generator=gen, num_workers=0)
    total, n, start = 0.0, 0, time.perf_counter()
    for batch in tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not cfg.progress):
        loss = _loss(net, batch, device, cfg, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(batch[0])
        n += len(batch[0])
    return total / max(n, 1), n / max(time.perf_counter() - start, 1e-9)


@torch.no_grad()
def _evaluate(net, data, cfg: TrainConfig, device: str) -> tuple[float, float]:
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
