"""Training of the lane model (`steerbench train-lanes`): configuration, loop, TensorBoard.

Data (perception/lane_data.py): a `steerbench collect` dataset with lane labels, `train` and
`train-dev` episodes (and `dev`, measured when present). Losses and held-out quality:
perception/lane_eval.py. The scaffold train-e2e and train-detector share (checkpoints, resume,
early stopping, TensorBoard writer): perception/training.py; config.json and metrics.json are
written as train-detector writes them (perception/detector_results.py).

Training: Adam, learning rate decayed by `lr_decay` per epoch, shuffling and photometric
augmentation (the detector's: gain and sensor noise) from generators seeded by `seed` and the
epoch, so a resumed run trains as an uninterrupted one; the best checkpoint by the train-dev
loss, early stopping after `patience` epochs without improvement; `checkpoints/best.pt` and
`checkpoints/last.pt` written atomically after every epoch (re-running the command resumes
from `last.pt`; a finished run is not retrained; a run on other settings, or on other episodes
of a dataset that has grown, is refused).

The network is conditioned on the navigation command (`command_count`: the most commands any
training scenario has, stored in the checkpoint's network config). A run from before the
command input (its `last.pt` network has none, `commands` 0) resumes without it, as stored; a
stored count other than the scenarios' is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from steerbench.sim.composition import Composition
from steerbench.sim.episodes import by_split
from steerbench.sim.scenarios import get_scenario

from .detector_results import plain, write_json
from .detector_targets import augment
from .lane_data import LaneFrameSet, RolloutSteps, by_name, joined, rows_of, scenarios_of, select_lane_frames
from .lane_displace import LANE_DISPLACEMENT, MAX_ROTATE_DEG, LaneDisplacer, displaced_quality
from .lane_eval import AHEAD_M, losses, predict_arrays, quality_by_scenario, results_table
from .lane_model import CHECKPOINT_FORMAT, LaneModelError, LaneNet, LaneNetConfig, load_lane_checkpoint, parameter_count
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

__all__ = ["HELD_OUT", "LaneTrainConfig", "results_table", "train_lanes"]

HELD_OUT = ("train-dev", "dev")
TRUE, PREDICTED = (230, 30, 30), (30, 220, 30)  # RGB


@dataclass(frozen=True)
class LaneTrainConfig:
    """The settings of one `train-lanes` run; the CLI sets the common ones."""

    data: str  # dataset directory (steerbench collect, with lane labels)
    logdir: str  # run directory: TensorBoard (tb/), checkpoints/, config.json, metrics.json
    scenarios: tuple[str, ...] = ()  # empty: those the dataset has train episodes of
    frames: int | None = None  # train frames: None, all; else an equal share per scenario
    eval_frames: int = 600  # held-out frames per split, at most (train-dev, dev)
    eval_stride: int = 4  # held-out frames are every eval_stride-th step
    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    lr_decay: float = 0.9
    seed: int = 0  # seeds weights, shuffling and augmentation
    device: str = "auto"
    # epochs without a better train-dev loss before stopping: the 300-frame train-dev loss wobbles by
    # 5-10% between epochs, and at 3 one seed of the 20000-frame recipe stopped at epoch 16 of 30 with
    # its train loss still falling (docs/perception.md, the three seeds)
    patience: int = 10
    channels: tuple[int, int, int, int] = LaneNetConfig.channels
    hidden: int = LaneNetConfig.hidden
    brightness: float = 0.25  # augmentation: frames scaled by U(1 - b, 1 + b)
    noise_sd: float = 8.0  # augmentation: Gaussian pixel noise, sd drawn from U(0, noise_sd)
    images: int = 4  # held-out frames drawn with their lanes in TensorBoard, per split
    composition: Composition | None = None  # train frames in this sim.composition mix (None: the first)
    viewpoint: float = 0.0  # share of train frames seen from a displaced ego, labels moved (0: off; lane_displace)
    viewpoint_rotate: float = LANE_DISPLACEMENT.rotate_deg  # [deg] the displaced ego's largest turn
    branched: bool = True  # one head per navigation command (LaneNetConfig.branched; docs/perception.md says why)
    odometry: bool = False  # the dead-reckoned heading since the episode began as an input (LaneNetConfig.odometry)
    rollouts: bool = False  # the data's DAgger rollouts on top of `frames`, whole (steerbench.harness.lane_dagger)
    rollout_steps: str = ""  # with `rollouts`: a JSON file of the rollout steps to take instead (`read_rollout_steps`)
    # datasets whose every train frame of the run's scenarios is trained on too (other road layouts,
    # collected with --scenario-opt: docs/perception.md); held-out frames come from `data` only
    extra_data: tuple[str, ...] = ()
    # commands by name across scenarios: one head per distinct command (highway's "follow" and the
    # roundabout's first exit no longer share head 0; LaneNetConfig.names); False: by index
    named_commands: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if (self.frames is not None and self.frames < 1) or self.eval_frames < 1 or self.eval_stride < 1 \
                or self.epochs < 1 or self.batch < 1:
            raise LaneModelError("frames, eval_frames, eval_stride, epochs and batch must be positive")
        if not 0.0 <= self.viewpoint <= 1.0:
            raise LaneModelError(f"viewpoint is a share of the train frames, in [0, 1]; got {self.viewpoint}")
        if not 0.0 <= self.viewpoint_rotate <= MAX_ROTATE_DEG:
            raise LaneModelError(f"viewpoint_rotate is in [0, {MAX_ROTATE_DEG:g}] degrees; got {self.viewpoint_rotate}")
        for s in self.scenarios:
            get_scenario(s)


LEGACY_ROTATE_DEG = 10.0  # the turn of runs recorded before `viewpoint_rotate` was a setting


def read_rollout_steps(path: str) -> RolloutSteps:
    """A rollout-steps file: {"episodes": [{"scenario", "index", "steps": [...]}, ...]}, as
    steerbench.harness.lane_dagger writes it; LaneModelError when it cannot be read."""
    try:
        blob = json.loads(Path(path).read_text())
        return {(str(e["scenario"]), int(e["index"])): [int(t) for t in e["steps"]] for e in blob["episodes"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LaneModelError(f"cannot read the rollout steps {path}: {exc}") from None


def _comparable(cfg: LaneTrainConfig) -> str:
    """What must match to resume (not `epochs`, `patience`, `images`, `progress` or `device`)."""
    # runs from before these fields still resume
    unset = ("composition",) if cfg.composition is None else ()
    if not cfg.viewpoint:
        unset += ("viewpoint", "viewpoint_rotate")
    elif cfg.viewpoint_rotate == LEGACY_ROTATE_DEG:  # runs from before the field turned by this much
        unset += ("viewpoint_rotate",)
    unset += tuple(name for name in ("branched", "odometry", "rollouts", "rollout_steps", "extra_data",
                                     "named_commands") if not getattr(cfg, name))
    return comparable_config(cfg, ("epochs", "patience", "images", "progress", "device", *unset))


@dataclass(frozen=True)
class _Data:
    train: LaneFrameSet  # --data's train frames, then the extra datasets'
    held: dict[str, LaneFrameSet]
    scaling: float
    extra_episodes: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)  # per extra dataset


def _extra(cfg: LaneTrainConfig, scenarios: tuple[str, ...]) -> list[LaneFrameSet]:
    """Every train frame of the run's scenarios in each extra dataset; LaneModelError for one without any."""
    out = []
    for root in cfg.extra_data:
        mine = tuple(s for s in scenarios_of(Path(root)) if s in scenarios)
        if not mine:
            raise LaneModelError(f"extra lane data {root} holds no train episodes of {', '.join(scenarios)}")
        out.append(select_lane_frames(Path(root), "train", mine, None))
    return out


