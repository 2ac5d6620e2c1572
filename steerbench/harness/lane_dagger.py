"""DAgger for the lane model: `train-lanes --dagger-rounds K` (Ross, Gordon and Bagnell, 2011).

The lane model learns from frames the expert drove, and the modular agent that uses it leaves
that state distribution: a little off its lane's centre, a little late into the roundabout's
exit, it sees frames no training frame showed and drifts further (docs/perception.md, "Why
the junctions fail"). Lane labels come from the map whoever drives, so the agent's own
rollouts are labelled for free.

Round 0 is `train-lanes` on the dataset. Each later round r rolls out the modular agent with
round r-1's lane model (`lanes=learned`; detections from the simulator, `detector=ground_truth`,
so that the rollouts follow the lane model's errors, not the detector's, and cost no detector),
records them with their lane labels as new train episodes of the run's own dataset
(`LOGDIR/data`: the base dataset's episodes hard-linked, as `train-e2e --dagger-rounds` does, so
the base dataset never holds one run's rollouts), and trains round r's model afresh on the
aggregate: the base frames of `frames` plus every rollout so far, whole (`LaneTrainConfig.rollouts`).
Training afresh on the aggregate each round is the algorithm as its paper states it.

Critical states (`critical` < 1 or `repeat` > 1; after DA-RB's, harness/dagger.py): of each
rollout only the ceil(`critical` x T) of its T steps where round r-1's model errs most (its
ego lane 10 m ahead against the label) are kept, each taken `repeat` times; the rollouts of
earlier rounds keep the steps their round chose. Why: a rollout's few steps at a junction,
where the model fails, are lost among its many it already gets right (docs/perception.md).
`LOGDIR/critical/round-<r>.json` lists them (`LaneTrainConfig.rollout_steps`), written once.

Round r's run is `LOGDIR/dagger-<r>`; the last round's best checkpoint is the run's model.
`LOGDIR/lane_dagger.json` records per round its checkpoint, the rollouts' frames and the
held-out lane errors (`metrics.json`'s). Every part resumes: the fork, finished rollouts and
finished epochs are kept.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.harness.backends import Backend
from steerbench.harness.collect import CollectConfig, collect, dataset_settings
from steerbench.harness.dagger import LABELLER, critical_steps, fork_dataset
from steerbench.perception.classical import to_gray
from steerbench.perception.detector_data import camera_of, geometry_for, policy_hz_of
from steerbench.perception.lane_eval import sample_index
from steerbench.perception.lane_model import EGO, LaneModelError, load_lane_model
from steerbench.perception.lane_train import LaneTrainConfig, train_lanes
from steerbench.perception.odometry import turned
from steerbench.sim.dataset import DatasetError, DatasetIndex, load_episode
from steerbench.sim.episodes import DAGGER, DAGGER_ROUND_STRIDE, MAX_DAGGER_ROUNDS, dagger_start
from steerbench.sim.storage import atomic_write_json

MISSED_M = 10.0  # the error of a step where the model gives no ego lane 10 m ahead: larger than any it makes
# What drives the rollouts, besides the lane model: the simulator's detections (module docstring).
DRIVER_OPTIONS = (("lanes", "learned"), ("detector", "ground_truth"))


@dataclass(frozen=True)
class LaneDaggerConfig:
    """`train-lanes --dagger-rounds`: `train` (round 0), then `rounds` DAgger rounds."""

    train: LaneTrainConfig  # round 0; later rounds change data, logdir and rollouts
    rounds: int
    scenarios: tuple[str, ...] = ()  # where the agent is rolled out (empty: the scenarios it trains on)
    episodes: int = 20  # rollouts per scenario and round
    workers: int = 1
    progress: bool = True
    backend: Backend = Backend()
    critical: float = 1.0  # share of each rollout's steps kept, where the last model errs most (1: all)
    repeat: int = 1  # times each kept rollout step is taken

    def __post_init__(self) -> None:
        if not 0.0 < self.critical <= 1.0 or self.repeat < 1:
            raise LaneModelError(f"the critical share is in (0, 1] and the repeat 1 or more "
                                 f"(got {self.critical}, {self.repeat})")
        if not 1 <= self.rounds <= MAX_DAGGER_ROUNDS:
            raise LaneModelError(f"1 to {MAX_DAGGER_ROUNDS} DAgger rounds (got {self.rounds})")
        if not 1 <= self.episodes <= DAGGER_ROUND_STRIDE:
            raise LaneModelError(f"1 to {DAGGER_ROUND_STRIDE} DAgger rollouts per scenario and round "
                                 f"(got {self.episodes})")


def round_dir(cfg: LaneDaggerConfig, r: int) -> Path:
    """Round r's train-lanes run: the logdir itself for round 0, LOGDIR/dagger-<r> after."""
    return Path(cfg.train.logdir) if r == 0 else Path(cfg.train.logdir) / f"dagger-{r}"


def aggregate_dir(cfg: LaneDaggerConfig) -> Path:
    """The run's own dataset: the base dataset's episodes and this run's rollouts."""
    return Path(cfg.train.logdir) / "data"


def checkpoint(cfg: LaneDaggerConfig, r: int) -> Path:
    """Round r's best lane model."""
    return round_dir(cfg, r) / "checkpoints" / "best.pt"


