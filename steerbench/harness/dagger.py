"""DAgger for the end-to-end network (Ross, Gordon and Bagnell, 2011): `train-e2e --dagger-rounds K`.

Round 0 is behaviour cloning on the dataset. Each later round rolls the current student out
(its actions are executed), has the expert label every state it visits, adds those episodes as
new `train` episodes (their index rows name the student as `driver`), and trains the next
student from the current one's weights on the aggregate.

The aggregate is the run's own dataset, `LOGDIR/data`: the base dataset's episodes (hard links
to its chunks, a copy where the file system cannot link) plus this run's rollouts. The base
dataset is never written: two DAgger runs on one dataset (two training seeds, say) would
otherwise share their rollouts, the second finding the first's episodes recorded at the same
indices and training on another student's mistakes, and every later behaviour cloning on the
base would train on them too. After every round the student
drives closed loop on fixed train seeds; the driving score per round goes to TensorBoard
(`dagger/<scenario>/driving_score`, step = round) and to `LOGDIR/dagger.json`.

Every part resumes: finished rollouts, finished epochs and finished evaluation episodes are kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from steerbench.agents.e2e_train import TrainConfig, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.harness.backends import Backend
from steerbench.harness.collect import CollectConfig, collect
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.dataset import DatasetError, DatasetIndex
from steerbench.sim.episodes import DAGGER_CHECK, DAGGER_ROUND_STRIDE, MAX_DAGGER_ROUNDS, dagger_start
from steerbench.sim.runner import EnvSettings
from steerbench.sim.storage import atomic_write_text

# The expert labels states it did not choose: it keeps to the lane the student is in (see
# ExpertOptions.follow_ego_lane), or a lane change the student never makes labels a whole episode.
LABELLER = AgentSpec("expert", BUILTIN["expert"], (("follow_ego_lane", "true"),))


@dataclass(frozen=True)
class DaggerConfig:
    """`train-e2e --dagger-rounds`: behaviour cloning with `train`, then `rounds` DAgger rounds."""

    train: TrainConfig  # round 0; later rounds change only logdir and init
    rounds: int  # DAgger rounds after behaviour cloning
    scenarios: tuple[str, ...]  # where the student is rolled out and evaluated
    episodes: int = 10  # student rollouts per scenario and round
    eval_episodes: int = 5  # closed-loop evaluation episodes per scenario and round
    workers: int = 1
    env: EnvSettings = EnvSettings()
    progress: bool = True
    backend: Backend = Backend()  # where rollouts and evaluation episodes run (docs/ray.md)


def check_budget(cfg: DaggerConfig) -> None:
    """Rounds and rollouts must fit the DAgger range of sim.episodes, or they would reach the
    episodes that models are evaluated on."""
    if cfg.rounds > MAX_DAGGER_ROUNDS:
        raise TrainingError(f"at most {MAX_DAGGER_ROUNDS} DAgger rounds (got {cfg.rounds})")
    if cfg.episodes > DAGGER_ROUND_STRIDE:
        raise TrainingError(
            f"at most {DAGGER_ROUND_STRIDE} DAgger rollouts per scenario and round (got {cfg.episodes})"
        )
    if not DAGGER_CHECK.holds("train", DAGGER_CHECK.start, cfg.eval_episodes):
        raise TrainingError(f"too many closed-loop check episodes per round ({cfg.eval_episodes})")


def round_dir(cfg: DaggerConfig, r: int) -> Path:
    """Round r's train-e2e run directory: the logdir itself for round 0, LOGDIR/dagger-<r> after."""
    return Path(cfg.train.logdir) if r == 0 else Path(cfg.train.logdir) / f"dagger-{r}"