def _load(cfg: LaneTrainConfig) -> tuple[tuple[str, ...], _Data]:
    scenarios = cfg.scenarios or scenarios_of(Path(cfg.data))
    if not scenarios:
        raise LaneModelError(f"{cfg.data} holds no train episodes; collect them with steerbench collect")
    train = select_lane_frames(Path(cfg.data), "train", scenarios, cfg.frames,
                               composition=cfg.composition, rollouts=cfg.rollouts,
                               rollout_steps=read_rollout_steps(cfg.rollout_steps) if cfg.rollout_steps else None)
    extra = _extra(cfg, scenarios)
    held = {}
    for split in HELD_OUT:
        # early stopping needs train-dev (an error without it); dev is measured when it is there
        if split == "train-dev" or any(r["scenario"] in scenarios for r in rows_of(Path(cfg.data), split)):
            held[split] = select_lane_frames(Path(cfg.data), split, scenarios, cfg.eval_frames, cfg.eval_stride,
                                             strict=False)
    data = _Data(joined(train, extra), held, train.geometries[0].scaling,
                 {root: part.episodes for root, part in zip(cfg.extra_data, extra)})
    if cfg.named_commands:
        names = command_names(scenarios)
        data = dataclasses.replace(data, train=by_name(data.train, names),
                                   held={split: by_name(d, names) for split, d in data.held.items()})
    return scenarios, data


