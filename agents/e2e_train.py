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
from torch.utils.data import Subset

from steerbench.perception.detector_data import composed_steps, shares
from steerbench.perception.learned import DetectorError
from steerbench.perception.training import (
    EarlyStopping,
    RunDir,
    TrainState,
    comparable_config,
    open_writer,
    read_checkpoint,
    resolve_device,
    resume,
    save_checkpoint,
    save_last,
    stored_config,
)
from steerbench.sim.composition import Composition, CompositionError
from steerbench.sim.episodes import DAGGER, by_split
from steerbench.sim.storage import atomic_write_json

from . import e2e_loop
from .e2e_data import ImitationDataset
from .e2e_displace import Displacer
from .e2e_saliency import log_inputs_and_saliency
from .e2e_schedule import StepPlan, plan
from .e2e_viewpoint import Viewpoint
from .errors import TrainingError
from .pilotnet import NetConfig, PilotNet, parameter_count


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one `train-e2e` run; the CLI sets the common ones."""

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
    frames: int = 0  # train on `frames` train frames only (0: all); which: `first_frames` or `composition`
    scenarios: tuple[str, ...] = ()  # with `frames`: whose frames, in this order (empty: the dataset's)
    composition: Composition | None = None  # with `frames`: this sim.composition mix (None: the first frames)
    steps: int = 0  # a step budget: at most this many updates instead of `epochs` (agents/e2e_schedule.py)
    eval_every: int = 0  # with `steps`: updates between train-dev measurements (0: one pass, 50-1000)
    patience_steps: int = 0  # with `steps`: updates without a better train-dev loss before stopping (0: auto)
    schedule: str = "constant"  # with `steps`: learning-rate schedule, constant or cosine (warm-up, decay)
    viewpoint: float = 0.0  # share of samples seen from a displaced ego, label corrected (0: off; e2e_viewpoint)
    viewpoint_recover_s: float = 2.0  # its label's horizon: back on the recorded path this far ahead [s]
    samples: str = ""  # a sample list (JSON, ImitationDataset.selected; DAgger's replay buffer); "": all samples
    # torch's channels-last memory layout for weights and frames: 1.2-1.4x the CPU's samples/s
    # (bench/train_layout.py); its sums round otherwise, so it trains another model than the default
    channels_last: bool = False
    progress: bool = True


def _splits(cfg: TrainConfig, stack: int) -> tuple[ImitationDataset, Subset, Subset, Subset]:
    """All samples, then train, train-dev (early stopping) and dev (test distribution; may be empty)."""
    try:
        full = ImitationDataset(Path(cfg.data), None, stack=stack, outputs=cfg.outputs)
    except Exception as exc:  # a dataset error of any kind ends here with one line
        raise TrainingError(f"cannot read dataset {cfg.data}: {exc}") from None
    split_of = np.array([full.episodes[e].split for e, _ in full.index])
    train = np.flatnonzero(split_of == "train")
    if cfg.samples:  # a sample list (DAgger's replay buffer): only the train samples it names
        train = train[full.selected(Path(cfg.samples))[train]]
    dev = np.flatnonzero(split_of == "train-dev")
    if not len(train):
        raise TrainingError(f"{cfg.data} has no train-split episodes")
    if cfg.frames:
        train = (first_frames(full, train, cfg.frames, cfg.scenarios) if cfg.composition is None
                 else composed_frames(full, train, cfg.frames, cfg.scenarios, cfg.composition))
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
            raise TrainingError(f"{full.root} holds {len(mine)} {name} train frames, "
                                f"{share} needed for --frames {frames}")
        chosen.append(mine[:share])
    return np.concatenate(chosen)


def composed_frames(full: ImitationDataset, candidates: np.ndarray, frames: int, scenarios: Sequence[str],
                    rule: Composition = Composition()) -> np.ndarray:
    """The `frames` expert frames of sim.composition's mix (equal shares per scenario, a fixed
    DART share, spread over a pool of episodes), the very frames `perception.detector_data.
    composed_steps` gives the learned detector and lane model, plus every DAgger rollout among
    `candidates`: a DAgger student at N trains on the same N expert frames as behaviour cloning."""
    episode = full.index[candidates, 0]
    rollout = np.array([DAGGER.holds("train", ep.index) for ep in full.episodes], dtype=bool)[episode]
    names = list(scenarios) or list(dict.fromkeys(full.episodes[e].scenario for e in np.unique(episode[~rollout])))
    try:
        chosen = composed_steps(full.root, "train", names, frames, 1, rule)
    except (CompositionError, DetectorError) as exc:
        raise TrainingError(f"{full.root}: {exc}") from None
    position = {(full.episodes[e].scenario, full.episodes[e].index, int(t)): i
                for i, (e, t) in zip(candidates, full.index[candidates])}
    missing = next((k for k in chosen if (*k, chosen[k][0]) not in position), None)
    if missing is not None:
        raise TrainingError(f"the mix for {frames} frames takes {'/'.join(map(str, missing))}, which this run "
                            "does not train on")
    picked = [position[(scenario, index, t)] for (scenario, index), steps in chosen.items() for t in steps]
    return np.concatenate([np.asarray(picked, dtype=np.int64), candidates[rollout]])


def _episodes_of(full: ImitationDataset, subset: Subset) -> dict[str, list[list[int]]]:
    """The (split, index) runs of the episodes a subset's samples come from (the checkpoint's record)."""
    ids = np.unique(full.index[np.asarray(subset.indices, dtype=int), 0]) if len(subset) else []
    return by_split((full.episodes[e].split, full.episodes[e].index) for e in ids)


def load_checkpoint(path: Path) -> dict:
    """A train-e2e checkpoint (best.pt or last.pt), read with `weights_only=True`; TrainingError otherwise."""
    return read_checkpoint(path, TrainingError, f"no checkpoint at {path}")


def load_network(path: Path) -> tuple[PilotNet, NetConfig]:
    """The network of a train-e2e best.pt, its weights loaded, in eval mode on the CPU."""
    blob = load_checkpoint(Path(path))
    config = NetConfig(**blob["config"])
    net = PilotNet(config)
    net.load_state_dict(blob["model"])
    return net.eval(), config


def train(cfg: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) the run in cfg.logdir; `on_epoch` gets every epoch's history record, the
    ones a resumed run had already done first (a sweep's scheduler sees the whole curve).
    Returns the run's record (`TrainState.as_dict`: epoch, best train-dev L1, stale, history)."""
    run = RunDir(Path(cfg.logdir))
    run.create()
    full, train_set, dev_set, test_dist_set = _splits(cfg, stack=4)
    seen = {"trained": _episodes_of(full, train_set), "selected": _episodes_of(full, dev_set)}
    device = resolve_device()
    net = new_network(full, cfg, device)
    net_cfg = net.config
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    state = resume(run, load_checkpoint, lambda blob: _same_run(blob["train_config"], cfg), TrainingError, net, opt,
                   current=_comparable(cfg))
    if state is None:
        state = TrainState(best=float("inf"))
        if cfg.init:
            _warm_start(net, net_cfg, Path(cfg.init))
    steps, displace = _step_plan(cfg, len(train_set)), _displacer(cfg, full)
    settings = {"train": dataclasses.asdict(cfg), "net": net_cfg.as_dict(), "parameters": parameter_count(net),
                "train_samples": len(train_set)}
    if steps is not None:
        settings["step_plan"] = dataclasses.asdict(steps)
    atomic_write_json(run.logdir / "config.json", settings, indent=2)
    writer = open_writer(run.logdir, {**dataclasses.asdict(cfg), "parameters": parameter_count(net)})
    for record in state.history if on_epoch else ():
        on_epoch(record)
    stopping = (EarlyStopping(steps.periods, steps.patience_periods, higher_is_better=False) if steps
                else EarlyStopping(cfg.epochs, cfg.patience, higher_is_better=False))
    try:
        while stopping.running(state):
            epoch = state.epoch + 1
            # Shuffling and augmentation draw from one generator per epoch (per period with a step
            # budget): a resumed run draws what an uninterrupted one would have.
            gen = torch.Generator().manual_seed(cfg.seed + epoch - 1)
            record = _train_and_log(net, opt, (train_set, dev_set, test_dist_set), _Loop(cfg, device, writer, steps,
                                    displace), gen, epoch)
            improved = stopping.record(state, epoch, record["train_dev_l1"])
            state.history.append(record)
            if improved:
                save_checkpoint(run.best, {"model": net.state_dict(), "config": net_cfg.as_dict(), "epoch": epoch,
                                           "episodes": seen})
            save_last(run, net, opt, state, _comparable(cfg), extra={"config": net_cfg.as_dict()})
            if on_epoch:  # after the checkpoint: a sweep may stop the trial inside this call
                on_epoch(state.history[-1])
        log_inputs_and_saliency(writer, net, dev_set, device, state.epoch)
    finally:
        writer.close()
    return state.as_dict()


