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
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from steerbench.agents.registry import AgentSpec, check_agent, check_camera
from steerbench.sim.runner import EnvSettings, EpisodeResult, EpisodeTask
from steerbench.sim.types import CameraConfig

from .backends import Backend
from .parallel import run_episode, run_tasks
from .report import table
from .results import ResultsStore, row_key
from .rundir import RunDirError

GAP_PX = 2


class ErrorsError(RunDirError):
    """A run directory that cannot be analysed (one line for the CLI)."""


@dataclass(frozen=True)
class ErrorsConfig:
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
        return f"{self.scenario}/{self.split}/{self.index}"


@dataclass(frozen=True)
class ScenarioErrors:
    """The (agent, category, scenario) cell: how many episodes and the cost they add."""

    scenario: str
    episodes: int
    cost: float


@dataclass(frozen=True)
class ErrorGroup:
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
    agent: str
    episodes: int
    failures: int
    mean_driving_score: float
    success_loss: float  # (1 - driving score) of successful episodes, per episode of the agent
    groups: tuple[ErrorGroup, ...]  # ranked


@dataclass(frozen=True)
class Clip:
    agent: str
    category: str  # as recorded in results.jsonl
    k: int  # number of the clip within its category
    episode: EpisodeRef
    replayed: str  # the category the replay ended in
    frames: int
    path: Path | None  # relative to the run directory; None when the replay had no frame

    @property
    def reproduced(self) -> bool:
        return self.replayed == self.category


@dataclass
class ErrorAnalysis:
    run_dir: Path
    agents: list[AgentErrors]
    clips: list[Clip] = field(default_factory=list)

    @property
    def groups(self) -> list[ErrorGroup]:
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


# -- the command -----------------------------------------------------------------------------
def run_errors(cfg: ErrorsConfig) -> ErrorAnalysis:
    run_dir = Path(cfg.run_dir)
    config, rows = load_run(run_dir)
    analysis = ErrorAnalysis(run_dir, analyse(rows))
    analysis.clips = replay_clips(run_dir, config, analysis, cfg)
    write_outputs(analysis)
    return analysis


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    if not run_dir.is_dir():
        raise ErrorsError(f"no run directory {run_dir}")
    for name in ("config.json", "results.jsonl"):
        if not (run_dir / name).is_file():
            raise ErrorsError(f"{run_dir} has no {name}; give the directory of a `steerbench eval` run")
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except ValueError:
        raise ErrorsError(f"{run_dir / 'config.json'} is corrupt") from None
    return config, ResultsStore(run_dir / "results.jsonl").rows


def env_settings(env: dict) -> EnvSettings:
    """EnvSettings back from config.json's `dataclasses.asdict` form (JSON turned tuples into lists)."""
    try:
        camera = CameraConfig(**{k: _tuples(v) for k, v in env.get("camera", {}).items()})
        rest = {k: _tuples(v) for k, v in env.items() if k != "camera"}
        return EnvSettings(camera=camera, **rest)
    except TypeError as exc:
        raise ErrorsError(f"config.json's env settings do not fit this version of steerbench: {exc}") from None


def _tuples(v: Any) -> Any:
    return tuple(map(_tuples, v)) if isinstance(v, list) else v


def replay_tasks(config: dict, analysis: ErrorAnalysis, cfg: ErrorsConfig) -> list[tuple[ErrorGroup, int, EpisodeTask]]:
    """(group, k, task) for the first `clips` episodes of each agent's top `top` categories."""
    env = env_settings(config.get("env", {}))
    specs: dict[str, AgentSpec] = {}
    out = []
    for group in (g for g in analysis.groups if g.rank <= cfg.top and cfg.clips > 0):
        meta = config.get("agents", {}).get(group.agent)
        if meta is None:
            raise ErrorsError(f"agent {group.agent!r} has results but no entry in config.json")
        if group.agent not in specs:  # built once here: a moved or changed checkpoint fails now, in one line
            specs[group.agent] = _replayable(group.agent, meta, env)
        spec = specs[group.agent]
        for k, ep in enumerate(group.episodes[:cfg.clips]):
            out.append((group, k, EpisodeTask(
                agent=group.agent, factory=spec, inputs=meta["inputs"], scenario=ep.scenario, split=ep.split,
                index=ep.index, seed=ep.seed, env=env, act_timeout_s=cfg.act_timeout_s, tail_frames=cfg.clip_frames,
            )))
    return out


