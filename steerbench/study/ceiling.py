"""`steerbench ceiling`: Ng's ceiling analysis of the modular pipeline.

The modular agent is evaluated on paired episodes with its stages replaced by their oracles one
at a time, cumulatively and in pipeline order:

    pipeline         the agent as configured: any stages, built-in or a user's (`stages`)
    + true detection detector=ground_truth
    + true tracks    tracker=ground_truth (true positions and velocities)
    + map lanes      lanes=map
    expert           the privileged expert: what is left is planning and control

A row whose oracle the pipeline already has is left out (map lanes, most often). Replacing a
stage drops that stage's own options; the planner and controller stay the pipeline's in every
row, so a user's planner or controller is measured against the expert in the last gain.

Each row's gain over the row above (a paired difference, same seeds) is the part of the gap to
the expert that the stage it replaces accounts for; shares are given only where the gap itself
is resolved (its 95% interval excludes 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from steerbench.agents.modular import ModularOptions
from steerbench.agents.registry import BUILTIN, AgentSpec
from steerbench.agents.stage_registry import resolve_stage
from steerbench.harness.backends import Backend
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.intervals import Estimate, estimate, paired_difference
from steerbench.harness.summary import table
from steerbench.harness.tb import tb_dir
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.runner import EnvSettings


@dataclass(frozen=True)
class CeilingConfig:
    """`steerbench ceiling`: the modular pipeline set by `stages` (the modular agent's options as
    (KEY, VALUE) strings: `detector`, `lanes`, ..., `checkpoint`, a stage's own `detector.KEY`),
    its stages replaced by oracles one by one, and the expert, on the same episodes of one split."""

    scenarios: tuple[str, ...]
    split: str = "train"
    episodes: int = 10
    seed: int = EVAL_START  # index of the first episode: held out from every model's data
    workers: int = 1
    logdir: Path = Path("runs/ceiling")
    env: EnvSettings = EnvSettings()
    stages: tuple[tuple[str, str], ...] = (("detector", "classical"), ("lanes", "pixels"))  # the pipeline
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


ORACLES = (  # (row label, what it replaces, stage kind, its oracle), in pipeline order
    ("true_detection", "detection", "detector", "ground_truth"),
    ("true_tracks", "tracking", "tracker", "ground_truth"),
    ("map_lanes", "lane detection", "lanes", "map"),
)


def _stage_of(options: dict[str, str], kind: str) -> str:
    """The `module:Class` of the pipeline's `kind` stage (its default when the options name none)."""
    return resolve_stage(kind, options.get(kind, ModularOptions.__dataclass_fields__[kind].default))


def _replaced(options: dict[str, str], kind: str, oracle: str) -> dict[str, str]:
    """The options with the `kind` stage replaced by `oracle`, that stage's own options dropped."""
    own = {kind, "checkpoint"} if kind == "detector" else {kind}  # `checkpoint`: detector.checkpoint's shorthand
    kept = {k: v for k, v in options.items() if k not in own and not k.startswith(kind + ".")}
    return {**kept, kind: oracle}


def steps(cfg: CeilingConfig) -> list[Step]:
    """The ladder of the module docstring: the pipeline, the oracles added cumulatively in pipeline order
    (a row left out when the pipeline already has its oracle), then the expert."""
    options = dict(cfg.stages)
    ladder = [("pipeline", "", options)]
    for label, stage, kind, oracle in ORACLES:
        if _stage_of(options, kind) != resolve_stage(kind, oracle):
            options = _replaced(options, kind, oracle)
            ladder.append((label, stage, options))
    out = [Step(label, stage, AgentSpec(label, BUILTIN["modular"], tuple(opts.items())))
           for label, stage, opts in ladder]
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
    pipeline = ", ".join(f"{k}={v}" for k, v in cfg.stages) or "the modular agent's defaults"
    (out.run_dir / "ceiling.md").write_text(f"# Ceiling analysis\n\npipeline: {pipeline}\n\n{md}\n")
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
