"""The machine's own parallel ceiling: the speed-up two processes get on pure-Python work that
shares nothing, the bound for `parallel_speedup.py` on the same machine.

Two copies of a CPU-bound loop run one after the other in one process, then at once in two
processes; the ratio of the times is what the cores deliver (a VM with steal time or SMT
siblings gives less than the core count). Alternated over reps, median reported.
Usage: python bench/cpu_ceiling.py [--seconds 5] [--reps 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time


def _spin(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def _calibrate(seconds: float) -> int:
    n, start = 200_000, time.perf_counter()
    _spin(n)
    return int(n * seconds / (time.perf_counter() - start))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="length of one copy of the loop")
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    n = _calibrate(a.seconds)
    ratios = []
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # workers started before the clock
        for rep in range(a.reps):
            start = time.perf_counter()
            _spin(n)
            _spin(n)
            serial = time.perf_counter() - start
            start = time.perf_counter()
            pool.map(_spin, [n, n])
            parallel = time.perf_counter() - start
            ratios.append(serial / parallel)
            print(f"rep {rep}: two copies one after the other {serial:.2f} s, at once {parallel:.2f} s, "
                  f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"RATIO cpu_ceiling = {statistics.median(ratios):.3f} (serial / parallel time, median of reps; no target)")


if __name__ == "__main__":
    main()
