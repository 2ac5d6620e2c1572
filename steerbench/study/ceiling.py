"""`steerbench ceiling`: Ng's ceiling analysis of the modular pipeline.

The modular agent is evaluated on paired episodes with its stages replaced by their oracles one
at a time, cumulatively and in pipeline order:

    pipeline         the agent as configured (detector D, Kalman tracker, lanes L)
    + true detection detector=ground_truth
    + true tracks    tracker=ground_truth (true positions and velocities)
    + map lanes      lanes=map (skipped when the pipeline already uses the map)
    expert           the privileged expert: what is left is planning and control

Each row's gain over the row above (a paired difference, same seeds) is the part of the gap to
the expert that the stage it replaces accounts for; shares are given only where the gap itself
is resolved (its 95% interval excludes 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.harness.backends import Backend
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.intervals import Estimate, estimate, paired_difference
from steerbench.harness.summary import table
from steerbench.harness.tb import tb_dir
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.runner import EnvSettings


@dataclass(frozen=True)
class CeilingConfig:
    """`steerbench ceiling`: the modular pipeline set by `detector`, `lanes` and `controller` (and
    `checkpoint` for the learned detector), its stages replaced by oracles one by one, and the
    expert, on the same episodes of one split."""

    scenarios: tuple[str, ...]
    split: str = "train"
    episodes: int = 10
    seed: int = EVAL_START  # index of the first episode: held out from every model's data
    workers: int = 1
    logdir: Path = Path("runs/ceiling")
    env: EnvSettings = EnvSettings()
    detector: str = "classical"  # the pipeline's own detector: classical or learned
    lanes: str = "pixels"  # the pipeline's own lanes: pixels or map
    controller: str = "pure_pursuit"
    checkpoint: str = ""  # the learned detector's weights
    progress: bool = True
    backend: Backend = Backend()  # where episodes run (docs/ray.md)


@dataclass(frozen=True)
class Step:
    """One row of the ladder: the agent's label, the stage its oracle replaces, and the agent."""

    label: str
    stage: str  # what this row's oracle replaces ("" for the first row)
    spec: AgentSpec


@dataclass
class CeilingRow:
    """One configuration in one scenario: its driving score, its paired gain over the row above, and
    its share of the pipeline's gap to the expert."""

    scenario: str
    label: str
    stage: str
    score: Estimate
    gain: Estimate | None  # over the row above, paired
    share: float | None  # of the pipeline's gap to the expert


@dataclass
class CeilingOutcome:
    """What `run_ceiling` returns."""

    run_dir: Path
    rows: list[CeilingRow] = field(default_factory=list)


def steps(cfg: CeilingConfig) -> list[Step]:
    """The ladder of the module docstring: the pipeline, the oracles added cumulatively in pipeline order
    (map lanes left out when the pipeline already uses the map), then the expert."""
    base = {"detector": cfg.detector, "lanes": cfg.lanes, "controller": cfg.controller}
    if cfg.checkpoint:
        base["checkpoint"] = cfg.checkpoint
    ladder = [("pipeline", "", {}), ("true_detection", "detection", {"detector": "ground_truth"}),
              ("true_tracks", "tracking", {"detector": "ground_truth", "tracker": "ground_truth"})]
    if cfg.lanes != "map":
        ladder.append(("map_lanes", "lane detection", {"detector": "ground_truth", "tracker": "ground_truth",
                                                       "lanes": "map"}))
    out = [Step(label, stage, AgentSpec(label, BUILTIN["modular"], tuple({**base, **extra}.items())))
           for label, stage, extra in ladder]
    out.append(Step("expert", "planning and control", AgentSpec("expert", BUILTIN["expert"])))
    return out


def run_ceiling(cfg: CeilingConfig) -> CeilingOutcome:
    """Evaluate the ladder on paired episodes (a resumable eval run in `logdir`), write ceiling.md and
    TensorBoard, and return the rows."""
    ladder = steps(cfg)
    out = run_eval(EvalConfig(
        agents=tuple(s.spec for s in ladder), scenarios=cfg.scenarios, split=cfg.split, episodes=cfg.episodes,
        seed=cfg.seed, workers=cfg.workers, logdir=cfg.logdir, env=cfg.env, progress=cfg.progress,
        backend=cfg.backend,
    ))
    result = CeilingOutcome(out.run_dir, ceiling_rows(out.rows, ladder, cfg.scenarios))
    md = ceiling_table(result.rows, markdown=True)
    (out.run_dir / "ceiling.md").write_text("# Ceiling analysis\n\n" + md + "\n")
    _log(out.run_dir, result.rows, md)
    return result


def ceiling_rows(rows: Sequence[dict], ladder: Sequence[Step], scenarios: Sequence[str]) -> list[CeilingRow]:
    """Per scenario, over the episodes every step ran: each step's driving score, its paired gain over
    the step above and, when the pipeline's gap to the expert is resolved, its share of that gap."""
    scores = {(r["agent"], r["scenario"], r["index"]): r["metrics"]["driving_score"] for r in rows}
    out = []
    for scenario in scenarios:
        idx = sorted({i for (a, s, i) in scores if s == scenario and a == ladder[0].label})
        idx = [i for i in idx if all((st.label, scenario, i) in scores for st in ladder)]
        if not idx:
            continue
        series = {st.label: [scores[(st.label, scenario, i)] for i in idx] for st in ladder}
        total = paired_difference(series[ladder[-1].label], series[ladder[0].label])
        # Shares of a gap that the episodes do not resolve (its interval holds 0) would be noise.
        resolved = total.low > 0 or total.high < 0 or (total.low == total.high and total.mean != 0)
        for k, st in enumerate(ladder):
            gain = paired_difference(series[st.label], series[ladder[k - 1].label]) if k else None
            share = gain.mean / total.mean if gain is not None and resolved else None
            out.append(
                CeilingRow(scenario, st.label, st.stage, estimate("driving_score", series[st.label]), gain, share)
            )
    return out


def ceiling_table(rows: Sequence[CeilingRow], markdown: bool = False) -> str:
    """The rows as a table (markdown or plain text)."""
    header = [
        "scenario",
        "configuration",
        "oracle replaces",
        "n",
        "driving score",
        "gain over row above",
        "share of gap to expert",
    ]
    body = [
        [
            r.scenario,
            r.label,
            r.stage or "-",
            str(r.score.n),
            r.score.fmt(),
            r.gain.fmt() if r.gain else "-",
            f"{r.share:+.0%}" if r.share is not None else "-",
        ]
        for r in rows
    ]
    return table(header, body, markdown)


def _log(run_dir: Path, rows: Sequence[CeilingRow], md: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tb_dir(run_dir, "ceiling"))) as writer:
        writer.add_text("study/ceiling", md)
        for r in rows:
            writer.add_scalar(f"study/ceiling/{r.scenario}/{r.label}/driving_score", r.score.mean, 0)
            if r.share is not None:
                writer.add_scalar(f"study/ceiling/{r.scenario}/{r.label}/share_of_gap", r.share, 0)
