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

DA-RB (`buffer`, `critical`; off by default, when the above is exactly what runs): DAgger with
critical states and a replay buffer, after Prakash, Behl, Ohn-Bar, Chitta and Geiger, "Exploring
data aggregation in policy learning for vision-based urban autonomous driving", CVPR 2020. What
was used of it: the abstract (its two ideas: sample the critical states of the on-policy data by
their utility to the learned policy, and a replay buffer that "progressively focuses on the high
uncertainty regions of the policy's state distribution"; paperswithcode.com/paper/exploring-data-
aggregation-in-policy-learning) and the authors' code (github.com/autonomousvision/data_aggregation,
mirrored as fagan2888/data_aggregation): `tools/filter_dagger_data.py` keeps the on-policy frames
where the student's action differs most from the expert's label (their "AE" and "Rank" sampling;
the threshold is set in the first iteration from the share of frames to keep, then held), and
`input/coil_sampler.py` draws each batch 65% from the expert data and 35% from the on-policy
data, so the expert data stays in every round. The main paper's text (its eviction rule) could
not be read here; the eviction below is this module's choice, argued in `worst`.

Here, in round r (r >= 1), after the rollouts of student r-1 are labelled:
1. critical states: each rollout keeps the ceil(`critical` x T) of its T states where student
   r-1 errs most (`critical_steps`; error = the training loss, mean |output - expert label|, of
   the stored observation); a share per rollout rather than a threshold, so every rollout (and
   scenario) contributes the same proportion while the student improves;
2. replay buffer: the previous round's buffer and the new critical states, all scored by student
   r-1; over `buffer` frames, those where student r-1 errs least go first (`worst`);
3. the next student trains on the base dataset's every frame plus the buffer's frames: the
   buffer is a sample list (`TrainConfig.samples`, read by `ImitationDataset.selected`) at
   `LOGDIR/buffer/round-<r>.json`; the rollouts stay whole in `LOGDIR/data`.
The buffer file is written once per round and read back on a resume, so an interrupted run trains
on the buffer it had chosen. `LOGDIR/dagger.json` and TensorBoard (`dagger/buffer/...`) record per
round what the buffer holds: its frames from each round and the base data's share of the train
frames.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steerbench.agents.e2e_train import TrainConfig, load_network, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.harness.backends import Backend
from steerbench.harness.collect import CollectConfig, collect
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.dataset import DatasetError, DatasetIndex, load_episode, stack_frames
from steerbench.sim.episodes import DAGGER, DAGGER_CHECK, DAGGER_ROUND_STRIDE, MAX_DAGGER_ROUNDS, dagger_start
from steerbench.sim.runner import EnvSettings
from steerbench.sim.storage import atomic_write_json, atomic_write_text

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
    buffer: int = 0  # DA-RB: most rollout frames trained on, the student's worst kept [frames] (0: no bound)
    critical: float = 1.0  # DA-RB: share of each rollout's states kept, where the student errs most (1: all)


def replays(cfg: DaggerConfig) -> bool:
    """Whether the run is DA-RB (a bounded buffer or critical states; module docstring), not plain DAgger."""
    return cfg.buffer > 0 or cfg.critical < 1.0


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
    if cfg.buffer < 0:
        raise TrainingError(f"the DAgger replay buffer holds 0 or more frames (got {cfg.buffer})")
    if not 0.0 < cfg.critical <= 1.0:
        raise TrainingError(f"the share of critical states is in (0, 1] (got {cfg.critical})")


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
        run = dataclasses.replace(cfg.train, data=data, logdir=str(round_dir(cfg, r)), init=init)
        buffer = replay_buffer(cfg, r) if r and replays(cfg) else None
        if buffer is not None:
            run = dataclasses.replace(run, samples=str(buffer_path(cfg, r)))
        train(run)
        history.append({"round": r, "checkpoint": str(_checkpoint(cfg, r)), **_closed_loop(cfg, r)})
        if buffer is not None:
            history[-1]["buffer"] = buffer["summary"]
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


def buffer_path(cfg: DaggerConfig, r: int) -> Path:
    """Round r's replay buffer: the sample list its student trains on, and what it holds."""
    return Path(cfg.train.logdir) / "buffer" / f"round-{r}.json"


def critical_steps(errors: np.ndarray, share: float) -> np.ndarray:
    """The critical states of one rollout: the ceil(share x T) of its T steps where the student's
    error is largest (the earlier step first among equals), in step order."""
    errors = np.asarray(errors, dtype=float)
    k = min(len(errors), math.ceil(round(share * len(errors), 9)))  # round: 0.3 x 10 is 3, not 4
    return np.sort(np.argsort(-errors, kind="stable")[:k])


def worst(errors: np.ndarray, rounds: np.ndarray, capacity: int) -> np.ndarray:
    """Which of a replay buffer's candidate frames it keeps (a mask): all of them within
    `capacity` (0: no bound), else the `capacity` where the current student errs most; among
    equals the newer round's, then the earlier candidate.

    Why the lowest error goes first, not the oldest round: the states the student already gets
    right are the ones it needs least, and the buffer then focuses on where the current policy is
    wrong (the paper's aim); age alone would drop a state it still gets wrong, and keep one it has
    learned. The errors are all the current student's (the old ones re-scored), so they compare."""
    errors, rounds = np.asarray(errors, dtype=float), np.asarray(rounds)
    keep = np.ones(len(errors), dtype=bool)
    if capacity and len(errors) > capacity:
        order = np.lexsort((np.arange(len(errors)), -rounds, -errors))
        keep[:] = False
        keep[order[:capacity]] = True
    return keep


