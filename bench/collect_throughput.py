"""Collection throughput: `steerbench collect` (2 workers) against gymnasium's AsyncVectorEnv (2 envs).

Method. Side A: `collect()` with the expert teacher, workers=2, into a fresh directory: spawned
workers that each build the env and the expert, and per step run the expert, compute the
ground-truth box labels, keep the newest frame, speed, command and actions; per episode they write
a compressed `.npz` chunk (fsync, rename, SHA-256) and the parent appends `index.jsonl` and writes
`manifest.json`. Side B: `AsyncVectorEnv` with 2 `SteerEnv`s of the same scenario, split and camera
(spawned like collect's workers, shared-memory observations, autoreset off) replays the actions
the expert took in side A's first run, episode by episode with the same seeds, so it produces the
same episodes and the same number of frames with no agent, no labels and no files; when one env
has run out of episodes it idles with zero actions (padding steps, counted as time, not frames,
and printed). Both timers include starting the worker processes. The sides alternate
(A B A B ...); the ratio is the median of the paired ratios of frames/s, collect / vector env.

Target (project issue): collect's frames/s >= 0.9 x the vector env's.
Usage: python bench/collect_throughput.py [--episodes 8] [--reps 2] [--scenario highway] [--quick]
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from benchlib import episode_parser, ratio_line
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.collect import CollectConfig, collect
from steerbench.sim.dataset import iter_episodes
from steerbench.sim.env import SteerEnv
from steerbench.sim.runner import EnvSettings

TARGET = 0.9  # collect frames/s / vector-env frames/s
Replay = list[tuple[int, np.ndarray]]  # (seed, actions (T, 2)) per episode


def run_collect(scenario: str, split: str, episodes: int, fast: bool, out: Path) -> tuple[float, int]:
    cfg = CollectConfig(teacher=AgentSpec("expert", resolve("expert")), scenarios=(scenario,), split=split,
                        episodes=episodes, workers=2, out=out, env=EnvSettings(fast=fast), progress=False)
    t0 = time.perf_counter()
    manifest = collect(cfg)
    return time.perf_counter() - t0, int(manifest["total_frames"])


def run_vector(scenario: str, split: str, replay: Replay, fast: bool) -> tuple[float, int, int, int]:
    """Seconds, frames, padding steps and episodes whose replay did not end where the recording did."""
    queues: list[Replay] = [[], []]
    for ep in sorted(replay, key=lambda e: -len(e[1])):  # longest first onto the shorter queue
        min(queues, key=lambda q: sum(len(a) for _, a in q)).append(ep)
    t0 = time.perf_counter()
    envs = AsyncVectorEnv([functools.partial(SteerEnv, scenario, split, fast=fast)] * 2, context="spawn",
                          autoreset_mode=AutoresetMode.DISABLED)
    pos, t, frames, padding, diverged = [0, 0], [0, 0], 0, 0, 0
    envs.reset(seed=[q[0][0] if q else None for q in queues])
    while any(pos[i] < len(queues[i]) for i in range(2)):
        active = [pos[i] < len(queues[i]) for i in range(2)]
        actions = np.zeros((2, 2))
        for i in range(2):
            if active[i]:
                actions[i] = queues[i][pos[i]][1][t[i]]
        _, _, term, trunc, _ = envs.step(actions)
        mask, seeds = np.zeros(2, dtype=bool), [None, None]
        for i in range(2):
            if not active[i]:
                padding += 1
                continue
            frames, t[i] = frames + 1, t[i] + 1
            ended = bool(term[i] or trunc[i])
            if ended or t[i] == len(queues[i][pos[i]][1]):
                diverged += int(ended != (t[i] == len(queues[i][pos[i]][1])))
                pos[i], t[i] = pos[i] + 1, 0
                if pos[i] < len(queues[i]):
                    mask[i], seeds[i] = True, queues[i][pos[i]][0]
        if mask.any():
            envs.reset(seed=seeds, options={"reset_mask": mask})
    envs.close()
    return time.perf_counter() - t0, frames, padding, diverged


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = episode_parser(__doc__, episodes=8, reps=2)
    a = p.parse_args(argv)
    if a.quick:
        a.scenario, a.episodes, a.reps, a.fast_sim = "merge", 2, 1, True
    rates_a, rates_b, ratios = [], [], []
    replay: Replay = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            out = Path(tmp) / f"data{rep}"
            ta, fa = run_collect(a.scenario, a.split, a.episodes, a.fast_sim, out)
            if not replay:
                replay = [(ep.seed, ep.action.astype(np.float64)) for ep in iter_episodes(out, verify=False)]
            tb, fb, padding, diverged = run_vector(a.scenario, a.split, replay, a.fast_sim)
            if fa != fb or diverged:
                print(f"warning: the replay is not the recording ({fa} vs {fb} frames): frames/s still compared")
            rates_a.append(fa / ta)
            rates_b.append(fb / tb)
            ratios.append(rates_a[-1] / rates_b[-1])
            print(f"rep {rep}: collect {ta:.2f} s, vector env {tb:.2f} s ({padding} padding steps, "
                  f"{diverged} replays off the recording), {fa} frames, ratio {ratios[-1]:.3f}", flush=True)
    ratio = statistics.median(ratios)
    print(f"expert on {a.scenario}/{a.split}{' fast-sim' if a.fast_sim else ''}, {a.episodes} episodes x {a.reps} "
          f"reps; median collect {statistics.median(rates_a):.1f} frames/s, AsyncVectorEnv "
          f"{statistics.median(rates_b):.1f} frames/s (process start-up included on both sides)")
    ratio_line("collect_throughput", ratio, "collect / AsyncVectorEnv frames/s, median of paired runs", TARGET,
               at_least=True)
    return {"collect_throughput": ratio}


if __name__ == "__main__":
    main()
