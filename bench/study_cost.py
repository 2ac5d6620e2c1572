"""Study cost: this machine's rates for each part of `steerbench scale`, and the CPU-hours of a study.

Method (one run). A small dataset is collected in a temp dir: the expert on `--scenarios` (default
all five), `--episodes` train episodes per scenario (half with DART noise, as the study's), on the
fast simulation core (`EnvSettings(fast=True)`, `--fast-sim` of the CLI), with `--workers`
processes; the train collection is timed (worker start-up included): collection frames/s. One
train-dev and one dev episode per scenario follow, untimed (the held-out sets below).
- Networks: for each size in `--nets`, a fresh PilotNet trains `--updates` updates (batch 64) on
  those frames through train-e2e's own step-budget loop (`agents/e2e_loop.py:period`, its
  DataLoader, augmentation, cosine schedule), after an untimed warm-up period: training samples/s
  = updates x 64 / s (as bench/train_throughput.py times it). A no-grad pass over the train-dev set
  gives its held-out samples/s (the train-dev and dev checks inside training).
- Learned detector and lane model: one epoch of `train_detector` / `train_lanes` (their own
  trainers, `--detector-frames` train frames): training samples/s = frames / the run's `train_s`;
  held-out frames/s = the held-out frames evaluated (each epoch and the final pass) / the rest of the
  run's time (loading excluded).
- Evaluation: `run_eval` (results.jsonl, TensorBoard, workers) of each agent family on
  `--eval-episodes` episodes per scenario: the expert, the modular agent with the learned detector
  and learned lanes (the checkpoints just trained) and e2e M (the network just trained). A weak
  model may end its episodes early, so the rate is kept in steps/s and reported as episodes/s of
  full-length episodes (the mean nominal length over the five scenarios).
torch uses its default threads for training and one per worker for episodes, as the study does.

The cost model: bench/study_cost_model.py.
Usage (`--help` lists every flag): python bench/study_cost.py --frames 300,1000,3000,10000,30000,100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
from benchlib import rate_line
from study_cost_model import BATCH, FAMILIES, Part, Rates, Study, project, table  # noqa: F401 (the smoke test's)
from torch.utils.data import DataLoader, Subset

from steerbench.agents.e2e_loop import period
from steerbench.agents.e2e_schedule import plan
from steerbench.agents.e2e_train import TrainConfig, _splits, new_network
from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.collect import CollectConfig, collect
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.perception.detector_data import nominal_steps
from steerbench.sim.dataset import DatasetIndex
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenarios import SUITE


# -- measurements -----------------------------------------------------------------------------
def measure_collection(data: Path, scenarios: tuple[str, ...], episodes: int, workers: int) -> float:
    """Train frames/s of the expert (timed), then one train-dev and one dev episode per scenario."""
    def run(split: str, count: int, noise: float) -> dict:
        return collect(CollectConfig(teacher=AgentSpec("expert", resolve("expert")), scenarios=scenarios,
                                     split=split, episodes=count, workers=workers, out=data, noise_std=noise,
                                     env=EnvSettings(fast=True), progress=False))

    t0 = time.perf_counter()
    frames = int(run("train", episodes, 0.1)["total_frames"])
    fps = frames / (time.perf_counter() - t0)
    for split in ("train-dev", "dev"):
        run(split, 1, 0.0)
    print(f"collection: {frames} train frames, {len(scenarios)} scenarios, {workers} workers: {fps:.1f} frames/s")
    return fps


def measure_network(data: Path, tmp: Path, size: str, updates: int,
                    channels_last: bool = True) -> tuple[float, float, Path]:
    """Training and held-out samples/s of PilotNet `size` (in `scale`'s default channels-last
    layout unless told otherwise), and its weights in train-e2e's best.pt format."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = TrainConfig(data=str(data), logdir=str(tmp / f"e2e-{size}"), size=size, batch=BATCH,
                      channels_last=channels_last, progress=False)
    full, train_set, dev_set, _ = _splits(cfg, stack=4)
    net = new_network(full, cfg, device)
    net_cfg = net.config
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    warm = max(1, updates // 10)
    period(net, opt, train_set, cfg, device, gen, plan(warm, warm, 0, cfg.lr, "cosine", len(train_set), BATCH), 1)
    steps = plan(updates, updates, 0, cfg.lr, "cosine", len(train_set), BATCH)
    t0 = time.perf_counter()
    period(net, opt, train_set, cfg, device, gen, steps, 1)
    train_sps = updates * BATCH / (time.perf_counter() - t0)
    net.eval()
    t0, n = time.perf_counter(), 0
    with torch.no_grad():
        for frames, speed, command, _ in DataLoader(Subset(dev_set.dataset, dev_set.indices), batch_size=256):
            net(frames.to(device), speed.to(device), command.to(device))
            n += len(frames)
    infer_sps = n / (time.perf_counter() - t0)
    path = tmp / f"e2e-{size}.pt"
    torch.save({"model": net.state_dict(), "config": net_cfg.as_dict(), "epoch": 0}, path)
    print(f"e2e-{size}: {updates} updates x {BATCH} in {len(train_set)} frames, device {device}, "
          f"{'channels-last' if channels_last else 'default'} layout: "
          f"{train_sps:.1f} train samples/s, {infer_sps:.1f} held-out samples/s")
    return train_sps, infer_sps, path


def measure_perception(data: Path, tmp: Path, model: str, scenarios: tuple[str, ...], frames: int,
                       eval_frames: int) -> tuple[float, float, Path]:
    """Training and held-out samples/s of one epoch of the detector's or lane model's own trainer
    (on at most the frames the data holds: equal shares, so the shortest scenario limits them)."""
    rows = DatasetIndex(data).rows

    def held(split: str, stride: int) -> int:  # usable frames of the scarcest scenario, times the scenarios
        return len(scenarios) * min(sum(-(-r["steps"] // stride) for r in rows
                                        if r["split"] == split and r["scenario"] == s) for s in scenarios)

    frames = min(frames, held("train", 1))
    eval_frames = min(eval_frames, held("train-dev", 4), held("dev", 4))  # both trainers' eval_stride
    if model == "detector":
        from steerbench.perception.learned_train import DetectorTrainConfig
        from steerbench.perception.learned_train import train_detector as fit
        cfg = DetectorTrainConfig(data=str(data), logdir=str(tmp / model), scenarios=scenarios, frames=frames,
                                  eval_frames=eval_frames, epochs=1, progress=False)
    else:
        from steerbench.perception.lane_train import LaneTrainConfig
        from steerbench.perception.lane_train import train_lanes as fit
        cfg = LaneTrainConfig(data=str(data), logdir=str(tmp / model), scenarios=scenarios, frames=frames,
                              eval_frames=eval_frames, epochs=1, progress=False)
    t0 = time.perf_counter()
    m = fit(cfg)
    wall = time.perf_counter() - t0
    held = (int(m["epochs_run"]) + 1) * sum(m["held_out_frames"].values())
    train_sps = m["train_frames"] * int(m["epochs_run"]) / m["train_s"]
    infer_sps = held / max(wall - m["load_s"] - m["train_s"], 1e-9)
    print(f"{model}: {m['train_frames']} frames x {m['epochs_run']} epoch: {train_sps:.1f} train samples/s, "
          f"{infer_sps:.1f} held-out frames/s (checkpoints and TensorBoard included)")
    return train_sps, infer_sps, Path(m["checkpoint"])


def measure_eval(tmp: Path, family: str, spec: AgentSpec, scenarios: tuple[str, ...], episodes: int,
                 workers: int) -> float:
    """Evaluation steps/s of one agent (run_eval, worker start-up included)."""
    t0 = time.perf_counter()
    out = run_eval(EvalConfig(agents=(spec,), scenarios=scenarios, episodes=episodes, workers=workers,
                              logdir=tmp / f"eval-{family}", env=EnvSettings(fast=True), progress=False))
    seconds = time.perf_counter() - t0
    steps = sum(int(r["metrics"]["steps"]) for r in out.rows)
    print(f"evaluate {family}: {len(out.rows)} episodes, {steps} steps, {workers} workers: "
          f"{steps / seconds:.1f} steps/s")
    return steps / seconds


def measure(scenarios: tuple[str, ...], episodes: int, workers: int, nets: Sequence[str], updates: int,
            detector_frames: int, eval_frames: int, eval_episodes: int, channels_last: bool = True) -> Rates:
    """Every rate, in one temp dir."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = tmp / "data"
        fps = measure_collection(data, scenarios, episodes, workers)
        train, infer, ckpt = {}, {}, {}
        for size in dict.fromkeys((*nets, "M")):
            train[size], infer[size], ckpt[size] = measure_network(data, tmp, size, updates, channels_last)
        for model in ("detector", "lanes"):
            train[model], infer[model], ckpt[model] = measure_perception(data, tmp, model, scenarios,
                                                                         detector_frames, eval_frames)
        specs = {"expert": AgentSpec("expert", resolve("expert")),
                 "modular": AgentSpec("modular-learned-learned", resolve("modular"),
                                      (("detector", "learned"), ("checkpoint", str(ckpt["detector"])),
                                       ("lanes", "learned"), ("lanes.checkpoint", str(ckpt["lanes"])))),
                 "e2e": AgentSpec("e2e-M", resolve("e2e"), (("checkpoint", str(ckpt["M"])),))}
        rates = {f: measure_eval(tmp, f, specs[f], scenarios, eval_episodes, workers) for f in FAMILIES}
    return Rates(fps, train, infer, rates, workers, torch.get_num_threads())


# -- the command ------------------------------------------------------------------------------
def _sizes(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(s) for s in text.split(",") if s.strip()}))


def _limits(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        size, _, n = part.partition("=")
        if size not in ("S", "M", "L") or not n.isdigit():
            raise argparse.ArgumentTypeError(f"expected SIZE=FRAMES with SIZE one of S, M, L, got {part!r}")
        out[size] = int(n)
    return out


def _names(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else tuple(s.strip() for s in text.split(",") if s.strip())


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_argument_group("measurement")
    g.add_argument("--workers", type=int, default=2, help="processes of collection and evaluation")
    g.add_argument("--scenarios", type=_names, default=tuple(SUITE), help="measured on these (default all five)")
    g.add_argument("--collect-episodes", type=int, default=2, help="expert train episodes per scenario")
    g.add_argument("--updates", type=int, default=300, help="timed updates per network")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="the networks in channels-last layout, as scale trains them by default")
    g.add_argument("--detector-frames", type=int, default=500, help="train frames of the detector's and lanes' epoch")
    g.add_argument("--eval-frames", type=int, default=100, help="their held-out frames per split")
    g.add_argument("--eval-episodes", type=int, default=2, help="evaluation episodes per scenario and family")
    s = p.add_argument_group("the projected study (steerbench scale's flags)")
    s.add_argument("--frames", type=_sizes, default=Study.frames, help="dataset sizes N")
    s.add_argument("--nets", type=_names, default=Study().nets)
    s.add_argument("--max-frames", type=_limits, default={}, metavar="SIZE=N,...",
                   help="a network's largest N, e.g. S=30000,L=30000 (default: every N)")
    s.add_argument("--seeds", type=int, default=3, help="training seeds")
    s.add_argument("--episodes", type=int, default=10, help="evaluation episodes per scenario")
    s.add_argument("--passes", type=float, default=20.0)
    s.add_argument("--min-steps", type=int, default=2000)
    s.add_argument("--samples", type=int, default=30000)
    s.add_argument("--dagger-nets", type=_names, default=("M",))
    s.add_argument("--dagger-rounds", type=int, default=2)
    s.add_argument("--dagger-episodes", type=int, default=10)
    s.add_argument("--no-detector", action="store_true")
    s.add_argument("--no-pixels", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    a = p.parse_args(argv)
    if a.quick:
        a.workers, a.scenarios, a.collect_episodes, a.updates = 1, ("merge",), 2, 8
        a.detector_frames, a.eval_frames, a.eval_episodes = 64, 8, 1
        a.frames, a.nets, a.seeds, a.episodes = (300, 1000), ("S", "M"), 2, 2
    rates = measure(a.scenarios, a.collect_episodes, a.workers, a.nets, a.updates, a.detector_frames,
                    a.eval_frames, a.eval_episodes, a.channels_last)
    study = Study(frames=a.frames, nets=a.nets, max_frames=a.max_frames, seeds=a.seeds, episodes=a.episodes,
                  passes=a.passes, min_steps=a.min_steps, samples=a.samples, dagger=a.dagger_nets,
                  dagger_rounds=a.dagger_rounds, dagger_episodes=a.dagger_episodes, detector=not a.no_detector,
                  pixels=not a.no_pixels)
    parts = project(study, rates)
    print(f"\nprojected study: N = {','.join(map(str, study.frames))}, nets {','.join(study.nets)} "
          f"(largest N: {study.max_frames or 'all'}), {study.seeds} seeds, {study.episodes} evaluation episodes x "
          f"{len(study.scenarios)} scenarios; every model runs its full budget (no early stopping: an upper bound); "
          f"{os.cpu_count()} CPUs, torch {rates.threads} threads")
    print(table(parts))
    per_episode = sum(nominal_steps(s, "train") for s in study.scenarios) / len(study.scenarios)
    out = {"study_cost_collect_fps": rates.collect_fps}
    out.update({f"study_cost_train_sps_{k}": v for k, v in rates.train_sps.items()})
    out.update({f"study_cost_eval_eps_{f}": v / per_episode for f, v in rates.eval_sps.items()})
    out["study_cost_hours"] = sum(p.hours for p in parts)
    out["study_cost_cpu_hours"] = sum(p.cpu_hours for p in parts)
    meanings = {"collect_fps": f"expert collection frames/s, fast core, {rates.workers} workers",
                "train_sps": f"training samples/s (updates x batch / s; detector, lanes: an epoch's frames / s), "
                             f"torch {rates.threads} threads",
                "eval_eps": f"evaluation episodes/s of {per_episode:.0f}-step episodes, {rates.workers} workers",
                "hours": "projected hours of the study on this machine, parts in series, no early stopping",
                "cpu_hours": "projected CPU-hours of the study (hours x cores busy), no early stopping"}
    for name, value in out.items():
        key = next(k for k in meanings if name.startswith(f"study_cost_{k}"))
        rate_line(name, value, meanings[key])
    return out


if __name__ == "__main__":
    main()
