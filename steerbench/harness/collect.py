"""`steerbench collect`: roll out a teacher and record a dataset (format in sim/dataset.py)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from steerbench.agents.registry import AgentSpec, check_agent, check_camera
from steerbench.harness.backends import Backend
from steerbench.harness.parallel import run_tasks
from steerbench.planning.lane_labels import LaneLabeller
from steerbench.sim.dataset import (
    FORMAT_VERSION,
    LANE_LABELS_VERSION,
    DatasetError,
    DatasetIndex,
    chunk_path,
    record_episode,
    write_chunk,
)
from steerbench.sim.runner import EnvSettings, EpisodeRunner, episode_info
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.storage import atomic_write_json, check_stored, settings_from_json, settings_json


@dataclass(frozen=True)
class CollectConfig:
    """One `steerbench collect`: episodes `seed` .. `seed + episodes - 1` of each scenario on one split,
    driven by the teacher (or, with `driver`, by the driver and labelled by the teacher), into the
    dataset `out`."""

    teacher: AgentSpec
    scenarios: tuple[str, ...]
    split: str = "train"
    episodes: int = 10  # per scenario
    seed: int = 0  # index of the first episode
    workers: int = 1
    out: Path = Path("data/dataset")  # dataset directory: created, or resumed
    env: EnvSettings = EnvSettings()  # fixed for a dataset
    noise_std: float = 0.0  # steering noise added to the executed action (labels stay clean)
    noise_fraction: float = 0.5  # share of episodes that get the noise
    driver: AgentSpec | None = None  # DAgger: this agent drives, the teacher only labels
    progress: bool = True
    backend: Backend = Backend()  # where episodes run; with Ray the workers write the chunks (docs/ray.md)


@dataclass(frozen=True)
class Builder:
    """What EpisodeRunner.agent() needs to build (and cache) an agent in a worker."""

    agent: str
    factory: AgentSpec


@dataclass(frozen=True)
class CollectTask:
    """One episode to record, as a worker gets it (picklable)."""

    agent: str  # label and factory: what EpisodeRunner.agent() needs to build the teacher
    factory: AgentSpec
    inputs: str
    scenario: str
    split: str
    index: int
    seed: int
    env: EnvSettings
    noise_std: float  # 0 for an episode without noise
    root: str  # the dataset directory
    driver: AgentSpec | None = None  # DAgger's student, who drives; None: the teacher drives
    driver_inputs: str = "pixels"


def _collect(runner: EpisodeRunner, task: CollectTask) -> dict:
    env = runner.env(task.scenario, task.split, task.env)
    driver = None if task.driver is None else runner.agent(Builder("driver:" + task.driver.label, task.driver))
    labeller = LaneLabeller()  # one per episode: it follows the ego's lane across segment ends
    arrays = record_episode(
        env, runner.agent(task), task.seed, lambda e: episode_info(e, task), task.noise_std,
        lambda e, obs: EpisodeRunner._observation(e, obs, task.inputs),
        driver, lambda e, obs: EpisodeRunner._observation(e, obs, task.driver_inputs),
        extras=lambda e: labeller(e.road_prior()),
    )
    arrays["lane_s"] = labeller.s.astype(np.float32)
    path = chunk_path(Path(task.root), task.scenario, task.split, task.index)
    digest = write_chunk(path, arrays)
    return {
        "path": str(path.relative_to(task.root)), "sha256": digest, "scenario": task.scenario,
        "split": task.split, "index": task.index, "seed": task.seed, "steps": int(len(arrays["speed"])),
        "boxes": int(len(arrays["box_step"])), "noise_std": task.noise_std,
        "driver": task.driver.label if task.driver is not None else task.agent, "lane_labels": LANE_LABELS_VERSION,
    }


def _check_settings(root: Path, settings: dict) -> None:
    check_stored(root / "manifest.json", "env", settings, DatasetError,
                 conflict=lambda stored: f"{root} holds data recorded with other settings; use another --out")


def collect(cfg: CollectConfig) -> dict:
    """Record the missing episodes into `cfg.out` and rewrite its manifest, which it returns.

    Resumable: episodes already in the dataset's index are skipped. With `noise_std` > 0 an episode
    gets the noise with probability `noise_fraction`, decided by its seed (the same episodes every
    time). DatasetError when `out` cannot be created or holds data recorded with other environment
    settings; AgentError for a teacher or driver that cannot be built (or a driver that cannot drive
    with the camera).
    """
    root = Path(cfg.out)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {root}: {exc.strerror or exc}") from None
    settings = settings_json(cfg.env)
    _check_settings(root, settings)
    info = check_agent(cfg.teacher(), cfg.teacher.label)
    driver_inputs = "pixels"
    if cfg.driver is not None:  # a DAgger student: built once here, so a bad one fails in one line now
        driver = cfg.driver()
        driver_inputs = check_agent(driver, cfg.driver.label).inputs
        check_camera(driver, cfg.driver.label, cfg.env.camera)
    index = DatasetIndex(root)
    done = index.keys()
    tasks = []
    for scenario in cfg.scenarios:
        for i in range(cfg.seed, cfg.seed + cfg.episodes):
            if (scenario, cfg.split, i) in done:
                continue
            seed = episode_seed(cfg.split, i)
            noisy = cfg.noise_std > 0 and np.random.default_rng(seed + 1).uniform() < cfg.noise_fraction
            tasks.append(CollectTask(cfg.teacher.label, cfg.teacher, info.inputs, scenario, cfg.split, i, seed,
                                     cfg.env, cfg.noise_std if noisy else 0.0, str(root), cfg.driver, driver_inputs))
    total = len(cfg.scenarios) * cfg.episodes
    with tqdm(total=total, initial=total - len(tasks), desc="collect", unit="ep", disable=not cfg.progress) as bar:
        for row in run_tasks(_collect, tasks, cfg.workers, cfg.backend):
            index.append(row)
            bar.update(1)
    return write_manifest(root, index, settings, cfg.teacher)


def write_manifest(root: Path, index: DatasetIndex, settings: dict, teacher: AgentSpec) -> dict:
    """Write manifest.json atomically (format version, environment settings, `teacher`, frames and
    episodes per scenario/split, counted from the index) and return it."""
    frames, episodes = Counter(), Counter()
    for r in index.rows:
        frames[f"{r['scenario']}/{r['split']}"] += r["steps"]
        episodes[f"{r['scenario']}/{r['split']}"] += 1
    manifest = {
        "format_version": FORMAT_VERSION, "env": settings,
        "teacher": {"label": teacher.label, "target": teacher.target, "options": dict(teacher.options)},
        "frames": dict(frames), "episodes": dict(episodes), "total_frames": sum(frames.values()),
    }
    atomic_write_json(root / "manifest.json", manifest, indent=2)
    return manifest


def dataset_settings(data: Path) -> tuple[EnvSettings, tuple[str, ...]]:
    """The environment settings a dataset was recorded with (DAgger's rollouts must match them)
    and the scenarios of its train episodes."""
    try:
        manifest = json.loads((Path(data) / "manifest.json").read_text())
        settings = settings_from_json(manifest["env"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{data}: no readable manifest.json of steerbench collect ({exc})") from None
    scenarios = tuple(sorted({k.split("/")[0] for k in manifest.get("frames", {}) if k.endswith("/train")}))
    return settings, scenarios
