"""Harness overhead: `run_eval` against a bare gymnasium loop over the same env, seeds and actions.

Method. Side A, bare: `gymnasium.make("steerbench/<scenario>-v0", split=..., disable_env_checker=True)`
(the registered id builds the same `SteerEnv`; gymnasium's order-enforcing wrapper costs
microseconds per step), then `reset(seed=episode_seed(split, i))` and `step(zeros(2))` until the
episode ends, for the first N episodes of the evaluation range (`run_eval`'s default), then
`close()`. Side B, harness: `run_eval` with the `idle` agent (it returns zeros(2), the same
constant action) on the same scenario, split and episodes,
one worker, in a fresh run directory each time: everything `steerbench eval` does is inside the
timer (agent check, config.json with git SHA and package versions, EpisodeRunner with the
per-step time limit and Observation building, episode metrics, results.jsonl appends with fsync,
the default frame strip of episode 0, summary.md/json and the whole TensorBoard rewrite). Only the
progress bar is off. Both sides build their env inside the timer. The sides alternate
(A B, B A, ...) after one untimed warm-up of each; the ratio is the median of the paired ratios
B / A, of wall time and, as a second line, of this process's CPU time (which leaves out time
the process waited for a CPU: other jobs, a VM's steal time). With a constant action the
highway episodes end early (off road, about 45 steps), so the per-episode costs weigh more than
in real evaluations: a pessimistic setting.

Target (project issue): harness overhead under 5 %, i.e. ratio <= 1.05.
Usage: python bench/harness_overhead.py [--episodes 20] [--reps 3] [--scenario highway] [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import gymnasium
import numpy as np
from benchlib import episode_parser, ratio_line

from steerbench.agents.registry import AgentSpec
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.registration import env_id
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenarios import episode_seed

TARGET = 1.05  # harness time / bare time


def bare(scenario: str, split: str, episodes: int, fast: bool) -> int:
    """The bare gymnasium loop; returns the number of steps taken."""
    env = gymnasium.make(env_id(scenario), split=split, fast=fast, disable_env_checker=True)
    steps = 0
    for i in range(EVAL_START, EVAL_START + episodes):  # run_eval's default episodes
        env.reset(seed=episode_seed(split, i))
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(np.zeros(2))
            done = term or trunc
            steps += 1
    env.close()
    return steps


def harness(scenario: str, split: str, episodes: int, fast: bool, logdir: Path) -> int:
    """`run_eval` with the idle agent; returns the number of steps taken (from results.jsonl)."""
    cfg = EvalConfig(agents=(AgentSpec("idle", "steerbench.agents.reference:IdleAgent"),), scenarios=(scenario,),
                     split=split, episodes=episodes, workers=1, logdir=logdir, env=EnvSettings(fast=fast),
                     progress=False)
    out = run_eval(cfg)
    assert out.ran == episodes, "the run directory was not fresh"
    return int(sum(r["metrics"]["steps"] for r in out.rows))


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """Wall time, this process's CPU time (both sides run in this process), steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    steps = fn()
    return time.perf_counter() - t0, time.process_time() - c0, steps


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = episode_parser(__doc__, episodes=20, reps=3)
    a = p.parse_args(argv)
    if a.quick:
        a.episodes, a.reps = 1, 2
    a_times, b_times, ratios, cpu_ratios = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        bare(a.scenario, a.split, 1, a.fast_sim)  # warm-up: pygame, first env, caches
        harness(a.scenario, a.split, 1, a.fast_sim, Path(tmp) / "warmup")
        for rep in range(a.reps):
            sides = {"A": lambda: timed(lambda: bare(a.scenario, a.split, a.episodes, a.fast_sim)),
                     "B": lambda: timed(lambda: harness(a.scenario, a.split, a.episodes, a.fast_sim,
                                                        Path(tmp) / f"run{rep}"))}
            done = {k: sides[k]() for k in ("AB" if rep % 2 == 0 else "BA")}  # neither side always first
            (ta, ca, sa), (tb, cb, sb) = done["A"], done["B"]
            assert sa == sb, f"the sides took different steps ({sa} vs {sb}): not the same episodes"
            a_times.append(ta)
            b_times.append(tb)
            ratios.append(tb / ta)
            cpu_ratios.append(cb / ca)
            print(f"rep {rep}: bare {ta:.2f} s ({ca:.2f} s CPU), harness {tb:.2f} s ({cb:.2f} s CPU), {sa} steps each, "
                  f"ratio {tb / ta:.3f} (CPU {cb / ca:.3f})", flush=True)
    ratio = statistics.median(ratios)
    print(f"{a.scenario}/{a.split}, {a.episodes} episodes x {a.reps} reps, idle agent; median bare "
          f"{statistics.median(a_times):.2f} s, harness {statistics.median(b_times):.2f} s "
          f"({1000 * statistics.median(a_times) / sa:.1f} vs {1000 * statistics.median(b_times) / sb:.1f} ms/step)")
    ratio_line("harness_overhead", ratio, "harness / bare time, median of paired runs", TARGET, at_least=False)
    # CPU time leaves out waiting for a CPU (other jobs, steal time), which can swamp 5% in wall time.
    cpu = statistics.median(cpu_ratios)
    ratio_line("harness_overhead_cpu", cpu, "harness / bare CPU time of this process, median of paired runs",
               TARGET, at_least=False)
    return {"harness_overhead": ratio, "harness_overhead_cpu": cpu}


if __name__ == "__main__":
    main()
