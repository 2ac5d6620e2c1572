"""`steerbench diagnose`: Ng's bias / variance / mismatch table for a learned agent.

The agent and the expert (the human-level reference) drive the same number of episodes on each
of the four splits; errors are 1 - success and 1 - driving score (closed loop) and, with a
dataset, the mean absolute steering error against the expert's labels (open loop, the agent
replaying recorded episodes: pixel agents only, since a dataset holds no map). The gaps:

    avoidable bias     train - expert (paired: the same train episodes)
    variance           train-dev - train
    data mismatch      dev - train-dev
    overfitting to dev test - dev

each with a 95% interval (paired t for the first; Welch's t between the independent episode
sets of two splits for the others), and the recipe's advice for the largest closed-loop gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats as sps

from steerbench.agents.registry import BUILTIN, AgentSpec, check_agent
from steerbench.sim.dataset import DatasetError, iter_episodes, stack_frames
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.types import SPLITS, Observation

from .backends import Backend
from .evaluate import EvalConfig, run_eval
from .report import table
from .stats import Estimate, estimate, mean, paired_difference

ERRORS = {"1 - driving score": "driving_score", "1 - success": "success"}
GAPS = (("avoidable bias", "expert", "train"), ("variance", "train", "train-dev"),
        ("data mismatch", "train-dev", "dev"), ("overfitting to dev", "dev", "test"))
ADVICE = {
    "avoidable bias": "train a bigger model, train longer, or change the architecture",
    "variance": "get more training data (DAgger rollouts, more episodes), regularise (augmentation), stop earlier",
    "data mismatch": "make the training data more like the test distribution (collect or synthesise it, augment appearance)",
    "overfitting to dev": "get a bigger dev set",
}


@dataclass(frozen=True)
class DiagnoseConfig:
    agent: AgentSpec
    scenarios: tuple[str, ...]
    episodes: int = 10  # per scenario and split
    seed: int = EVAL_START  # index of the first episode of every split: held out from the agent's data
    workers: int = 1
    logdir: Path = Path("runs/diagnose")
    env: EnvSettings = EnvSettings()
    data: Path | None = None  # a collect dataset for the open-loop steering error
    offline_frames: int = 2000  # per split, at most
    progress: bool = True
    backend: Backend = Backend()  # where episodes run (docs/ray.md)


@dataclass
class Diagnosis:
    errors: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # error -> column -> estimate
    gaps: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # error -> gap -> estimate
    largest: str = ""


def run_diagnose(cfg: DiagnoseConfig) -> Diagnosis:
    expert = AgentSpec("expert", BUILTIN["expert"])
    per_split = {}
    for split in SPLITS:
        out = run_eval(EvalConfig(agents=(cfg.agent, expert), scenarios=cfg.scenarios, split=split,
                                  episodes=cfg.episodes, seed=cfg.seed, workers=cfg.workers, logdir=cfg.logdir, env=cfg.env,
                                  progress=cfg.progress, backend=cfg.backend))
        per_split[split] = out.rows
    diag = closed_loop(per_split, cfg.agent.label)
    if cfg.data is not None:
        diag.errors["steering MAE (open loop)"] = offline_errors(cfg, Path(cfg.data))
    return diag


def closed_loop(per_split: dict[str, list[dict]], label: str) -> Diagnosis:
    diag = Diagnosis()
    for name, metric in ERRORS.items():
        err = {}
        for split, rows in per_split.items():
            err[split] = {(r["scenario"], r["index"]): 1.0 - r["metrics"][metric] for r in rows if r["agent"] == label}
        expert = {(r["scenario"], r["index"]): 1.0 - r["metrics"][metric] for r in per_split["train"] if r["agent"] == "expert"}
        columns = {"expert": expert, **err}
        # 1 - success is a rate too (Wilson), 1 - driving score stays in [0, 1]: no negative bounds
        diag.errors[name] = {c: estimate(metric, list(v.values())) for c, v in columns.items()}
        diag.gaps[name] = {gap: _gap(columns[a], columns[b], paired=a == "expert") for gap, a, b in GAPS}
    scores = diag.gaps["1 - driving score"]
    diag.largest = max(scores, key=lambda g: scores[g].mean if np.isfinite(scores[g].mean) else -np.inf)
    return diag


def _gap(low: dict, high: dict, paired: bool) -> Estimate:
    """Mean of `high` - `low` with a 95% interval."""
    if paired:
        keys = sorted(set(low) & set(high))
        return paired_difference([high[k] for k in keys], [low[k] for k in keys])
    a, b = np.array(list(high.values())), np.array(list(low.values()))
    if len(a) < 2 or len(b) < 2:
        return Estimate(float(a.mean() - b.mean()) if len(a) and len(b) else float("nan"), float("nan"), float("nan"), min(len(a), len(b)))
    if a.std() == 0 and b.std() == 0:
        d = float(a.mean() - b.mean())
        return Estimate(d, d, d, min(len(a), len(b)))
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return Estimate(float(a.mean() - b.mean()), float(ci.low), float(ci.high), min(len(a), len(b)))


def offline_errors(cfg: DiagnoseConfig, data: Path) -> dict[str, Estimate]:
    """|agent steering - expert label| on recorded episodes, per split; the expert's own is 0."""
    from .collect import dataset_settings

    if dataset_settings(data)[0] != cfg.env:
        raise DatasetError(f"{data} was recorded with other environment settings than this diagnosis uses")
    agent = cfg.agent()
    if check_agent(agent, cfg.agent.label).inputs != "pixels":
        return {}
    runner, out = EpisodeRunner(), {"expert": Estimate(0.0, 0.0, 0.0, 1)}
    try:
        for split in SPLITS:
            errs: list[float] = []
            for ep in iter_episodes(data, split):
                if len(errs) >= cfg.offline_frames or ep.scenario not in cfg.scenarios:
                    continue
                errs += _replay(runner, agent, ep, cfg)
            if errs:
                out[split] = mean(errs[:cfg.offline_frames])
    finally:
        runner.close()
    return out


