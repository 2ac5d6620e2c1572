"""Parallel speed-up of `steerbench eval`: `run_eval` with `--workers 2` against `--workers 1`.

Method. The same `EvalConfig` (agent, scenario, split, episodes; a fresh run directory each time)
runs with workers=1 (side A: episodes in this process) and workers=2 (side B: a pool of spawned
worker processes). The timer covers the whole `run_eval` call, so side B pays what a user pays:
spawning the workers, their imports (torch among them) and their first env and agent. The default
is the privileged expert on the highway (full-length episodes of 200 policy steps, about 5 s each
on one core), so each worker has several seconds of work per episode. The sides alternate
(A B A B ...); the speed-up is the median of the paired ratios A / B.

Target (project issue): speed-up >= 1.8 with 2 workers. On a 2-core machine where other jobs
run it cannot get there (the second worker competes for the same cores); the script reports what
it measured either way.
Usage: python bench/parallel_speedup.py [--agent expert] [--episodes 8] [--reps 2] [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Sequence

from benchlib import episode_parser, ratio_line

from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.runner import EnvSettings

TARGET = 1.8  # time with 1 worker / time with 2 workers


def run(agent: str, scenario: str, split: str, episodes: int, workers: int, fast: bool, logdir: Path) -> float:
    cfg = EvalConfig(agents=(AgentSpec(agent, resolve(agent)),), scenarios=(scenario,), split=split,
                     episodes=episodes, workers=workers, logdir=logdir, env=EnvSettings(fast=fast), progress=False)
    t0 = time.perf_counter()
    out = run_eval(cfg)
    seconds = time.perf_counter() - t0
    assert out.ran == episodes, "the run directory was not fresh"
    return seconds


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = episode_parser(__doc__, episodes=8, reps=2)
    p.add_argument("--agent", default="expert", help="registry name")
    a = p.parse_args(argv)
    if a.quick:
        a.agent, a.episodes, a.reps, a.fast_sim = "idle", 2, 1, True
    one, two, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            t1 = run(a.agent, a.scenario, a.split, a.episodes, 1, a.fast_sim, Path(tmp) / f"w1-{rep}")
            t2 = run(a.agent, a.scenario, a.split, a.episodes, 2, a.fast_sim, Path(tmp) / f"w2-{rep}")
            one.append(t1)
            two.append(t2)
            ratios.append(t1 / t2)
            print(f"rep {rep}: 1 worker {t1:.2f} s, 2 workers {t2:.2f} s, speed-up {t1 / t2:.2f}", flush=True)
    ratio = statistics.median(ratios)
    print(f"{a.agent} on {a.scenario}/{a.split}, {a.episodes} episodes x {a.reps} reps, {os.cpu_count()} CPUs; "
          f"median 1 worker {statistics.median(one):.2f} s, 2 workers {statistics.median(two):.2f} s "
          f"(worker start-up included; 2 workers took {statistics.median(two) - statistics.median(one) / 2:.2f} s "
          "more than half the 1-worker time: start-up, imports, contention)")
    ratio_line("parallel_speedup", ratio, "1-worker / 2-worker time, median of paired runs", TARGET, at_least=True)
    return {"parallel_speedup": ratio}


if __name__ == "__main__":
    main()
