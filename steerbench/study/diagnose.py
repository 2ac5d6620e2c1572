"""`steerbench diagnose`: Ng's bias / variance / mismatch table for a learned agent.

The agent and the expert (the human-level reference) drive the same number of episodes on each
of the four splits; errors are 1 - success and 1 - driving score (closed loop) and, with a
dataset, the mean absolute steering error against the expert's labels (open loop, the agent
replaying recorded episodes: pixel agents only, since a dataset holds no map). The gaps:

    avoidable bias     excess on train
    variance           excess on train-dev - excess on train
    data mismatch      excess on dev - excess on train-dev
    overfitting to dev excess on test - excess on dev

where a split's excess is the agent's error minus the expert's on the same episodes of that split
(human-level error per distribution, as Ng specifies: a split that is harder for every driver
is not the agent's data mismatch). Every episode is from the evaluation range of sim.episodes,
held out from the agent's training and early-stopping data. Each gap has a 95% interval (paired
t for the first; Welch's t between the independent episode sets of two splits for the others);
the recipe's advice goes with the largest gap whose interval lies above 0, and when none does,
the report says so and estimates how many episodes would resolve the largest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats as sps

from steerbench.agents.registry import BUILTIN, AgentSpec, check_agent
from steerbench.harness.backends import Backend
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.intervals import Estimate, estimate, mean, paired_difference
from steerbench.harness.summary import table
from steerbench.sim.dataset import DatasetError, iter_episodes, stack_frames
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.types import SPLITS, Observation

ERRORS = {"1 - driving score": "driving_score", "1 - success": "success"}
GAPS = (("avoidable bias", "expert", "train"), ("variance", "train", "train-dev"),
        ("data mismatch", "train-dev", "dev"), ("overfitting to dev", "dev", "test"))
ADVICE = {
    "avoidable bias": "train a bigger model, train longer, or change the architecture",
    "variance": "get more training data (DAgger rollouts, more episodes), regularise (augmentation), stop earlier",
    "data mismatch": "make the training data more like the test distribution "
                     "(collect or synthesise it, augment appearance)",
    "overfitting to dev": "get a bigger dev set",
}


@dataclass(frozen=True)
class DiagnoseConfig:
    """`steerbench diagnose`: one agent and the expert on the same episodes of every split, and, with
    `data`, the agent's open-loop steering error on that dataset."""

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


@dataclass(frozen=True)
class SplitError:
    """One error on one split: the expert's (human level), the agent's, and the agent's excess
    over the expert on the same episodes (paired)."""

    expert: Estimate
    agent: Estimate
    excess: Estimate


@dataclass(frozen=True)
class Unresolved:
    """No gap's interval excludes 0: the largest one, and the episodes it would take to resolve it."""

    gap: str
    episodes_per_split: int  # at the interval width measured now, shrinking as 1 / sqrt(n)


@dataclass
class Diagnosis:
    """The errors per split, Ng's gaps, and the gap to work on first."""

    errors: dict[str, dict[str, SplitError]] = field(default_factory=dict)  # error -> split -> estimates
    gaps: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # error -> gap -> estimate
    largest: str = ""  # the largest gap whose interval lies above 0; "" when none does
    unresolved: Unresolved | None = None  # set when no gap is resolved


def run_diagnose(cfg: DiagnoseConfig) -> Diagnosis:
    """Evaluate the agent and the expert on every split (resumable eval runs in `logdir`) and diagnose;
    with `data`, add the open-loop steering error (DatasetError when the dataset was recorded with
    other environment settings). The agent's label must not be "expert"."""
    expert = AgentSpec("expert", BUILTIN["expert"])
    per_split = {}
    for split in SPLITS:  # the expert drives the same held-out episodes of every split as the agent
        out = run_eval(
            EvalConfig(
                agents=(cfg.agent, expert),
                scenarios=cfg.scenarios,
                split=split,
                episodes=cfg.episodes,
                seed=cfg.seed,
                workers=cfg.workers,
                logdir=cfg.logdir,
                env=cfg.env,
                progress=cfg.progress,
                backend=cfg.backend,
            )
        )
        per_split[split] = out.rows
    diag = closed_loop(per_split, cfg.agent.label)
    if cfg.data is not None:
        diag.errors["steering MAE (open loop)"] = offline_errors(cfg, Path(cfg.data))
    return diag


def closed_loop(per_split: dict[str, list[dict]], label: str) -> Diagnosis:
    """Ng's gaps from excesses over the expert: each split's agent - expert error on the same
    episodes, so that a split that is harder for every driver is not read as the agent's gap."""
    diag = Diagnosis()
    for name, metric in ERRORS.items():
        excess: dict[str, np.ndarray] = {}
        diag.errors[name] = {}
        for split, rows in per_split.items():
            agent, expert = (_errors(rows, who, metric) for who in (label, "expert"))
            keys = sorted(set(agent) & set(expert))
            excess[split] = np.array([agent[k] - expert[k] for k in keys])
            diag.errors[name][split] = SplitError(
                expert=estimate(metric, [expert[k] for k in keys]),
                agent=estimate(metric, [agent[k] for k in keys]),
                excess=paired_difference([agent[k] for k in keys], [expert[k] for k in keys]),
            )
        diag.gaps[name] = {gap: _gap(excess, a, b) for gap, a, b in GAPS}
    diag.largest, diag.unresolved = _largest(diag.gaps["1 - driving score"])
    return diag


