"""`steerbench eval`: paired episodes for several agents, resumable, in parallel workers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from tqdm import tqdm

from steerbench.agents.registry import AgentSpec, check_agent, check_camera
from steerbench.harness import rundir, summary
from steerbench.harness.backends import Backend
from steerbench.harness.heldout import seen_warnings
from steerbench.harness.parallel import run_episode, run_tasks
from steerbench.harness.results import ResultsStore, row_key
from steerbench.harness.tb import save_strip, write_tensorboard
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.runner import EnvSettings, EpisodeResult, EpisodeTask
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import CameraConfig


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: every agent drives the same episodes of every scenario on one split.

    Episode i of a split has the seed `episode_seed(split, i)` for every agent, so the same
    configuration gives the same episodes and agents are compared on paired episodes. `logdir` is
    created, or resumed and extended (rundir.py says what may be mixed).
    """

    agents: tuple[AgentSpec, ...]  # their labels name them in results.jsonl and every report
    scenarios: tuple[str, ...]
    split: str = "train"  # train, train-dev, dev or test
    episodes: int = 10  # per scenario
    seed: int = EVAL_START  # index of the first episode; episode i has seed episode_seed(split, seed + i)
    workers: int = 1  # worker processes (with Ray: actors, see Backend)
    logdir: Path = Path("runs/eval")  # the run directory
    env: EnvSettings = EnvSettings()  # camera, rates, mode; fixed for a run directory
    act_timeout_s: float = 10.0  # [s] per reset() or act() call; slower ends the episode as agent_error
    strip_episodes: int = 1  # per agent x scenario: how many episodes get a frame strip
    strip_frames: int = 8  # frames per strip (media/<agent>/...png)
    progress: bool = True  # a progress bar on stderr
    backend: Backend = Backend()  # where episodes run: worker processes here, or Ray (docs/ray.md)


@dataclass
class EvalOutcome:
    """What `run_eval` returns: the configured episodes' rows (reused ones included), their summary and
    paired comparisons."""

    run_dir: Path
    rows: list[dict]  # results.jsonl rows of the configured agents, scenarios, split and episodes
    groups: list[summary.Group]
    comparisons: list[summary.Comparison]  # the first agent against each other one
    ran: int  # episodes run now (the rest were already in results.jsonl)


def agent_inputs(specs: Sequence[AgentSpec], camera: CameraConfig = CameraConfig()) -> dict[str, dict]:
    """Build each agent once here: a bad option or checkpoint, or a camera the agent cannot drive
    with, fails now, with one clear line. `checkpoints` (the content of the files its options
    name) is part of the agent's identity in the run directory (rundir.prepare)."""
    meta = {}
    for spec in specs:
        agent = spec()
        info = check_agent(agent, spec.label)
        check_camera(agent, spec.label, camera)
        meta[spec.label] = {"inputs": info.inputs, "target": spec.target, "options": dict(spec.options),
                            "checkpoints": spec.file_hashes(), "description": info.description}
    return meta


def make_tasks(cfg: EvalConfig, meta: dict[str, dict], done: set) -> list[EpisodeTask]:
    """The configured episodes not in `done` (keys (label, scenario, split, index)), scenario-major: the
    episode of index i gets the seed `episode_seed(split, i)`, whichever agent drives it."""
    tasks = []
    for spec in cfg.agents:
        for scenario in cfg.scenarios:
            for i in range(cfg.seed, cfg.seed + cfg.episodes):
                key = (spec.label, scenario, cfg.split, i)
                if key in done:
                    continue
                strip = cfg.strip_frames if i - cfg.seed < cfg.strip_episodes else 0
                tasks.append(EpisodeTask(
                    agent=spec.label, factory=spec, inputs=meta[spec.label]["inputs"],
                    scenario=scenario, split=cfg.split, index=i, seed=episode_seed(cfg.split, i),
                    env=cfg.env, act_timeout_s=cfg.act_timeout_s, strip_frames=strip,
                ))
    # Scenario-major order keeps each worker's environments warm.
    return sorted(tasks, key=lambda t: (t.scenario, t.index, t.agent))


