"""`steerbench errors RUN`: Ng's error analysis of an evaluation run.

Every failed episode in `RUN/results.jsonl` (`metrics["failure"] != "none"`) is grouped by
agent, failure category and scenario. Categories are ranked per agent by the driving score
they cost:

    cost(agent, category) = sum over its failed episodes of (1 - driving score)
                            / the agent's number of episodes in the run

so a cost reads as "driving score lost per episode, on average, to this category"; the costs of
all categories plus the loss on successful episodes (`success_loss`) add up to
1 - the agent's mean driving score. Fixing the costliest category first is the recipe.

For the top `top` categories of each agent, `clips` failed episodes (the lowest index of each
scenario, costliest scenario first) are replayed with the same agent, scenario, split, seed and
environment settings, recording the last `clip_frames` frames and, for agents with an
`overlay()`, what the agent drew at those steps. A replay that ends in another category than
the one recorded is reported (the agent or the simulator was not deterministic).

Outputs, beside the run's other files:

* `errors.md`, `errors.json`: the ranked table, examples and clip paths;
* `media/errors/<agent>/<category>_<scenario>_<split>_<index>.png`: a clip, camera frames on the
  top row and the agent's overlays (when it draws any) below, oldest left, 2 px white gaps;
  column k shows the frame after step t and the overlay drawn when choosing step t's action;
* TensorBoard run `tb/errors`: text `errors` (the table), scalars
  `study/errors/<agent>/<category>/cost` and `.../episodes` (step 0), and the clips as images
  `errors/<agent>/<category>` with step = k, the clip's number within its category (the tag
  already names the category, so the step only tells its clips apart).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from steerbench.harness.backends import Backend
from steerbench.harness.results import row_key
from steerbench.harness.rundir import RunDirError
from steerbench.harness.summary import table


class ErrorsError(RunDirError):
    """A run directory that cannot be analysed (one line for the CLI)."""


@dataclass(frozen=True)
class ErrorsConfig:
    """`steerbench errors`: which run to analyse, and what to replay."""

    run_dir: Path
    top: int = 3  # categories per agent that get clips
    clips: int = 2  # replayed episodes per category
    clip_frames: int = 8  # last frames of each replayed episode
    workers: int = 1
    progress: bool = True
    backend: Backend = Backend()  # where replays run (docs/ray.md)
    act_timeout_s: float = 10.0  # per act() in replays (config.json does not record eval's)


@dataclass(frozen=True)
class EpisodeRef:
    """One failed episode of a group."""

    scenario: str
    split: str
    index: int
    seed: int
    driving_score: float

    @property
    def name(self) -> str:
        """`scenario/split/index`."""
        return f"{self.scenario}/{self.split}/{self.index}"


@dataclass(frozen=True)
class ScenarioErrors:
    """The (agent, category, scenario) cell: how many episodes and the cost they add."""

    scenario: str
    episodes: int
    cost: float


@dataclass(frozen=True)
class ErrorGroup:
    """One failure category of one agent: counts, cost, and its episodes in the order clips are picked."""

    agent: str
    category: str
    rank: int  # 1: the costliest category of this agent
    count: int  # failed episodes
    share: float  # of the agent's failed episodes
    cost: float  # driving score lost per episode of the agent (see the module docstring)
    scenarios: tuple[ScenarioErrors, ...]  # costliest first
    episodes: tuple[EpisodeRef, ...]  # all of them, in the order clips are picked


@dataclass(frozen=True)
class AgentErrors:
    """One agent's failures, its categories ranked by cost."""

    agent: str
    episodes: int
    failures: int
    mean_driving_score: float
    success_loss: float  # (1 - driving score) of successful episodes, per episode of the agent
    groups: tuple[ErrorGroup, ...]  # ranked


