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

from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.harness.backends import Backend
from steerbench.harness.collect import CollectConfig, collect, dataset_settings
from steerbench.harness.dagger import LABELLER, fork_dataset
from steerbench.perception.lane_model import LaneModelError
from steerbench.perception.lane_train import LaneTrainConfig, train_lanes
from steerbench.sim.dataset import DatasetError, DatasetIndex
from steerbench.sim.episodes import DAGGER, DAGGER_ROUND_STRIDE, MAX_DAGGER_ROUNDS, dagger_start
from steerbench.sim.storage import atomic_write_json

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

    def __post_init__(self) -> None:
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
            run = dataclasses.replace(run, data=str(aggregate_dir(cfg)), rollouts=True)
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