def new_network(full: ImitationDataset, cfg: TrainConfig, device: str) -> PilotNet:
    """The network `train` starts from: seeded by `cfg.seed`, shaped for `full`'s frames, in
    `cfg`'s memory layout (the benchmarks build theirs here too, so they time what trains)."""
    torch.manual_seed(cfg.seed)
    net = PilotNet(_net_config(full, cfg)).to(device)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def _net_config(full: ImitationDataset, cfg: TrainConfig) -> NetConfig:
    """The network for this dataset's frames (grey or RGB, their size) and `cfg`'s size and outputs."""
    sample = full.episodes[0].frames
    return NetConfig(size=cfg.size, stack=4, channels=1 if sample.ndim == 3 else 3,
                     height=sample.shape[1], width=sample.shape[2], outputs=cfg.outputs)


def _step_plan(cfg: TrainConfig, train_samples: int) -> StepPlan | None:
    """The run's step budget, or None when it trains by epochs."""
    if not cfg.steps:
        return None
    try:
        return plan(cfg.steps, cfg.eval_every, cfg.patience_steps, cfg.lr, cfg.schedule, train_samples, cfg.batch)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None


def _displacer(cfg: TrainConfig, full: ImitationDataset) -> Displacer | None:
    """Viewpoint augmentation for this dataset's frames, or None when it is off."""
    if not cfg.viewpoint:
        return None
    try:
        view = Viewpoint(prob=cfg.viewpoint, recover_s=cfg.viewpoint_recover_s)
    except ValueError as exc:
        raise TrainingError(f"viewpoint augmentation: {exc}") from None
    scenario = [full.episodes[e].scenario for e in full.index[:, 0]]
    return Displacer.for_dataset(full.root, [ep.scenario for ep in full.episodes], scenario, view)