def command_count(scenarios: tuple[str, ...]) -> int:
    """The navigation commands the network is conditioned on: the most any of `scenarios` has."""
    return max(len(get_scenario(s).commands) for s in scenarios)


def command_names(scenarios: tuple[str, ...]) -> tuple[str, ...]:
    """Every distinct command name of `scenarios`, in their order: a named-commands network's commands."""
    return tuple(dict.fromkeys(name for s in scenarios for name in get_scenario(s).commands))


def _commands(run: RunDir, scenarios: tuple[str, ...], named: bool = False) -> int:
    """`command_count(scenarios)` (with `named`, the distinct names'), or for a resume what
    `last.pt`'s network has: 0 (a run from before the command input, or one without it) is kept;
    another count is refused."""
    wanted = len(command_names(scenarios)) if named else command_count(scenarios)
    if not run.last.exists():
        return wanted
    config = load_lane_checkpoint(run.last).get("config")
    stored = int(config.get("commands", 0)) if isinstance(config, dict) else wanted
    if stored not in (0, wanted):
        raise LaneModelError(f"{run.logdir} holds a run conditioned on {stored} navigation commands, its scenarios "
                             f"have {wanted}; use another --logdir")
    return stored


def _meta(net_cfg: LaneNetConfig, scenarios: tuple[str, ...], data: _Data) -> dict:
    """What every checkpoint of the run holds besides the weights."""
    frame = {"height": int(data.train.frames.shape[1]), "width": int(data.train.frames.shape[2]),
             "scaling": data.scaling}
    episodes = {"trained": by_split(("train", i) for i in data.train.episodes),
                "selected": by_split((s, i) for s, d in data.held.items() for i in d.episodes)}
    if data.extra_episodes:  # absent without extra data: earlier runs resume
        episodes["extra"] = {root: by_split(("train", i) for i in ids) for root, ids in data.extra_episodes.items()}
    return {"kind": "lanes", "format": CHECKPOINT_FORMAT, "config": net_cfg.as_dict(), "frame": frame,
            "scenarios": list(scenarios), "episodes": episodes}