def run_eval(cfg: EvalConfig) -> EvalOutcome:
    """Run an evaluation, resuming `cfg.logdir`, and write its summary.md, summary.json and TensorBoard.

    Only the episodes missing from the run's results.jsonl are run; each row is appended as it
    finishes, so an interrupted run loses only the episodes under way. An agent that fails inside an
    episode (raises, times out, returns a bad action) has that episode recorded as `agent_error`;
    one that cannot be built or cannot drive with the camera raises AgentError before any episode,
    and a run directory made with other settings, or with another agent under the same label, raises
    RunDirError. Agents evaluated on episodes their checkpoint was trained on get a warning on stderr.
    """
    run_dir = Path(cfg.logdir)
    meta = agent_inputs(cfg.agents, cfg.env.camera)
    warnings = seen_warnings(cfg.agents, cfg.split, range(cfg.seed, cfg.seed + cfg.episodes))
    for w in warnings:
        print(w.line(), file=sys.stderr)
    rundir.prepare(
        run_dir, cfg, meta, notes={"evaluated_on_own_data": [w.as_dict() for w in warnings]} if warnings else None
    )
    store = ResultsStore(run_dir / "results.jsonl")
    if store.repaired:
        print(f"note: cut a torn last line from {store.path}", file=sys.stderr)
    tasks = make_tasks(cfg, meta, store.keys())
    total = len(cfg.agents) * len(cfg.scenarios) * cfg.episodes
    bar = tqdm(
        total=total,
        initial=total - len(tasks),
        desc="episodes",
        unit="ep",
        disable=not cfg.progress,
        dynamic_ncols=True,
    )
    ran = 0
    try:
        for result in _results(tasks, cfg.workers, cfg.backend):
            store.append(result.row())
            if result.strip:
                save_strip(run_dir, result.agent, result.scenario, result.split, result.index, result.strip)
            if result.overlays:
                save_strip(
                    run_dir, result.agent, f"{result.scenario}-overlay", result.split, result.index, result.overlays
                )
            ran += 1
            bar.update(1)
            bar.set_postfix_str(f"{result.agent}/{result.scenario}: {result.metrics['failure']}")
    finally:
        bar.close()
    return finish(run_dir, store, cfg, meta, ran)


def finish(run_dir: Path, store: ResultsStore, cfg: EvalConfig, meta: dict, ran: int) -> EvalOutcome:
    """Summarise the configured episodes into summary.md and summary.json, rebuild the TensorBoard view
    from every row of the run directory (earlier invocations' too), and return the outcome."""
    wanted = {
        (s.label, sc, cfg.split, i)
        for s in cfg.agents
        for sc in cfg.scenarios
        for i in range(cfg.seed, cfg.seed + cfg.episodes)
    }
    rows = [r for r in store if row_key(r) in wanted]
    labels = [s.label for s in cfg.agents]
    groups = summary.summarise(rows, {k: meta[k]["inputs"] for k in labels})
    comparisons = summary.compare(rows, labels)
    md = summary.summary_markdown(groups, comparisons)
    (run_dir / "summary.md").write_text(md)
    (run_dir / "summary.json").write_text(json.dumps(summary.summary_json(groups, comparisons), indent=2))
    all_groups = summary.summarise(store.rows, {k: v["inputs"] for k, v in rundir.agents_of(run_dir).items()})
    write_tensorboard(run_dir, store.rows, all_groups, rundir.agents_of(run_dir), md)
    return EvalOutcome(run_dir, rows, groups, comparisons, ran)


def _results(tasks: list[EpisodeTask], workers: int, backend: Backend | None = None) -> Iterator[EpisodeResult]:
    return run_tasks(run_episode, tasks, workers, backend)