@dataclass(frozen=True)
class _Loop:
    """What every epoch of one run shares."""

    cfg: TrainConfig
    device: str
    writer: object  # the TensorBoard SummaryWriter
    steps: StepPlan | None  # the step budget, or None: by epochs
    displace: Displacer | None  # viewpoint augmentation, or None


def _train_and_log(net: PilotNet, opt: torch.optim.Optimizer, sets: tuple[Subset, Subset, Subset], loop: _Loop,
                   gen: torch.Generator, epoch: int) -> dict:
    """One epoch (with a step budget: one period) on the train set, then both held-out sets
    evaluated and the curves logged; returns the epoch's history record."""
    (train_set, dev_set, test_dist_set), cfg, steps = sets, loop.cfg, loop.steps
    start = time.perf_counter()
    if steps is None:
        train_loss, rate = e2e_loop.epoch(net, opt, train_set, cfg, loop.device, gen, epoch, loop.displace)
        x, extra, lr = epoch, {}, cfg.lr
    else:
        train_loss, rate, lr = e2e_loop.period(net, opt, train_set, cfg, loop.device, gen, steps, epoch,
                                               loop.displace)
        x = (epoch - 1) * steps.interval + steps.steps_in(epoch)  # TensorBoard's step: updates done
        extra = {"step": x, "lr": lr}
    dev_loss, dev_steer = e2e_loop.evaluate(net, dev_set, loop.device)
    test_dist_loss, test_dist_steer = e2e_loop.evaluate(net, test_dist_set, loop.device)
    for tag, value in (("losses/train_l1", train_loss), ("losses/train_dev_l1", dev_loss),
                       ("losses/dev_l1", test_dist_loss), ("metrics/train_dev_steering_mae", dev_steer),
                       ("metrics/dev_steering_mae", test_dist_steer), ("charts/learning_rate", lr),
                       ("time/samples_per_s", rate)):
        if np.isfinite(value):
            loop.writer.add_scalar(tag, value, x)
    record = {"epoch": epoch, "train_l1": train_loss, "train_dev_l1": dev_loss,
              "dev_l1": test_dist_loss if np.isfinite(test_dist_loss) else None}
    if steps is not None:
        record.update(extra, seconds=round(time.perf_counter() - start, 2))
    return record


def _warm_start(net: PilotNet, net_cfg: NetConfig, path: Path) -> None:
    blob = load_checkpoint(path)
    if not isinstance(blob, dict) or blob.get("config") != net_cfg.as_dict() or "model" not in blob:
        raise TrainingError(f"{path} is not a best.pt of a network of this size and input; it cannot start this one")
    net.load_state_dict(blob["model"])


def _comparable(cfg: TrainConfig) -> str:
    """What must match to resume (not `epochs` or the patience: a run may be extended; a step
    budget must match, since the schedule depends on it)."""
    return comparable_config(cfg, ("epochs", "progress", "patience", "patience_steps"))


def _same_run(stored: str, cfg: TrainConfig) -> bool:
    """A field at its default matches a stored configuration that lacks it: runs made before the
    field existed stay resumable."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}

    def norm(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in defaults or json.loads(json.dumps(defaults[k])) != v}

    old, new = stored_config(stored), stored_config(_comparable(cfg))
    return old is not None and norm(old) == norm(new)
