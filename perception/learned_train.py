"""Training of the learned detector (`steerbench train-detector`): targets, losses, loop.

Data (perception/detector_data.py): a `steerbench collect` dataset (docs/dataset.md) with
`train`, `train-dev` and `dev` episodes. Frames are taken in one documented order
(`select_frames`): the scenarios in the order given, each contributing an equal share of the
budget (the first ones one frame more while the budget does not divide), within a scenario its
episodes by index and their steps in order; held-out splits take every `eval_stride`-th step,
so they span more episodes.

Targets (CenterNet): a Gaussian (sd `sigma_px`) on the output grid around each vehicle's drawn
centre (the mean of its box corners as rendered), 1 at the peak cell; at that cell the offset
to the vehicle's true centre projected to pixels, its length and width [m] and
(sin 2θ, cos 2θ). Vehicles that `perception.metrics` does not expect (centre off the frame or
within 2 px of its edge) and the ego's own place are left out of the heatmap loss (neither
positive nor negative): the ego is drawn like any car, and the decoder drops both places.

Losses: the penalty-reduced focal loss of CenterNet (alpha 2, beta 4) on the heatmap, normalised
by the number of vehicles; L1 on offset (cells, weight 1), log size ratio (weight `size_weight`)
and heading (weight 1) at the vehicles' peak cells only.

Augmentation (photometric only, so the labels stay valid; per frame): a gain drawn from
U(1 - brightness, 1 + brightness) and Gaussian pixel noise whose sd is drawn from U(0, noise_sd).

Training: Adam, learning rate decayed by `lr_decay` per epoch, shuffling and augmentation from
generators seeded by `seed` and the epoch (deterministic on the CPU), best checkpoint by
average precision on the train-dev frames with early stopping after `patience` epochs without
improvement, `checkpoints/best.pt` and `checkpoints/last.pt` written atomically after every
epoch (a re-run of the same command resumes from `last.pt`), TensorBoard under `LOGDIR/tb` and
`LOGDIR/metrics.json` (see docs/perception.md for the tags).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from steerbench.sim.episodes import by_split
from steerbench.sim.scenarios import get_scenario
from steerbench.sim.storage import atomic_write, atomic_write_json

from .classical import ClassicalDetector
from .detector_data import Boxes, Collector, FrameSet, ensure_frames, select_frames
from .learned import (CHECKPOINT_FORMAT, REFERENCE_SIZE_M, CenterNetSmall, DecodeOptions, DetectorError,
                      DetectorNetConfig, box_corners, decode, load_detector_checkpoint, parameter_count)
from .metrics import DetectionQuality, FrameMatch, match_frame, quality
from .types import Detection, Detector, FrameGeometry

HELD_OUT = ("train-dev", "dev")  # held-out frames of the train distribution and of the test one
EGO_IGNORE_PX = 6.0  # [px] heatmap cells this close to the ego's pixel are left out of the loss
IGNORE_LEVEL = 0.05  # cells where a not-expected vehicle's Gaussian exceeds this are left out
AP_THRESHOLD = 0.05  # detections down to this score enter the PR curve and average precision


@dataclass(frozen=True)
class DetectorTrainConfig:
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


# -- data ------------------------------------------------------------------------------------
def prepare_data(cfg: DetectorTrainConfig, collect_episodes: Collector, policy_hz: int = 5) -> None:
    """Collect what `cfg` needs into `cfg.data`: its train frames and its held-out frames of
    train-dev and dev (`collect_episodes` as in `ensure_frames`; the CLI passes steerbench collect)."""
    ensure_frames(Path(cfg.data), "train", cfg.scenarios, cfg.frames, 1, collect_episodes, policy_hz)
    for split in HELD_OUT:
        ensure_frames(Path(cfg.data), split, cfg.scenarios, cfg.eval_frames, cfg.eval_stride, collect_episodes,
                      policy_hz)


# -- targets and losses ---------------------------------------------------------------------
@dataclass(frozen=True)
class Targets:
    heat: torch.Tensor  # (N, h, w) float: Gaussian targets, 1 at the peak cells
    weight: torch.Tensor  # (N, h, w) float: 0 where the heatmap loss is left out
    index: torch.Tensor  # (N, K) long: flattened peak cell of each vehicle
    mask: torch.Tensor  # (N, K) float: 1 for a real vehicle
    regress: torch.Tensor  # (N, K, 6) float: offset (2, cells), log(size / reference) (2), sin 2θ, cos 2θ

    def batch(self, idx: torch.Tensor) -> "Targets":
        return Targets(*(t[idx] for t in (self.heat, self.weight, self.index, self.mask, self.regress)))


def encode(data: FrameSet, stride: int, sigma_px: float) -> Targets:
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


def augment(frames: torch.Tensor, cfg: DetectorTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Gain and sensor noise per frame, photometric only (module docstring)."""
    x = frames.float()
    n = len(x)
    gain = 1.0 + (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * cfg.brightness
    sd = torch.rand(n, 1, 1, generator=gen) * cfg.noise_sd
    x = x * gain + torch.randn(x.shape, generator=gen) * sd
    return x.clamp(0, 255).round().to(torch.uint8)


# -- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    detections: tuple[tuple[Detection, ...], ...]  # per frame, down to AP_THRESHOLD
    losses: dict[str, float]
    at_threshold: DetectionQuality  # precision, recall and error at the operating threshold
    average_precision: float  # over all detections down to AP_THRESHOLD
    by_scenario: dict[str, dict]
    pr_scores: np.ndarray  # detection scores, then 0 for each missed vehicle
    pr_labels: np.ndarray  # True: a matched detection or a missed vehicle

    def summary(self) -> dict:
        q = self.at_threshold
        return {"precision": q.precision, "recall": q.recall, "ap": self.average_precision,
                "loc_error_m": q.mean_error_m, "n_true": q.n_true, "n_detected": q.n_detected}


def truth_m(b: Boxes) -> np.ndarray:
    return b.true_m[b.expected]


def score(dets_per_frame: Sequence[Sequence[Detection]], data: FrameSet,
          threshold: float) -> tuple[list[FrameMatch], list[FrameMatch]]:
    """Matches (perception.metrics) of all detections and of those at `threshold` or above."""
    every, kept = [], []
    for dets, b in zip(dets_per_frame, data.boxes):
        every.append(match_frame(dets, truth_m(b)))
        kept.append(match_frame([d for d in dets if d.score >= threshold], truth_m(b)))
    return every, kept


def evaluate_detector(detector: Detector, data: FrameSet, threshold: float = 0.0) -> list[FrameMatch]:
    """Matches (perception.metrics) of any `Detector` on every frame of `data`, detections below
    `threshold` left out. The detector's geometry must suit the frames: use one per scenario."""
    return [match_frame([d for d in detector.detect(f) if d.score >= threshold], truth_m(b))
            for f, b in zip(data.frames, data.boxes)]


def classical_baseline(data: FrameSet) -> dict:
    """The classical detector on the same frames (its own score has no threshold to tune)."""
    out = {}
    for k, name in enumerate(data.scenarios):
        sel = np.flatnonzero(data.scenario == k)
        part = dataclasses.replace(data, frames=data.frames[sel], boxes=tuple(data.boxes[i] for i in sel),
                                   scenario=data.scenario[sel])
        out[name] = evaluate_detector(ClassicalDetector(data.geometries[k]), part)
    q = quality([m for ms in out.values() for m in ms])
    summary = {"precision": q.precision, "recall": q.recall, "ap": q.average_precision, "loc_error_m": q.mean_error_m,
               "n_true": q.n_true, "n_detected": q.n_detected, "frames": len(data)}
    summary["by_scenario"] = {}
    for name, ms in out.items():
        qs = quality(ms)
        summary["by_scenario"][name] = {"precision": qs.precision, "recall": qs.recall, "ap": qs.average_precision,
                                        "loc_error_m": qs.mean_error_m, "n_true": qs.n_true,
                                        "n_detected": qs.n_detected, "frames": len(ms)}
    return summary


@torch.no_grad()
def evaluate(net: CenterNetSmall, data: FrameSet, targets: Targets, cfg: DetectorTrainConfig,
             device: str) -> Evaluation:
    net.eval()
    dets: list[list[Detection]] = [[] for _ in range(len(data))]
    totals: dict[str, float] = {}
    options = DecodeOptions(score_threshold=AP_THRESHOLD)
    for start in range(0, len(data), 256):
        idx = torch.arange(start, min(start + 256, len(data)))
        out = net(torch.from_numpy(data.frames[idx.numpy()]).to(device))
        for k, v in losses(out, _to(targets.batch(idx), device), cfg.size_weight).items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(idx)
        scenario = data.scenario[idx.numpy()]
        for s in np.unique(scenario):  # one geometry per decode call
            sel = np.flatnonzero(scenario == s)
            part = {k: v[torch.from_numpy(sel).to(v.device)] for k, v in out.items()}
            for j, d in zip(sel, decode(part, data.geometries[s], net.config.stride, options)):
                dets[start + j] = d
    every, kept = score(dets, data, cfg.score_threshold)
    q_all, q_kept = quality(every), quality(kept)
    by_scenario = {}
    for k, name in enumerate(data.scenarios):
        sel = np.flatnonzero(data.scenario == k)
        qa, qk = quality([every[i] for i in sel]), quality([kept[i] for i in sel])
        by_scenario[name] = {"precision": qk.precision, "recall": qk.recall, "ap": qa.average_precision,
                             "loc_error_m": qk.mean_error_m, "n_true": qk.n_true, "n_detected": qk.n_detected,
                             "frames": int(len(sel))}
    scores = np.concatenate([m.scores for m in every] + [np.zeros(0)])
    hits = np.concatenate([m.matched for m in every] + [np.zeros(0, bool)])
    missed = q_all.n_true - int(hits.sum())
    return Evaluation(
        detections=tuple(tuple(d) for d in dets), losses={k: v / len(data) for k, v in totals.items()},
        at_threshold=q_kept, average_precision=q_all.average_precision, by_scenario=by_scenario,
        pr_scores=np.concatenate([scores, np.zeros(missed)]), pr_labels=np.concatenate([hits, np.ones(missed, bool)]),
    )


def _to(t: Targets, device: str) -> Targets:
    return Targets(*(x.to(device) for x in (t.heat, t.weight, t.index, t.mask, t.regress)))


def draw(frame: np.ndarray, boxes: Boxes, dets: Sequence[Detection], geometry: FrameGeometry, threshold: float,
         scale: int = 4) -> np.ndarray:
    """RGB picture, `scale` x upscaled: true boxes red (at the true position), detections at or
    above `threshold` green with their score."""
    img = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    s = geometry.scaling
    for tpx, size, theta, exp in zip(boxes.true_px, boxes.size_m, boxes.heading, boxes.expected):
        corners = box_corners(tpx, size[0] * s, size[1] * s, theta)
        colour = (230, 30, 30) if exp else (150, 80, 80)  # not expected (at the edge): darker
        cv2.polylines(img, [np.round(corners * scale).astype(np.int32)], True, colour, 1)
    for d in dets:
        if d.score < threshold:
            continue
        pts = np.round(d.corners_px * scale).astype(np.int32)
        cv2.polylines(img, [pts], True, (30, 220, 30), 1)
        cv2.putText(img, f"{d.score:.2f}", tuple(int(v) for v in pts.min(axis=0) + [0, -2]), cv2.FONT_HERSHEY_SIMPLEX,
                    0.3, (30, 220, 30), 1, cv2.LINE_AA)
    return img


# -- the loop --------------------------------------------------------------------------------
def _device(cfg: DetectorTrainConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def _comparable(cfg: DetectorTrainConfig) -> str:
    """What must match to resume (not `epochs`, `patience`, `images` or `progress`)."""
    d = dataclasses.asdict(cfg)
    for k in ("epochs", "patience", "images", "progress", "device"):
        d.pop(k)
    return json.dumps(d, sort_keys=True, default=list)


def _save(path: Path, blob: dict) -> None:
    atomic_write(path, lambda f: torch.save(blob, f))


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_json(path, _plain(obj), indent=2, allow_nan=False)


def _plain(x):
    """JSON-ready: NumPy numbers as Python ones, NaN (no match, no error) as null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def results_table(metrics: dict) -> str:
    """metrics.json's held-out results as a Markdown table: each split, then per scenario."""
    lines = ["| split | detector | frames | true boxes | precision | recall | AP | loc err m |",
             "|---|---|---|---|---|---|---|---|"]

    def fmt(v) -> str:
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"

    for split, r in metrics["splits"].items():
        rows = []
        for detector, q in (("learned", r), ("classical", r.get("classical"))):  # the baseline on the same frames
            if q is not None:
                rows += [(split, detector, q)] + [(f"{split} {name}", detector, s) for name, s in q["by_scenario"].items()]
        for label, detector, q in rows:
            lines.append(f"| {label} | {detector} | {q['frames']} | {q['n_true']} | {fmt(q['precision'])} | "
                         f"{fmt(q['recall'])} | {fmt(q['ap'])} | {fmt(q['loc_error_m'])} |")
    return "\n".join(lines)


def train_detector(cfg: DetectorTrainConfig) -> dict:
    """Train on `cfg.frames` train frames; return metrics.json's content."""
    logdir = Path(cfg.logdir)
    ckpt_dir = logdir / "checkpoints"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DetectorError(f"cannot create {ckpt_dir}: {exc.strerror or exc}") from None
    t0 = time.perf_counter()
    train_set = select_frames(Path(cfg.data), "train", cfg.scenarios, cfg.frames)
    held = {split: select_frames(Path(cfg.data), split, cfg.scenarios, cfg.eval_frames, cfg.eval_stride)
            for split in HELD_OUT}
    net_cfg = DetectorNetConfig(stride=cfg.stride)
    train_t = encode(train_set, net_cfg.stride, cfg.sigma_px)
    held_t = {split: encode(data, net_cfg.stride, cfg.sigma_px) for split, data in held.items()}
    load_s = time.perf_counter() - t0
    device = _device(cfg)
    torch.manual_seed(cfg.seed)
    net = CenterNetSmall(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = train_set.geometries[0]
    frame = {"height": int(train_set.frames.shape[1]), "width": int(train_set.frames.shape[2]), "scaling": g.scaling}
    state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "stale": 0, "history": [], "train_s": 0.0}
    last = ckpt_dir / "last.pt"
    if last.exists():
        blob = load_detector_checkpoint(last)
        if blob.get("train_config") != _comparable(cfg):
            raise DetectorError(f"{logdir} holds a run with another configuration; use another --logdir")
        net.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        state = json.loads(blob["state"])
        torch.set_rng_state(blob["rng"])
    params = parameter_count(net)
    _write_json(logdir / "config.json", {"train": dataclasses.asdict(cfg), "net": net_cfg.as_dict(), "frame": frame,
                                         "parameters": params, "torch": torch.__version__})
    from torch.utils.tensorboard import SummaryWriter  # heavy; only when training

    writer = SummaryWriter(str(logdir / "tb"))
    writer.add_text("hparams", json.dumps({**dataclasses.asdict(cfg), "parameters": params}, indent=1, default=list))
    base = {"kind": "detector", "format": CHECKPOINT_FORMAT, "config": net_cfg.as_dict(), "frame": frame,
            "decode": {"score_threshold": cfg.score_threshold}, "scenarios": list(cfg.scenarios),
            "episodes": {"trained": by_split(("train", i) for i in train_set.episodes),
                         "selected": by_split((s, i) for s, d in held.items() for i in d.episodes)}}
    try:
        while state["epoch"] < cfg.epochs and state["stale"] < cfg.patience:
            epoch = state["epoch"] + 1
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.lr_decay ** (epoch - 1)
            start = time.perf_counter()
            train_losses = _epoch(net, opt, train_set, train_t, cfg, device, epoch)
            seconds = time.perf_counter() - start
            evals = {split: evaluate(net, held[split], held_t[split], cfg, device) for split in HELD_OUT}
            ap = evals["train-dev"].average_precision
            improved = ap > state["best"]
            state.update(epoch=epoch, stale=0 if improved else state["stale"] + 1, train_s=state["train_s"] + seconds)
            if improved:
                state.update(best=ap, best_epoch=epoch)
            held_out = {split: {**e.summary(), "loss": e.losses["total"]} for split, e in evals.items()}
            state["history"].append({"epoch": epoch, "train": train_losses, "seconds": seconds, **held_out})
            _log_epoch(writer, epoch, train_losses, evals, seconds, len(train_set), opt.param_groups[0]["lr"])
            if improved:
                _save(ckpt_dir / "best.pt", {**base, "model": net.state_dict(), "epoch": epoch})
            _save(last, {**base, "model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                         "train_config": _comparable(cfg), "state": json.dumps(state), "rng": torch.get_rng_state()})
        metrics = _final(net, cfg, held, held_t, writer, state, device)
    finally:
        writer.close()
    metrics.update(load_s=load_s, parameters=params, train_frames=len(train_set),
                   held_out_frames={s: len(d) for s, d in held.items()},
                   checkpoint=str(ckpt_dir / "best.pt"))
    metrics = _plain(metrics)
    _write_json(logdir / "metrics.json", metrics)
    return metrics


def _epoch(net, opt, data: FrameSet, targets: Targets, cfg: DetectorTrainConfig, device: str,
           epoch: int) -> dict[str, float]:
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(data), generator=gen)
    sums: dict[str, float] = {}
    frames = torch.from_numpy(data.frames)
    steps = range(0, len(order), cfg.batch)
    for start in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not cfg.progress):
        idx = order[start:start + cfg.batch]
        x = augment(frames[idx], cfg, gen).to(device)
        parts = losses(net(x), _to(targets.batch(idx), device), cfg.size_weight)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(idx)
    return {k: v / len(data) for k, v in sums.items()}


QUALITY = ("precision", "recall", "ap", "loc_error_m")  # the perception/<split>/ scalars


def _log_epoch(writer, epoch: int, train_losses: dict, evals: dict[str, Evaluation], seconds: float, n: int,
               lr: float) -> None:
    for k, v in train_losses.items():
        writer.add_scalar(f"losses/train/{k}", v, epoch)
    for split, e in evals.items():
        for k, v in e.losses.items():
            writer.add_scalar(f"losses/{split}/{k}", v, epoch)
        summary = e.summary()
        for k in QUALITY:
            writer.add_scalar(f"perception/{split}/{k}", summary[k], epoch)
    writer.add_scalar("train/lr", lr, epoch)
    writer.add_scalar("time/epoch_s", seconds, epoch)
    writer.add_scalar("time/frames_per_s", n / max(seconds, 1e-9), epoch)


def _final(net, cfg: DetectorTrainConfig, held: dict[str, FrameSet], held_t: dict[str, Targets], writer, state: dict,
           device: str) -> dict:
    """The best checkpoint on the held-out splits: PR curves, pictures, metrics.json's content."""
    best = load_detector_checkpoint(Path(cfg.logdir) / "checkpoints" / "best.pt")
    net.load_state_dict(best["model"])
    step = int(best["epoch"])
    splits = {}
    for split, data in held.items():
        e = evaluate(net, data, held_t[split], cfg, device)
        splits[split] = {**e.summary(), "by_scenario": e.by_scenario, "frames": len(data),
                         "classical": classical_baseline(data)}
        writer.add_pr_curve(f"perception/{split}/pr", e.pr_labels.astype(np.int64), e.pr_scores, global_step=step)
        summary = e.summary()
        for k in QUALITY:
            writer.add_scalar(f"perception/{split}/best_{k}", summary[k], step)
        with_cars = [i for i, b in enumerate(data.boxes) if b.expected.any()]
        if with_cars:  # evenly spread over the frames that show a car
            picks = [with_cars[int(j)] for j in np.linspace(0, len(with_cars) - 1, min(cfg.images, len(with_cars)))]
            pics = [draw(data.frames[i], data.boxes[i], e.detections[i], data.geometries[data.scenario[i]],
                         cfg.score_threshold) for i in picks]
            gap = np.full((4, pics[0].shape[1], 3), 255, np.uint8)
            strip = np.concatenate([x for p in pics for x in (p, gap)][:-1], axis=0)
            writer.add_image(f"perception/{split}/boxes", strip, global_step=step, dataformats="HWC")
    return {"best_epoch": step, "epochs_run": state["epoch"], "score_threshold": cfg.score_threshold,
            "ap_min_score": AP_THRESHOLD, "splits": splits, "history": state["history"], "train_s": state["train_s"]}