def train_lanes(cfg: LaneTrainConfig) -> dict:
    """Train (or resume the run in `cfg.logdir`); return metrics.json's content."""
    run = RunDir(Path(cfg.logdir))
    t0 = time.perf_counter()
    scenarios, data = _load(cfg)
    try:
        run.create()
    except OSError as exc:
        raise LaneModelError(f"cannot create {run.checkpoints}: {exc.strerror or exc}") from None
    load_s = time.perf_counter() - t0
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    net_cfg = LaneNetConfig(s=tuple(float(v) for v in data.train.s), channels=cfg.channels, hidden=cfg.hidden,
                            commands=_commands(run, scenarios, cfg.named_commands), branched=cfg.branched,
                            odometry=cfg.odometry, names=command_names(scenarios) if cfg.named_commands else ())
    net = LaneNet(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    base = _meta(net_cfg, scenarios, data)
    frame = base["frame"]

    def same_run(blob: dict) -> bool:  # the same settings, and the same episodes (a dataset may grow)
        return (same_config(blob.get("train_config"), _comparable(cfg))
                and json.dumps(blob.get("episodes"), default=list) == json.dumps(base["episodes"], default=list))

    state = resume(run, load_lane_checkpoint, same_run, LaneModelError, net, opt, current=_comparable(cfg))
    if state is None:
        state = TrainState(best=math.inf, best_epoch=0, extra={"train_s": 0.0})
    params = parameter_count(net)
    write_json(run.logdir / "config.json", {"train": dataclasses.asdict(cfg), "scenarios": list(scenarios),
                                            "net": net_cfg.as_dict(), "frame": frame, "parameters": params,
                                            "torch": torch.__version__})
    writer = open_writer(run.logdir, {**dataclasses.asdict(cfg), "parameters": params})
    stopping = EarlyStopping(cfg.epochs, cfg.patience, higher_is_better=False)
    try:
        while stopping.running(state):
            epoch = state.epoch + 1
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.lr_decay ** (epoch - 1)
            start = time.perf_counter()
            train_losses = _epoch(net, opt, data, cfg, device, epoch)
            seconds = time.perf_counter() - start
            held = {split: _held_losses(net, d, data.scaling, device) for split, d in data.held.items()}
            improved = stopping.record(state, epoch, held["train-dev"]["total"])
            state.extra["train_s"] += seconds
            state.history.append({"epoch": epoch, "train": train_losses, "seconds": seconds,
                                  **{split: {"loss": v} for split, v in held.items()}})
            _log_epoch(writer, epoch, train_losses, held, seconds, len(data.train), opt.param_groups[0]["lr"])
            if improved:
                save_checkpoint(run.best, {**base, "model": net.state_dict(), "epoch": epoch})
            save_last(run, net, opt, state, _comparable(cfg), meta=base, extra={"epoch": epoch})
        metrics = _final(net, cfg, data, writer, state, run, device)
    finally:
        writer.close()
    metrics.update(load_s=load_s, parameters=params, scenarios=list(scenarios), train_frames=len(data.train),
                   held_out_frames={s: len(d) for s, d in data.held.items()}, checkpoint=str(run.best))
    metrics = plain(metrics)
    write_json(run.logdir / "metrics.json", metrics)
    return metrics


def _tensors(data: LaneFrameSet, idx: torch.Tensor | slice, device: str) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a[idx])).to(device)
                 for a in (data.ego_px, data.centres, data.valid, data.width, data.command, data.turned))


def _epoch(net: LaneNet, opt: torch.optim.Optimizer, data: _Data, cfg: LaneTrainConfig, device: str,
           epoch: int) -> dict[str, float]:
    """One pass over the train frames, shuffled and augmented; the mean losses."""
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # by the epoch: a resume shuffles the same
    train = data.train
    order = torch.randperm(len(train), generator=gen)
    frames = torch.from_numpy(train.frames)
    s = torch.as_tensor(train.s, device=device)
    displace = (LaneDisplacer.for_frames(train.geometries, train.s, cfg.viewpoint,
                                         dataclasses.replace(LANE_DISPLACEMENT, rotate_deg=cfg.viewpoint_rotate))
                if cfg.viewpoint else None)
    sums: dict[str, float] = {}
    steps = range(0, len(order), cfg.batch)
    for start in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not cfg.progress):
        idx = order[start:start + cfg.batch]
        ego, target, valid, width, command, turned = _tensors(train, idx.numpy(), device)
        x = frames[idx]
        if displace is not None:  # before the photometric draw: the fill grey takes its gain too
            x, target = displace(x, target.cpu(), train.scenario[idx.numpy()], gen)
            target = target.to(device)
        x = augment(x, cfg.brightness, cfg.noise_sd, gen).to(device)
        parts = losses(net(x, ego, data.scaling, command, turned), s, target, valid, width)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(idx)
    return {k: v / len(train) for k, v in sums.items()}


@torch.no_grad()
def _held_losses(net: LaneNet, data: LaneFrameSet, scaling: float, device: str, batch: int = 256) -> dict[str, float]:
    """The mean losses on held-out frames (eval mode, no augmentation)."""
    net.eval()
    s = torch.as_tensor(data.s, device=device)
    sums: dict[str, float] = {}
    for i in range(0, len(data), batch):
        sl = slice(i, i + batch)
        x = torch.from_numpy(data.frames[sl]).to(device)
        ego, target, valid, width, command, turned = _tensors(data, sl, device)
        for k, v in losses(net(x, ego, scaling, command, turned), s, target, valid, width).items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(x)
    return {k: v / len(data) for k, v in sums.items()}