def student(cfg: LaneDaggerConfig, r: int) -> AgentSpec:
    """The modular agent that drives round r + 1's rollouts with round r's lane model."""
    return AgentSpec(f"lanes-student-{r}", BUILTIN["modular"],
                     DRIVER_OPTIONS + (("lanes.checkpoint", str(checkpoint(cfg, r))),))


def run_lane_dagger(cfg: LaneDaggerConfig) -> list[dict]:
    """Round 0, then `cfg.rounds` DAgger rounds; returns (and writes to LOGDIR/lane_dagger.json)
    one record per round. LaneModelError for a dataset the rollouts cannot be added to."""
    base = Path(cfg.train.data)
    try:
        env, trained = dataset_settings(base)
    except DatasetError as exc:
        raise LaneModelError(str(exc)) from None
    scenarios = cfg.scenarios or cfg.train.scenarios or trained
    history = []
    for r in range(cfg.rounds + 1):
        if r:
            fork_dataset(base, aggregate_dir(cfg))
            collect(CollectConfig(teacher=LABELLER, scenarios=scenarios, split="train", episodes=cfg.episodes,
                                  seed=dagger_start(r), workers=cfg.workers, out=aggregate_dir(cfg), env=env,
                                  driver=student(cfg, r - 1), progress=cfg.progress, backend=cfg.backend))
        run = dataclasses.replace(cfg.train, logdir=str(round_dir(cfg, r)))
        if r:
            listed = str(critical_steps_file(cfg, r)) if cfg.critical < 1 or cfg.repeat > 1 else ""
            if listed:
                _write_critical(cfg, r)
            run = dataclasses.replace(run, data=str(aggregate_dir(cfg)), rollouts=True, rollout_steps=listed)
        metrics = train_lanes(run)
        history.append({"round": r, "checkpoint": str(checkpoint(cfg, r)), "train_frames": metrics["train_frames"],
                        "rollout_frames": _rollout_frames(cfg, r) if r else {}, "held_out": metrics["splits"]})
        atomic_write_json(Path(cfg.train.logdir) / "lane_dagger.json", json.loads(json.dumps(history, default=list)))
    return history


def _rollout_frames(cfg: LaneDaggerConfig, r: int) -> dict[str, int]:
    """Frames of the rollouts of rounds 1..r, per scenario."""
    out: dict[str, int] = {}
    for row in DatasetIndex(aggregate_dir(cfg)).rows:
        if row["split"] == "train" and DAGGER.holds("train", row["index"]) and row["index"] < dagger_start(r + 1):
            out[row["scenario"]] = out.get(row["scenario"], 0) + int(row["steps"])
    return out


def critical_steps_file(cfg: LaneDaggerConfig, r: int) -> Path:
    """Round r's list of the rollout steps its model trains on (critical states)."""
    return Path(cfg.train.logdir) / "critical" / f"round-{r}.json"


def _write_critical(cfg: LaneDaggerConfig, r: int) -> None:
    """Round r's list, once: round r-1's entries, then round r's rollouts with their critical
    steps as scored by round r-1's model, each step `repeat` times."""
    path = critical_steps_file(cfg, r)
    if path.exists():
        chosen = json.loads(path.read_text())
        if (chosen.get("critical"), chosen.get("repeat")) != (cfg.critical, cfg.repeat):
            raise LaneModelError(f"{path} chose the critical states with critical {chosen.get('critical')} and "
                                 f"repeat {chosen.get('repeat')}; use another --logdir")
        return
    entries = json.loads(critical_steps_file(cfg, r - 1).read_text())["episodes"] if r > 1 else []
    root = aggregate_dir(cfg)
    new = [row for row in DatasetIndex(root).rows
           if row["split"] == "train" and dagger_start(r) <= row["index"] < dagger_start(r + 1)]
    for row, errors in zip(new, rollout_errors(checkpoint(cfg, r - 1), root, new)):
        keep = critical_steps(errors, cfg.critical)
        entries.append({"scenario": row["scenario"], "index": int(row["index"]), "round": r,
                        "steps": [int(t) for t in keep for _ in range(cfg.repeat)]})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"round": r, "critical": cfg.critical, "repeat": cfg.repeat, "episodes": entries})


def rollout_errors(model_path: Path, root: Path, rows: list[dict]) -> list[np.ndarray]:
    """Per rollout, the lane model's error at each step: the distance [m] of its ego lane 10 m
    ahead from the label's (0 where the label has no such sample; MISSED_M where the model
    gives none)."""
    out, models = [], {}
    for row in rows:
        if row["scenario"] not in models:  # one load per scenario: its geometry, not the episode, picks it
            models[row["scenario"]] = load_lane_model(model_path, geometry_for(camera_of(root), row["scenario"]))
        model = models[row["scenario"]]
        ep = load_episode(root, row)
        grey = np.stack([to_gray(f) for f in ep.frames])
        heading = turned(ep.speed, ep.executed[:, -1], 1.0 / policy_hz_of(root)) if model.odometry else None
        preds = model.predict_batch(grey, ep.command.astype(np.int64) if model.commands else None, heading)
        label = ep.lane_centres[:, EGO, sample_index(ep.lane_s, 10.0)].astype(np.float64)
        guess = np.stack([p.centres[EGO, sample_index(p.s, 10.0)] for p in preds]).astype(np.float64)
        errors = np.hypot(*(guess - label).T)
        errors[~np.isfinite(guess).all(axis=1)] = MISSED_M
        errors[~np.isfinite(label).all(axis=1)] = 0.0
        out.append(errors)
    return out