def _replayable(label: str, meta: dict, env: EnvSettings) -> AgentSpec:
    """The run's agent, checked to be the one that made its rows: the same files behind its options."""
    spec = AgentSpec(label, meta["target"], tuple(meta.get("options", {}).items()))
    agent = spec()
    check_agent(agent, label)
    check_camera(agent, label, env.camera)
    recorded = meta.get("checkpoints")  # None: a run from before checkpoints were hashed
    if recorded is not None and spec.file_hashes() != recorded:
        raise ErrorsError(f"the files behind agent {label!r}'s options ({', '.join(sorted(recorded)) or 'none'}) "
                          "changed since the run; its failures cannot be replayed with other weights")
    return spec


def replay_clips(run_dir: Path, config: dict, analysis: ErrorAnalysis, cfg: ErrorsConfig) -> list[Clip]:
    jobs = replay_tasks(config, analysis, cfg)
    for a in analysis.agents:  # regenerated whole: no clip of an earlier analysis lingers
        shutil.rmtree(run_dir / "media" / "errors" / a.agent, ignore_errors=True)
    by_key = {task.key: (group, k) for group, k, task in jobs}
    clips = []
    with tqdm(total=len(jobs), desc="replays", unit="ep", disable=not cfg.progress, dynamic_ncols=True) as bar:
        for result in run_tasks(run_episode, [t for _, _, t in jobs], cfg.workers, cfg.backend):
            group, k = by_key[(result.agent, result.scenario, result.split, result.index)]
            clips.append(_clip(run_dir, group, k, result))
            bar.update(1)
            bar.set_postfix_str(f"{result.agent}/{group.category}")
    return sorted(clips, key=lambda c: (c.agent, c.category, c.k))


def _clip(run_dir: Path, group: ErrorGroup, k: int, result: EpisodeResult) -> Clip:
    ep = group.episodes[k]
    rel = Path("media", "errors", group.agent, f"{group.category}_{ep.scenario}_{ep.split}_{ep.index}.png")
    path = save_clip(run_dir / rel, result.tail, result.tail_overlays)
    return Clip(group.agent, group.category, k, ep, result.metrics["failure"], len(result.tail),
                rel if path else None)


# -- images ----------------------------------------------------------------------------------
def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def _row(images: Sequence[np.ndarray]) -> np.ndarray:
    h = images[0].shape[0]
    gap = np.full((h, GAP_PX, 3), 255, dtype=np.uint8)
    parts = [p for im in images for p in (im, gap)][:-1]
    return np.concatenate(parts, axis=1)


def clip_image(frames: Sequence[np.ndarray], overlays: Sequence[np.ndarray | None] = ()) -> np.ndarray | None:
    """Frames in a row (RGB), overlays below at the frames' size (black where none was drawn)."""
    if not len(frames):
        return None
    top = [_rgb(f) for f in frames]
    h, w = top[0].shape[:2]
    if not any(o is not None for o in overlays):
        return _row(top)
    # Overlays may be drawn at another scale: resized, the columns stay aligned with the frames.
    bottom = [np.zeros((h, w, 3), np.uint8) if o is None
              else cv2.resize(_rgb(o), (w, h), interpolation=cv2.INTER_NEAREST) for o in overlays]
    gap = np.full((GAP_PX, _row(top).shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([_row(top), gap, _row(bottom)], axis=0)


def save_clip(path: Path, frames: Sequence[np.ndarray], overlays: Sequence[np.ndarray | None] = ()) -> Path | None:
    image = clip_image(frames, overlays)
    if image is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[..., ::-1])
    return path


# -- tables and files ------------------------------------------------------------------------
HEADER = ["agent", "rank", "category", "episodes", "share of failures", "driving-score cost",
          "scenarios", "examples"]


def errors_table(analysis: ErrorAnalysis, markdown: bool = False) -> str:
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
    def plain(x: Any) -> Any:
        return json.loads(json.dumps(dataclasses.asdict(x), default=str))

    clips = [{**plain(c), "reproduced": c.reproduced} for c in analysis.clips]
    return {"run_dir": str(analysis.run_dir), "agents": [plain(a) for a in analysis.agents], "clips": clips}


def write_outputs(analysis: ErrorAnalysis) -> None:
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