def evaluate_lanes(net: LaneNet, data: LaneFrameSet, scaling: float, device: str = "cpu") -> tuple[dict, dict]:
    """Held-out quality (`lane_eval.quality_by_scenario`) and the raw predictions."""
    pred = predict_arrays(net, data.frames, data.ego_px, scaling, device, data.command, data.turned)
    q = quality_by_scenario(pred["centres"], pred["valid"] > 0, data.centres, data.valid, data.s, data.scenario,
                            data.scenarios)
    return q, pred


def _final(net: LaneNet, cfg: LaneTrainConfig, data: _Data, writer, state: TrainState, run: RunDir,
           device: str) -> dict:
    """The best checkpoint on the held-out splits: quality, pictures, metrics.json's content."""
    best = load_lane_checkpoint(run.best)
    net.load_state_dict(best["model"])
    step = int(best["epoch"])
    splits = {}
    for split, frames in data.held.items():
        q, pred = evaluate_lanes(net, frames, data.scaling, device)
        q["displaced"] = displaced_quality(net, frames, data.scaling, device)
        splits[split] = q
        writer.add_scalar(f"lanes/{split}/best_displaced_lateral_10m_median", q["displaced"]["lateral_10m"]["median"],
                          step)
        for d in AHEAD_M:
            writer.add_scalar(f"lanes/{split}/best_lateral_{d:g}m_median", q[f"lateral_{d:g}m"]["median"], step)
        writer.add_scalar(f"lanes/{split}/best_heading_deg_median", q["heading_deg"]["median"], step)
        writer.add_scalar(f"lanes/{split}/best_neighbour_valid_acc", q["neighbour_valid_acc"], step)
        picks = np.linspace(0, len(frames) - 1, min(cfg.images, len(frames))).astype(int)
        pics = [draw(frames.frames[i], frames.centres[i], frames.valid[i], pred["centres"][i],
                     pred["valid"][i] > 0, pred["exists"][i] > 0, frames.geometries[frames.scenario[i]])
                for i in picks]
        gap = np.full((4, pics[0].shape[1], 3), 255, np.uint8)
        strip = np.concatenate([x for p in pics for x in (p, gap)][:-1], axis=0)
        writer.add_image(f"lanes/{split}/lanes", strip, global_step=step, dataformats="HWC")
    return {"best_epoch": step, "epochs_run": state.epoch, "splits": splits, "history": state.history,
            "train_s": state.extra["train_s"]}


def draw(frame: np.ndarray, true_c: np.ndarray, true_valid: np.ndarray, pred_c: np.ndarray, pred_valid: np.ndarray,
         pred_exists: np.ndarray, geometry, scale: int = 4) -> np.ndarray:
    """RGB picture, `scale` x upscaled: the labels' lane centres red, the predicted ones green
    (valid lanes, existing samples)."""
    img = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for lane in range(3):
        for pts, ok, colour in ((true_c[lane], true_valid[lane], TRUE),
                                (pred_c[lane][pred_exists[lane]], pred_valid[lane], PREDICTED)):
            pts = pts[np.isfinite(pts[:, 0])] if ok else pts[:0]
            if len(pts) >= 2:
                px = np.round(geometry.to_pixels(pts) * scale).astype(np.int32)
                cv2.polylines(img, [px], False, colour, 1)
    return img


def _log_epoch(writer, epoch: int, train_losses: dict, held: dict[str, dict], seconds: float, n: int,
               lr: float) -> None:
    for k, v in train_losses.items():
        writer.add_scalar(f"losses/train/{k}", v, epoch)
    for split, parts in held.items():
        for k, v in parts.items():
            writer.add_scalar(f"losses/{split}/{k}", v, epoch)
    writer.add_scalar("train/lr", lr, epoch)
    writer.add_scalar("time/epoch_s", seconds, epoch)
    writer.add_scalar("time/frames_per_s", n / max(seconds, 1e-9), epoch)