def _errors(rows: list[dict], agent: str, metric: str) -> dict[tuple, float]:
    return {(r["scenario"], r["index"]): 1.0 - r["metrics"][metric] for r in rows if r["agent"] == agent}


def _gap(excess: dict[str, np.ndarray], low: str, high: str) -> Estimate:
    """Excess on `high` - excess on `low` ("expert" as `low`: the train split's excess itself),
    with a 95% interval: paired t for avoidable bias, Welch's t between the independent episode
    sets of two splits for the others."""
    if low == "expert":
        return mean(excess[high])
    a, b = excess.get(high, np.zeros(0)), excess.get(low, np.zeros(0))
    if len(a) < 2 or len(b) < 2:
        return Estimate(
            float(a.mean() - b.mean()) if len(a) and len(b) else float("nan"),
            float("nan"),
            float("nan"),
            min(len(a), len(b)),
        )
    if a.std() == 0 and b.std() == 0:
        d = float(a.mean() - b.mean())
        return Estimate(d, d, d, min(len(a), len(b)))
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return Estimate(float(a.mean() - b.mean()), float(ci.low), float(ci.high), min(len(a), len(b)))


def _largest(gaps: dict[str, Estimate]) -> tuple[str, Unresolved | None]:
    """The largest gap among those resolved above 0; else the largest by mean, with the episodes
    per split that would make its interval exclude 0 (if its mean held)."""
    resolved = {g: e for g, e in gaps.items() if np.isfinite(e.low) and e.low > 0}
    if resolved:
        return max(resolved, key=lambda g: resolved[g].mean), None
    finite = {g: e for g, e in gaps.items() if np.isfinite(e.mean) and e.mean > 0}
    if not finite:
        return "", None
    gap = max(finite, key=lambda g: finite[g].mean)
    e = finite[gap]
    if not np.isfinite(e.low) or e.n < 2:
        return "", Unresolved(gap, 0)
    half = (e.high - e.low) / 2
    return "", Unresolved(gap, int(math.ceil(e.n * (half / e.mean) ** 2)))


def offline_errors(cfg: DiagnoseConfig, data: Path) -> dict[str, SplitError]:
    """|agent steering - expert label| on recorded episodes, per split; the expert's own is 0.
    The dataset's train episodes are the agent's training data (its training error, by
    definition) and its train-dev episodes were its early-stopping data: the closed-loop rows,
    on held-out episodes, are the diagnosis; this row says whether imitation itself is learnt."""
    from steerbench.harness.collect import dataset_settings

    if dataset_settings(data)[0] != cfg.env:
        raise DatasetError(f"{data} was recorded with other environment settings than this diagnosis uses")
    agent = cfg.agent()
    if check_agent(agent, cfg.agent.label).inputs != "pixels":
        return {}
    runner, out, zero = EpisodeRunner(), {}, Estimate(0.0, 0.0, 0.0, 1)
    try:
        for split in SPLITS:
            errs: list[float] = []
            for ep in iter_episodes(data, split):
                if len(errs) >= cfg.offline_frames or ep.scenario not in cfg.scenarios:
                    continue
                errs += _replay(runner, agent, ep, cfg)
            if errs:
                agent_error = mean(errs[: cfg.offline_frames])
                out[split] = SplitError(expert=zero, agent=agent_error, excess=agent_error)
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
    """The errors per split, the gaps and the verdict, as text or markdown."""
    body = [
        [name, split, e.expert.fmt(3), e.agent.fmt(3), e.excess.fmt(3)]
        for name, per_split in diag.errors.items()
        for split, e in per_split.items()
    ]
    first = table(["error", "split", "expert (human level)", "agent", "agent - expert"], body, markdown)
    gap_body = [[gap, _definition(a, b), *(diag.gaps[e][gap].fmt(3) for e in ERRORS)] for gap, a, b in GAPS]
    second = table(["gap", "definition (excess = agent - expert)", *ERRORS], gap_body, markdown)
    return f"{first}\n\n{second}\n\n{verdict(diag)}"


def _definition(low: str, high: str) -> str:
    return f"excess on {high}" if low == "expert" else f"excess on {high} - excess on {low}"


def verdict(diag: Diagnosis) -> str:
    """One line: the largest resolved gap and its remedy, or why there is none."""
    if diag.largest:
        return f"largest resolved gap: {diag.largest} -> {ADVICE[diag.largest]}"
    u = diag.unresolved
    if u is None:
        return "no gap is resolved, and none is positive: nothing to fix at this precision"
    more = f"; about {u.episodes_per_split} episodes per split would resolve it" if u.episodes_per_split else ""
    return f"no gap is resolved (every 95% interval includes 0); the largest is {u.gap}{more}"


def log_diagnosis(logdir: Path, diag: Diagnosis, text: Sequence[str]) -> None:
    """Write LOGDIR/diagnosis.md (the lines of `text`) and the gaps to TensorBoard (tb/diagnosis)."""
    from torch.utils.tensorboard import SummaryWriter

    (Path(logdir) / "diagnosis.md").write_text("# Diagnosis\n\n" + "\n".join(text) + "\n")
    with SummaryWriter(str(Path(logdir) / "tb" / "diagnosis")) as writer:
        writer.add_text("study/diagnosis", "\n".join(text))
        for name, gaps in diag.gaps.items():
            for gap, e in gaps.items():
                if np.isfinite(e.mean):
                    writer.add_scalar(f"study/diagnosis/{ERRORS[name]}/{gap.replace(' ', '_')}", e.mean, 0)