@dataclass(frozen=True)
class Clip:
    """One replayed failed episode and its image."""

    agent: str
    category: str  # as recorded in results.jsonl
    k: int  # number of the clip within its category
    episode: EpisodeRef
    replayed: str  # the category the replay ended in
    frames: int
    path: Path | None  # relative to the run directory; None when the replay had no frame

    @property
    def reproduced(self) -> bool:
        """True when the replay ended in the recorded category."""
        return self.replayed == self.category


@dataclass
class ErrorAnalysis:
    """The analysis of one run directory: every agent's ranked categories, and the replayed clips."""

    run_dir: Path
    agents: list[AgentErrors]
    clips: list[Clip] = field(default_factory=list)

    @property
    def groups(self) -> list[ErrorGroup]:
        """Every agent's groups, agent by agent, each agent's in rank order."""
        return [g for a in self.agents for g in a.groups]


# -- the analysis (pure) --------------------------------------------------------------------
def analyse(rows: Iterable[dict]) -> list[AgentErrors]:
    """Ranked failure categories per agent, from results.jsonl rows (agents in first-seen order)."""
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for r in {row_key(r): r for r in rows}.values():  # a key appears once even if a file repeats it
        by_agent[r["agent"]].append(r)
    return [_agent_errors(agent, rs) for agent, rs in by_agent.items()]


def _loss(row: dict) -> float:
    return 1.0 - float(row["metrics"]["driving_score"])


def _agent_errors(agent: str, rows: list[dict]) -> AgentErrors:
    n = len(rows)
    failed: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["metrics"]["failure"] != "none":
            failed[r["metrics"]["failure"]].append(r)
    total_failed = sum(len(v) for v in failed.values())
    groups = [_group(agent, cat, rs, n, total_failed) for cat, rs in failed.items()]
    groups.sort(key=lambda g: (-g.cost, -g.count, g.category))
    ranked = tuple(dataclasses.replace(g, rank=i + 1) for i, g in enumerate(groups))
    success_loss = sum(_loss(r) for r in rows if r["metrics"]["failure"] == "none") / n
    mean_score = float(np.mean([r["metrics"]["driving_score"] for r in rows]))
    return AgentErrors(agent, n, total_failed, mean_score, success_loss, ranked)


def _group(agent: str, category: str, rows: list[dict], n: int, total_failed: int) -> ErrorGroup:
    by_scenario: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_scenario[r["scenario"]].append(r)
    cells = sorted((ScenarioErrors(s, len(rs), sum(map(_loss, rs)) / n) for s, rs in by_scenario.items()),
                   key=lambda c: (-c.cost, c.scenario))
    queues = [sorted(by_scenario[c.scenario], key=lambda r: (int(r["index"]), r["split"])) for c in cells]
    return ErrorGroup(
        agent=agent, category=category, rank=0, count=len(rows), share=len(rows) / total_failed,
        cost=sum(map(_loss, rows)) / n, scenarios=tuple(cells), episodes=tuple(map(_ref, _interleave(queues))),
    )


