"""Training of the learned detector (`steerbench train-detector`): the loop.

Data (perception/detector_data.py): a `steerbench collect` dataset (docs/dataset.md) with
`train`, `train-dev` and `dev` episodes. Frames are taken in one documented order
(`select_frames`): the scenarios in the order given, each contributing an equal share of the
budget (the first ones one frame more while the budget does not divide), within a scenario its
episodes by index and their steps in order; held-out splits take every `eval_stride`-th step,
so they span more episodes.

Targets, losses and augmentation: perception/detector_targets.py. Evaluation (and the
classical baseline): perception/detector_eval.py. TensorBoard: perception/detector_tb.py.
config.json, metrics.json and their table: perception/detector_results.py. The scaffold that
train-e2e shares (checkpoints, resume, early stopping): perception/training.py.

Training: Adam, learning rate decayed by `lr_decay` per epoch, shuffling and augmentation from
generators seeded by `seed` and the epoch (deterministic on the CPU), best checkpoint by
average precision on the train-dev frames with early stopping after `patience` epochs without
improvement, `checkpoints/best.pt` and `checkpoints/last.pt` written atomically after every
epoch (a re-run of the same command resumes from `last.pt`), TensorBoard under `LOGDIR/tb` and
`LOGDIR/metrics.json` (see docs/perception.md for the tags).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from steerbench.sim.composition import Composition
from steerbench.sim.episodes import by_split
from steerbench.sim.scenarios import get_scenario

from .detector_data import Collector, FrameSet, ensure_frames, select_frames
from .detector_eval import AP_THRESHOLD, Evaluation, classical_baseline, evaluate, evaluate_detector
from .detector_results import plain, results_table, write_json
from .detector_targets import Targets, augment, encode, losses
from .detector_tb import log_best, log_epoch
from .learned import (
    CHECKPOINT_FORMAT,
    CenterNetSmall,
    DetectorError,
    DetectorNetConfig,
    load_detector_checkpoint,
    parameter_count,
)
from .training import (
    EarlyStopping,
    RunDir,
    TrainState,
    comparable_config,
    open_writer,
    resolve_device,
    resume,
    same_config,
    save_checkpoint,
    save_last,
)

__all__ = ["DetectorTrainConfig", "HELD_OUT", "evaluate_detector", "prepare_data", "results_table", "train_detector"]

HELD_OUT = ("train-dev", "dev")  # held-out frames of the train distribution and of the test one


@dataclass(frozen=True)
class DetectorTrainConfig:
    """The settings of one `train-detector` run; the CLI sets the common ones."""

    data: str  # dataset directory (steerbench collect) with train, train-dev and dev episodes
    logdir: str  # run directory: TensorBoard (tb/), checkpoints/, config.json, metrics.json
    scenarios: tuple[str, ...] = ("highway", "racetrack")  # frames come from these, equal shares
    frames: int = 6000  # train frames used: the first `frames` in the documented order
    eval_frames: int = 600  # held-out frames per split (train-dev, dev)
    eval_stride: int = 4  # held-out frames are every eval_stride-th step of their episodes
    epochs: int = 10  # most epochs to train
    batch: int = 32  # frames per step
    lr: float = 2e-3  # Adam learning rate of the first epoch
    lr_decay: float = 0.8  # learning rate factor per epoch
    seed: int = 0  # seeds weights, shuffling and augmentation
    device: str = "auto"  # torch device; auto: CUDA when available, else the CPU
    patience: int = 3  # epochs without a better train-dev AP before stopping
    stride: int = 2  # output grid step [px] (2 or 4)
    sigma_px: float = 1.5  # [px] sd of the Gaussian heatmap target
    size_weight: float = 1.0  # weight of the size loss (log of size over REFERENCE_SIZE_M)
    brightness: float = 0.25  # augmentation: frames scaled by U(1 - b, 1 + b)
    noise_sd: float = 8.0  # augmentation: Gaussian pixel noise, sd drawn from U(0, noise_sd) [grey levels]
    score_threshold: float = 0.3  # operating point for precision, recall and error; saved as the default
    images: int = 4  # held-out frames drawn with their boxes in TensorBoard, per split
    composition: Composition | None = None  # train frames in this sim.composition mix (None: the first)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.frames < 1 or self.eval_frames < 1 or self.eval_stride < 1 or self.epochs < 1 or self.batch < 1:
            raise DetectorError("frames, eval_frames, eval_stride, epochs and batch must be positive")
        if not 0.0 < self.score_threshold < 1.0:
            raise DetectorError(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        if not self.scenarios:
            raise DetectorError("no scenario given")
        for s in self.scenarios:
            get_scenario(s)


class FrameBudget(Protocol):
    """What a perception model trains on: a DetectorTrainConfig, or a LaneTrainConfig (frames None: all)."""

    data: str
    scenarios: tuple[str, ...]
    frames: int | None
    eval_frames: int
    eval_stride: int


def prepare_data(cfg: FrameBudget, collect_episodes: Collector, policy_hz: int = 5) -> None:
    """Collect what `cfg` needs into `cfg.data`: its train frames and its held-out frames of
    train-dev and dev (`collect_episodes` as in `ensure_frames`; the CLI passes steerbench collect)."""
    if cfg.frames is not None:
        ensure_frames(Path(cfg.data), "train", cfg.scenarios, cfg.frames, 1, collect_episodes, policy_hz)
    for split in HELD_OUT:
        ensure_frames(Path(cfg.data), split, cfg.scenarios, cfg.eval_frames, cfg.eval_stride, collect_episodes,
                      policy_hz)


@dataclass(frozen=True)
class _Frames:
    """The frames a run trains and evaluates on, with their targets."""

    train: FrameSet
    train_targets: Targets
    held: dict[str, FrameSet]  # by split (HELD_OUT)
    held_targets: dict[str, Targets]


def _load_frames(cfg: DetectorTrainConfig, stride: int) -> _Frames:
    train_set = select_frames(Path(cfg.data), "train", cfg.scenarios, cfg.frames, composition=cfg.composition)
    held = {split: select_frames(Path(cfg.data), split, cfg.scenarios, cfg.eval_frames, cfg.eval_stride)
            for split in HELD_OUT}
    return _Frames(train_set, encode(train_set, stride, cfg.sigma_px), held,
                   {split: encode(data, stride, cfg.sigma_px) for split, data in held.items()})


def _comparable(cfg: DetectorTrainConfig) -> str:
    """What must match to resume (not `epochs`, `patience`, `images`, `progress` or `device`)."""
    unset = ("composition",) if cfg.composition is None else ()  # runs from before the field still resume
    return comparable_config(cfg, ("epochs", "patience", "images", "progress", "device", *unset))


def train_detector(cfg: DetectorTrainConfig) -> dict:
    """Train on `cfg.frames` train frames (or resume the run in `cfg.logdir`); return metrics.json's content."""
    run = RunDir(Path(cfg.logdir))
    try:
        run.create()
    except OSError as exc:
        raise DetectorError(f"cannot create {run.checkpoints}: {exc.strerror or exc}") from None
    t0 = time.perf_counter()
    net_cfg = DetectorNetConfig(stride=cfg.stride)
    data = _load_frames(cfg, net_cfg.stride)
    load_s = time.perf_counter() - t0
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    net = CenterNetSmall(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = data.train.geometries[0]
    frame = {"height": int(data.train.frames.shape[1]), "width": int(data.train.frames.shape[2]), "scaling": g.scaling}
    state = resume(run, load_detector_checkpoint, lambda blob: same_config(blob.get("train_config"), _comparable(cfg)),
                   DetectorError, net, opt, current=_comparable(cfg))
    if state is None:  # a new run; any AP (>= 0) beats the starting best
        state = TrainState(best=-1.0, best_epoch=0, extra={"train_s": 0.0})
    params = parameter_count(net)
    write_json(run.logdir / "config.json", {"train": dataclasses.asdict(cfg), "net": net_cfg.as_dict(), "frame": frame,
                                            "parameters": params, "torch": torch.__version__})
    writer = open_writer(run.logdir, {**dataclasses.asdict(cfg), "parameters": params})
    base = {"kind": "detector", "format": CHECKPOINT_FORMAT, "config": net_cfg.as_dict(), "frame": frame,
            "decode": {"score_threshold": cfg.score_threshold}, "scenarios": list(cfg.scenarios),
            "episodes": {"trained": by_split(("train", i) for i in data.train.episodes),
                         "selected": by_split((s, i) for s, d in data.held.items() for i in d.episodes)}}
    stopping = EarlyStopping(cfg.epochs, cfg.patience, higher_is_better=True)
    try:
        while stopping.running(state):
            epoch = state.epoch + 1
            train_losses, evals, seconds = _fit_epoch(net, opt, data, cfg, device, epoch)
            improved = stopping.record(state, epoch, evals["train-dev"].average_precision)
            state.extra["train_s"] += seconds
            held_out = {split: {**e.summary(), "loss": e.losses["total"]} for split, e in evals.items()}
            state.history.append({"epoch": epoch, "train": train_losses, "seconds": seconds, **held_out})
            log_epoch(writer, epoch, train_losses, evals, seconds, len(data.train), opt.param_groups[0]["lr"])
            if improved:
                save_checkpoint(run.best, {**base, "model": net.state_dict(), "epoch": epoch})
            save_last(run, net, opt, state, _comparable(cfg), meta=base, extra={"epoch": epoch})
        metrics = _final(net, cfg, data, writer, state, run, device)
    finally:
        writer.close()
    metrics.update(load_s=load_s, parameters=params, train_frames=len(data.train),
                   held_out_frames={s: len(d) for s, d in data.held.items()}, checkpoint=str(run.best))
    metrics = plain(metrics)
    write_json(run.logdir / "metrics.json", metrics)
    return metrics


def _fit_epoch(net: CenterNetSmall, opt: torch.optim.Optimizer, data: _Frames, cfg: DetectorTrainConfig, device: str,
               epoch: int) -> tuple[dict[str, float], dict[str, Evaluation], float]:
    """One epoch at its decayed learning rate, then the held-out splits evaluated: the train
    losses, the evaluations and the epoch's training seconds."""
    for group in opt.param_groups:
        group["lr"] = cfg.lr * cfg.lr_decay ** (epoch - 1)
    start = time.perf_counter()
    train_losses = _epoch(net, opt, data.train, data.train_targets, cfg, device, epoch)
    seconds = time.perf_counter() - start
    evals = {split: evaluate(net, data.held[split], data.held_targets[split], cfg.size_weight, cfg.score_threshold,
                             device) for split in HELD_OUT}
    return train_losses, evals, seconds


def _epoch(net: CenterNetSmall, opt: torch.optim.Optimizer, data: FrameSet, targets: Targets, cfg: DetectorTrainConfig,
           device: str, epoch: int) -> dict[str, float]:
    """One pass over the train frames, shuffled and augmented; the mean losses."""
    net.train()
    # Seeded by the epoch, not carried over: a resumed run shuffles as an uninterrupted one.
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(data), generator=gen)
    sums: dict[str, float] = {}
    frames = torch.from_numpy(data.frames)
    steps = range(0, len(order), cfg.batch)
    for start in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not cfg.progress):
        idx = order[start:start + cfg.batch]
        x = augment(frames[idx], cfg.brightness, cfg.noise_sd, gen).to(device)
        parts = losses(net(x), targets.batch(idx).to(device), cfg.size_weight)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(idx)
    return {k: v / len(data) for k, v in sums.items()}


def _final(net: CenterNetSmall, cfg: DetectorTrainConfig, data: _Frames, writer, state: TrainState, run: RunDir,
           device: str) -> dict:
    """The best checkpoint on the held-out splits: PR curves, pictures, metrics.json's content."""
    best = load_detector_checkpoint(run.best)
    net.load_state_dict(best["model"])
    step = int(best["epoch"])
    splits = {}
    for split, frames in data.held.items():
        e = evaluate(net, frames, data.held_targets[split], cfg.size_weight, cfg.score_threshold, device)
        splits[split] = {**e.summary(), "by_scenario": e.by_scenario, "frames": len(frames),
                         "classical": classical_baseline(frames)}
        log_best(writer, split, e, frames, step, cfg.images, cfg.score_threshold)
    return {"best_epoch": step, "epochs_run": state.epoch, "score_threshold": cfg.score_threshold,
            "ap_min_score": AP_THRESHOLD, "splits": splits, "history": state.history,
            "train_s": state.extra["train_s"]}
