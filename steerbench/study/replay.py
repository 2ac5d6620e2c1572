"""Replays of failed episodes for `steerbench errors` (steerbench.study.failures has the analysis):
the same agent, scenario, split, seed and environment settings, recording the last frames and
the agent's overlays as one clip image per episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from steerbench.agents.registry import AgentSpec, changed_files, check_agent, check_camera
from steerbench.harness.parallel import run_episode, run_tasks
from steerbench.harness.results import ResultsStore
from steerbench.sim.runner import EnvSettings, EpisodeResult, EpisodeTask
from steerbench.sim.storage import settings_from_json
from steerbench.study.failures import (
    Clip,
    ErrorAnalysis,
    ErrorGroup,
    ErrorsConfig,
    ErrorsError,
    analyse,
    write_outputs,
)

GAP_PX = 2  # white pixels between a clip's frames


# -- the command -----------------------------------------------------------------------------
def run_errors(cfg: ErrorsConfig) -> ErrorAnalysis:
    """Analyse the run's results, replay the top categories' clips and write the outputs.

    ErrorsError for a missing or unreadable run directory, an agent missing from its config.json, or
    an agent whose checkpoint files changed since the run (its failures cannot be replayed);
    AgentError for an agent that can no longer be built.
    """
    run_dir = Path(cfg.run_dir)
    config, rows = load_run(run_dir)
    analysis = ErrorAnalysis(run_dir, analyse(rows))
    analysis.clips = replay_clips(run_dir, config, analysis, cfg)
    write_outputs(analysis)
    return analysis


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """The run's config.json and results rows; ErrorsError when either file is missing or config.json is
    corrupt."""
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
    """The run's EnvSettings, back from its config.json."""
    try:
        return settings_from_json(env)
    except ValueError as exc:
        raise ErrorsError(f"config.json: {exc}") from None


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
    if recorded is not None and changed_files(recorded, spec.file_hashes()):
        raise ErrorsError(f"the files behind agent {label!r}'s options ({', '.join(sorted(recorded)) or 'none'}) "
                          "changed since the run; its failures cannot be replayed with other weights")
    return spec


def replay_clips(run_dir: Path, config: dict, analysis: ErrorAnalysis, cfg: ErrorsConfig) -> list[Clip]:
    """Replay the clips of `replay_tasks` (each agent's earlier clips deleted first) and save their
    images; the clips in agent, category and number order."""
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
    """Write `clip_image` as a PNG at `path` and return it; None (nothing written) without frames."""
    image = clip_image(frames, overlays)
    if image is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[..., ::-1])
    return path