def _replay(runner: EpisodeRunner, agent, ep, cfg: DiagnoseConfig) -> list[float]:
    env = runner.env(ep.scenario, ep.split, cfg.env)
    env.reset(seed=ep.seed)  # for the episode's command, camera and limits
    task = EpisodeTask(cfg.agent.label, cfg.agent, "pixels", ep.scenario, ep.split, ep.index, ep.seed, cfg.env)
    agent.reset(episode_info(env, task))
    errs = []
    for t in range(len(ep.speed)):
        obs = Observation(stack_frames(ep.frames, t, cfg.env.camera.stack), float(ep.speed[t]), int(ep.command[t]))
        action = np.asarray(agent.act(obs), dtype=float).reshape(-1)
        errs.append(abs(float(action[-1]) - float(ep.action[t, 1])))
    return errs


def diagnosis_tables(diag: Diagnosis, markdown: bool = False) -> str:
    cols = ["expert", *SPLITS]
    body = [[name, *(v[c].fmt(3) if c in v else "-" for c in cols)] for name, v in diag.errors.items()]
    first = table(["error", "expert (human level)", *SPLITS], body, markdown)
    gap_body = [[gap, f"{b} - {a}", *(diag.gaps[e][gap].fmt(3) for e in ERRORS)] for gap, a, b in GAPS]
    second = table(["gap", "definition", *ERRORS], gap_body, markdown)
    advice = f"largest gap: {diag.largest} -> {ADVICE[diag.largest]}" if diag.largest else ""
    return f"{first}\n\n{second}\n\n{advice}"


def log_diagnosis(logdir: Path, diag: Diagnosis, text: Sequence[str]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    (Path(logdir) / "diagnosis.md").write_text("# Diagnosis\n\n" + "\n".join(text) + "\n")
    with SummaryWriter(str(Path(logdir) / "tb" / "diagnosis")) as writer:
        writer.add_text("study/diagnosis", "\n".join(text))
        for name, gaps in diag.gaps.items():
            for gap, e in gaps.items():
                if np.isfinite(e.mean):
                    writer.add_scalar(f"study/diagnosis/{ERRORS[name]}/{gap.replace(' ', '_')}", e.mean, 0)