def replay_buffer(cfg: DaggerConfig, r: int) -> dict:
    """Round r's replay buffer (module docstring), made once and written to `buffer_path`; a
    resumed run reads it back. Its `episodes` are a sample list (`ImitationDataset.selected`): the
    base dataset's train episodes whole (round 0, steps "all"), then every rollout of rounds 1..r
    with the `steps` kept (maybe none) and the `errors` they were ranked by; rollouts of a later
    round are not listed, so not trained on. `summary` is what dagger.json records."""
    path = buffer_path(cfg, r)
    if path.exists():
        return json.loads(path.read_text())
    previous = [e for e in replay_buffer(cfg, r - 1)["episodes"] if e["round"]] if r > 1 else []
    root = aggregate_dir(cfg)
    rows = [row for row in DatasetIndex(root).rows if row["split"] == "train"]
    base = [row for row in rows if _round_of(row["index"]) is None]
    new = [row for row in rows if _round_of(row["index"]) == r]
    student = _checkpoint(cfg, r - 1)
    entries = [dict(e) for e in previous] + [
        {"scenario": row["scenario"], "split": row["split"], "index": row["index"], "round": r} for row in new
    ]
    candidates = []  # (entry, step, error, round)
    for entry, errors in zip(entries[len(previous):], _errors(student, root, new)):
        candidates += [(entry, int(t), float(errors[t]), r) for t in critical_steps(errors, cfg.critical)]
    critical = len(candidates)
    held = [i for i, e in enumerate(previous) if e["steps"]]  # with a bound, re-scored by this student
    by_key = {_key(row): row for row in rows}
    rescored = _errors(student, root, [by_key[_key(previous[i])] for i in held]) if cfg.buffer else [None] * len(held)
    for i, errors in zip(held, rescored):
        e = previous[i]
        now = e["errors"] if errors is None else [float(errors[t]) for t in e["steps"]]
        candidates += [(entries[i], t, x, e["round"]) for t, x in zip(e["steps"], now)]
    keep = worst([c[2] for c in candidates], [c[3] for c in candidates], cfg.buffer)
    for entry in entries:
        entry["steps"], entry["errors"] = [], []
    for (entry, t, x, _), kept in sorted(zip(candidates, keep), key=lambda c: c[0][1]):
        if kept:
            entry["steps"].append(t)
            entry["errors"].append(x)
    base_frames, frames = sum(row["steps"] for row in base), int(keep.sum())
    summary = {"frames": frames, "capacity": cfg.buffer, "critical": cfg.critical,
               "frames_by_round": {str(k): sum(len(e["steps"]) for e in entries if e["round"] == k)
                                   for k in range(1, r + 1)},
               "base_frames": base_frames, "base_share": base_frames / max(base_frames + frames, 1),
               "rollout_frames": sum(row["steps"] for row in new), "critical_frames": critical,
               "evicted": len(candidates) - frames, "scored_by": str(student)}
    whole = [{"scenario": row["scenario"], "split": row["split"], "index": row["index"], "round": 0, "steps": "all"}
             for row in base]
    blob = {"round": r, "summary": summary, "episodes": whole + entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, blob)
    return json.loads(json.dumps(blob))


def _round_of(index: int) -> int | None:
    """The DAgger round whose rollout train episode `index` is (None: not a rollout)."""
    return (index - DAGGER.start) // DAGGER_ROUND_STRIDE + 1 if DAGGER.holds("train", index) else None


def _key(row: dict) -> tuple[str, str, int]:
    return row["scenario"], row["split"], int(row["index"])


def _errors(checkpoint: Path, root: Path, rows: list[dict]) -> list[np.ndarray]:
    """Per episode, the student's error at each step: its training loss (mean |output - expert
    label| over the outputs it predicts) on the stored observation, computed as episodes run."""
    import torch

    from steerbench.perception.learned import episode_torch

    if not rows:
        return []
    net, config = load_network(checkpoint)
    out = []
    with torch.no_grad(), episode_torch():
        for row in rows:
            ep = load_episode(root, row)
            target = torch.from_numpy(ep.action[:, 1:] if config.outputs == 1 else ep.action).float()
            errors = []
            for lo in range(0, len(ep.speed), 256):
                steps = range(lo, min(lo + 256, len(ep.speed)))
                frames = np.stack([stack_frames(ep.frames, t, config.stack) for t in steps])
                pred = net(torch.from_numpy(frames), torch.from_numpy(ep.speed[lo:steps.stop].astype(np.float32)),
                           torch.from_numpy(ep.command[lo:steps.stop].astype(np.int64)))
                errors.append((pred - target[lo:steps.stop]).abs().mean(dim=1).numpy())
            out.append(np.concatenate(errors))
    return out


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
        if "buffer" in h:  # DA-RB: what the replay buffer holds
            writer.add_scalar("dagger/buffer/frames", h["buffer"]["frames"], h["round"])
            writer.add_scalar("dagger/buffer/base_share", h["buffer"]["base_share"], h["round"])
            for k, n in h["buffer"]["frames_by_round"].items():
                writer.add_scalar(f"dagger/buffer/frames_from_round_{k}", n, h["round"])
