"""Stock vs fast simulation core: per-step time and ratio per scenario, measured in one run.

A stock and a fast `SteerEnv` step in lockstep on the same seeds and actions (the privileged
expert's, computed on the stock env and not timed). Each policy step times `env.step` of both,
alternating which goes first (A B B A ...), so that background load falls on both alike. Times
are summed over blocks of `BLOCK` consecutive steps (step times are bimodal where work recurs
every few steps, such as the intersection's right-of-way rules); the table reports the median
block time per step of each core, the median of the paired block ratios, and the ratio of the
total times. The two envs' vehicles are compared after every step: a difference stops the
benchmark. Prints only.
Usage: python bench/sim_core.py [--scenarios all] [--split test] [--episodes 3] [--steps 60] [--stress 50]
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import numpy as np

from steerbench.agents.expert import ExpertAgent
from steerbench.sim.env import SteerEnv
from steerbench.sim.scenarios import episode_seed, parse_scenarios
from steerbench.sim.types import EpisodeInfo, Observation

BLOCK = 10  # [policy steps] per timing block


def _state(env: SteerEnv) -> list:
    return [(v.position.tobytes(), v.heading, v.speed) for v in env.core.road.vehicles]


def _timed_step(env: SteerEnv, action: np.ndarray) -> tuple[float, tuple]:
    start = time.perf_counter()
    out = env.step(action)
    return time.perf_counter() - start, out


def measure(scenario: str, split: str, episodes: int, steps: int, overrides: dict | None = None) -> dict[str, float]:
    """Per-step seconds of both cores over `episodes` episodes of at most `steps` steps;
    `overrides` change the scenario's highway-env config (a denser stress case)."""
    stock, fast = SteerEnv(scenario, split), SteerEnv(scenario, split, fast=True)
    for env in (stock, fast):
        env.core.config.update(overrides or {})
    blocks: dict[str, list[float]] = {"stock": [], "fast": []}
    vehicles = []
    for index in range(episodes):
        times: dict[str, list[float]] = {"stock": [], "fast": []}
        seed = episode_seed(split, index)
        obs, _ = stock.reset(seed=seed)
        fast.reset(seed=seed)
        expert = ExpertAgent()
        expert.reset(EpisodeInfo(scenario, split, seed, index, stock.policy_hz, stock.mode, stock.command,
                                 stock.spec_.commands, stock.max_steps, stock.camera_config))
        for k in range(steps):
            view = Observation(obs["frames"], float(obs["speed"][0]), int(obs["command"]),
                               stock.road_prior(), stock.ground_truth())
            action = expert.act(view)
            order = (("stock", stock), ("fast", fast)) if k % 2 == 0 else (("fast", fast), ("stock", stock))
            results = {}
            for name, env in order:
                seconds, results[name] = _timed_step(env, action)
                times[name].append(seconds)
            if _state(stock) != _state(fast):
                raise SystemExit(f"{scenario}/{split} seed {seed}: the cores diverged at step {k}")
            vehicles.append(len(stock.core.road.vehicles))
            obs, _, terminated, truncated, _ = results["stock"]
            if terminated or truncated:
                break
        for name, t in times.items():
            full = len(t) // BLOCK * BLOCK or len(t)  # whole blocks (a short episode: one block)
            blocks[name] += [sum(t[i:i + BLOCK]) / len(t[i:i + BLOCK]) for i in range(0, full, BLOCK)]
    stock.close()
    fast.close()
    s, f = np.array(blocks["stock"]), np.array(blocks["fast"])
    return {"steps": len(vehicles), "vehicles": float(np.mean(vehicles)), "stock_ms": 1000 * float(np.median(s)),
            "fast_ms": 1000 * float(np.median(f)), "ratio": float(np.median(s / f)),
            "total_ratio": float(s.sum() / f.sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default="all")
    p.add_argument("--split", default="test", help="test: the denser distribution")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=60, help="most policy steps per episode")
    p.add_argument("--stress", type=int, default=0, metavar="N",
                   help="also a highway with N vehicles (the suite's densest has 24 besides the ego)")
    args = p.parse_args()
    print(f"# {date.today()} {platform.node()} {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}; medians over {BLOCK}-step blocks")
    print("| scenario | split | steps | vehicles | stock ms/step | fast ms/step | ratio (median) | ratio (total) |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in parse_scenarios(args.scenarios):
        _row(spec.name, args.split, measure(spec.name, args.split, args.episodes, args.steps))
    if args.stress:
        r = measure("highway", args.split, args.episodes, args.steps, {"vehicles_count": args.stress})
        _row(f"highway, {args.stress} cars", args.split, r)


def _row(label: str, split: str, r: dict[str, float]) -> None:
    print(f"| {label} | {split} | {r['steps']} | {r['vehicles']:.1f} | {r['stock_ms']:.1f} | {r['fast_ms']:.1f} | "
          f"{r['ratio']:.2f}x | {r['total_ratio']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
