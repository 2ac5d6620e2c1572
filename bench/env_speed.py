"""Environment throughput per scenario, and what the indexed lane lookup buys.

Prints steps per second (idle agent, steering mode, one process) and, measured in the same run,
the ratio of the stock closest-lane search to the indexed one on the suite's highway.
Usage: python bench/env_speed.py [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from highway_env.road.road import RoadNetwork

from steerbench.sim.env import SteerEnv
from steerbench.sim.scenarios import SUITE


def steps_per_second(scenario: str, split: str, steps: int) -> float:
    env = SteerEnv(scenario, split)
    done, n, seed = True, 0, 0
    start = time.perf_counter()
    while n < steps:
        if done:
            env.reset(seed=seed)
            seed += 1
        *_, term, trunc, _ = env.step(np.zeros(2))
        done = term or trunc
        n += 1
    rate = n / (time.perf_counter() - start)
    env.close()
    return rate


def lookup_speedup(queries: int = 2000) -> float:
    env = SteerEnv("highway", "train")
    env.reset(seed=0)
    net = env.core.road.network
    rng = np.random.default_rng(0)
    pts = [v.position + rng.normal(0, 2, 2) for v in env.core.road.vehicles for _ in range(queries // 16)]
    t0 = time.perf_counter()
    fast = [net.get_closest_lane_index(p, 0.0) for p in pts]
    t1 = time.perf_counter()
    slow = [RoadNetwork.get_closest_lane_index(net, p, 0.0) for p in pts]
    t2 = time.perf_counter()
    assert fast == slow, "indexed lookup disagrees with the stock search"
    return (t2 - t1) / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    print(f"{'scenario':14s} {'split':6s} steps/s")
    for name in SUITE:
        for split in ("train", "test"):
            print(f"{name:14s} {split:6s} {steps_per_second(name, split, args.steps):7.1f}")
    print(f"closest-lane lookup, stock / indexed time: {lookup_speedup():.1f}x (same answers)")


if __name__ == "__main__":
    main()