def run_dagger(cfg: DaggerConfig) -> list[dict]:
    """Behaviour cloning, then `cfg.rounds` DAgger rounds; returns one record per round.

    Each record holds the round's checkpoint and, per scenario, the student's closed-loop driving
    score and success (also in LOGDIR/dagger.json). The rollouts go to the run's own dataset
    (`aggregate_dir`), never to `cfg.train.data`. TrainingError when the rounds or episodes do not fit the DAgger index
    range (`check_budget`).
    """
    check_budget(cfg)
    history = []
    for r in range(cfg.rounds + 1):
        if r:
            fork_dataset(Path(cfg.train.data), aggregate_dir(cfg))
            _aggregate(cfg, r, _checkpoint(cfg, r - 1))
        init = str(_checkpoint(cfg, r - 1)) if r else cfg.train.init
        data = str(aggregate_dir(cfg)) if r else cfg.train.data
        train(dataclasses.replace(cfg.train, data=data, logdir=str(round_dir(cfg, r)), init=init))
        history.append({"round": r, "checkpoint": str(_checkpoint(cfg, r)), **_closed_loop(cfg, r)})
        _log(cfg, history)
    return history


def aggregate_dir(cfg: DaggerConfig) -> Path:
    """The run's own dataset: the base dataset's episodes and this run's rollouts (module docstring)."""
    return Path(cfg.train.logdir) / "data"


def fork_dataset(base: Path, root: Path) -> None:
    """`root` as a dataset holding `base`'s episodes (chunks hard-linked, or copied), made once:
    built beside it and renamed into place, so that an interrupted fork leaves nothing half made."""
    if (root / "index.jsonl").exists():
        return
    if not (base / "index.jsonl").exists():
        raise DatasetError(f"{base} is not a steerbench dataset (no index.jsonl)")
    tmp = root.with_name(root.name + ".forking")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = DatasetIndex(base).rows
    for row in rows:
        target = tmp / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(base / row["path"], target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(base / row["path"], target)
    shutil.copy2(base / "manifest.json", tmp / "manifest.json")
    atomic_write_text(tmp / "index.jsonl", "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))
    tmp.rename(root)


def _checkpoint(cfg: DaggerConfig, r: int) -> Path:
    return round_dir(cfg, r) / "checkpoints" / "best.pt"


def _student(cfg: DaggerConfig, r: int) -> AgentSpec:
    return AgentSpec(f"student-{r}", BUILTIN["e2e"], (("checkpoint", str(_checkpoint(cfg, r))),))


def _aggregate(cfg: DaggerConfig, r: int, weights: Path) -> None:
    """The round's rollouts of the previous student, labelled by the expert, into the dataset."""
    collect(
        CollectConfig(
            teacher=LABELLER,
            scenarios=cfg.scenarios,
            split="train",
            episodes=cfg.episodes,
            seed=dagger_start(r),
            workers=cfg.workers,
            out=aggregate_dir(cfg),
            env=cfg.env,
            driver=_student(cfg, r - 1),
            progress=cfg.progress,
            backend=cfg.backend,
        )
    )


def _closed_loop(cfg: DaggerConfig, r: int) -> dict:
    out = run_eval(
        EvalConfig(
            agents=(_student(cfg, r),),
            scenarios=cfg.scenarios,
            split="train",
            episodes=cfg.eval_episodes,
            seed=DAGGER_CHECK.start,
            workers=cfg.workers,
            logdir=Path(cfg.train.logdir) / "dagger-eval",
            env=cfg.env,
            strip_episodes=0,
            progress=cfg.progress,
            backend=cfg.backend,
        )
    )
    return {
        g.scenario: {"driving_score": g.metrics["driving_score"].mean, "success": g.metrics["success"].mean}
        for g in out.groups
    }


def _log(cfg: DaggerConfig, history: list[dict]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    (Path(cfg.train.logdir) / "dagger.json").write_text(json.dumps(history, indent=2))
    with SummaryWriter(str(Path(cfg.train.logdir) / "tb")) as writer:
        h = history[-1]
        for scenario in cfg.scenarios:
            if scenario in h:
                for metric, value in h[scenario].items():
                    writer.add_scalar(f"dagger/{scenario}/{metric}", value, h["round"])