def _interleave(queues: list[list[dict]]) -> list[dict]:
    """Round robin over scenarios: the first clips of a category show different scenarios."""
    out = []
    for i in range(max(map(len, queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def _ref(r: dict) -> EpisodeRef:
    return EpisodeRef(r["scenario"], r["split"], int(r["index"]), int(r["seed"]), float(r["metrics"]["driving_score"]))



# -- tables and files ------------------------------------------------------------------------
HEADER = ["agent", "rank", "category", "episodes", "share of failures", "driving-score cost",
          "scenarios", "examples"]


def errors_table(analysis: ErrorAnalysis, markdown: bool = False) -> str:
    """The ranked categories of every agent, with their scenarios and example episodes (clip paths
    where replayed)."""
    clips = {(c.agent, c.category, c.episode): c for c in analysis.clips}
    body = []
    for a in analysis.agents:
        if not a.groups:
            body.append([a.agent, "-", "(no failures)", "0", "-", "0.000", "-", "-"])
        for g in a.groups:
            body.append([a.agent, str(g.rank), g.category, str(g.count), f"{g.share:.0%}", f"{g.cost:.3f}",
                         ", ".join(f"{c.scenario} ({c.episodes})" for c in g.scenarios),
                         _examples(g, clips, markdown)])
    return table(HEADER, body, markdown)


def _examples(g: ErrorGroup, clips: dict, markdown: bool) -> str:
    shown = [c for c in (clips.get((g.agent, g.category, ep)) for ep in g.episodes) if c]
    if not shown:  # no clip: name the first episodes so they can be found
        return ", ".join(ep.name for ep in g.episodes[:2])
    out = []
    for c in shown:
        where = "no frames" if c.path is None else (f"[clip]({c.path.as_posix()})" if markdown else c.path.as_posix())
        note = "" if c.reproduced else f", replay: {c.replayed}"
        out.append(f"{c.episode.name} ({where}{note})")
    return ", ".join(out)


def errors_markdown(analysis: ErrorAnalysis) -> str:
    """The content of errors.md."""
    parts = ["# Error analysis", "", f"Run: `{analysis.run_dir}`", ""]
    if not analysis.groups:
        return "\n".join(parts + ["The run has no failed episodes.", ""])
    parts += ["Cost: driving score lost per episode of the agent to the category, "
              "(sum of 1 - driving score over its episodes) / (the agent's episodes).", "",
              errors_table(analysis, markdown=True), "", _totals(analysis)]
    odd = [c for c in analysis.clips if not c.reproduced]
    if odd:
        parts += ["", "## Replays that did not reproduce the recorded failure", ""]
        parts += [f"- {c.agent} {c.episode.name}: recorded {c.category}, replay ended in {c.replayed} "
                  "(the agent or the simulator is not deterministic)" for c in odd]
    return "\n".join(parts) + "\n"


def _totals(analysis: ErrorAnalysis) -> str:
    lines = [f"- {a.agent}: {a.failures}/{a.episodes} episodes failed, mean driving score "
             f"{a.mean_driving_score:.3f}; loss on successful episodes {a.success_loss:.3f} per episode"
             for a in analysis.agents]
    return "\n".join(lines)


def errors_json(analysis: ErrorAnalysis) -> dict:
    """The content of errors.json."""
    def plain(x: Any) -> Any:
        return json.loads(json.dumps(dataclasses.asdict(x), default=str))

    clips = [{**plain(c), "reproduced": c.reproduced} for c in analysis.clips]
    return {"run_dir": str(analysis.run_dir), "agents": [plain(a) for a in analysis.agents], "clips": clips}


def write_outputs(analysis: ErrorAnalysis) -> None:
    """Write errors.md, errors.json and the TensorBoard run tb/errors (rewritten whole)."""
    run_dir = analysis.run_dir
    md = errors_markdown(analysis)
    (run_dir / "errors.md").write_text(md)
    (run_dir / "errors.json").write_text(json.dumps(errors_json(analysis), indent=2))
    _tensorboard(analysis, md)


def _tensorboard(analysis: ErrorAnalysis, md: str) -> None:
    from torch.utils.tensorboard import SummaryWriter  # slow import, only when writing

    path = analysis.run_dir / "tb" / "errors"
    shutil.rmtree(path, ignore_errors=True)  # regenerated whole: a second analysis never duplicates
    with SummaryWriter(str(path)) as writer:
        writer.add_text("errors", md)
        for g in analysis.groups:
            writer.add_scalar(f"study/errors/{g.agent}/{g.category}/cost", g.cost, 0)
            writer.add_scalar(f"study/errors/{g.agent}/{g.category}/episodes", g.count, 0)
        for c in analysis.clips:
            image = cv2.imread(str(analysis.run_dir / c.path), cv2.IMREAD_COLOR) if c.path else None
            if image is not None:
                writer.add_image(f"errors/{c.agent}/{c.category}", image[..., ::-1].copy(), c.k, dataformats="HWC")
