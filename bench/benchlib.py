"""What the benchmarks share: their episode options and the `RATIO` line run_all.py reads."""

from __future__ import annotations

import argparse


def episode_parser(doc: str, episodes: int, reps: int) -> argparse.ArgumentParser:
    """--scenario --split --episodes --reps --fast-sim --quick, as every episode benchmark takes them."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--scenario", default="highway")
    p.add_argument("--split", default="train")
    p.add_argument("--episodes", type=int, default=episodes, help="per timed run")
    p.add_argument("--reps", type=int, default=reps, help="timed runs per side, interleaved")
    p.add_argument("--fast-sim", action="store_true", help="both sides on the fast simulation core")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    return p


def ratio_line(name: str, ratio: float, meaning: str, target: float, at_least: bool) -> None:
    """Print `RATIO name = x (meaning; target >= t: met)`: the one line run_all.py collects."""
    op, met = (">=", ratio >= target) if at_least else ("<=", ratio <= target)
    print(f"RATIO {name} = {ratio:.3f} ({meaning}; target {op} {target}: {'met' if met else 'NOT met'})")


def rate_line(name: str, value: float, meaning: str) -> None:
    """Print `RATIO name = x (meaning; no target)`: a measured rate or projection in run_all.py's format."""
    print(f"RATIO {name} = {value:.3f} ({meaning}; no target)")
