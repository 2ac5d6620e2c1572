"""Smoke tests of the harness-cost benchmarks in bench/ (not measurements).

Covers: bench/harness_overhead.py, parallel_speedup.py, agent_cost.py, collect_throughput.py,
train_throughput.py (each `main(["--quick"])` in this process: it must run end to end and print
`RATIO <name> = <number>` lines that match what it returns), and the table parser of
bench/run_all.py. About a minute on 2 cores; `pytest -m "not slow"` leaves them out.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "bench"
LINE = re.compile(r"^RATIO (\S+) = (\S+) ", re.M)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, expected", [
    ("harness_overhead", {"harness_overhead", "harness_overhead_cpu"}),
    ("parallel_speedup", {"parallel_speedup"}),
    ("agent_cost", {"agent_cost_e2e-M", "agent_cost_modular", "agent_cost_expert", "agent_cost_lane_keeper"}),
    ("collect_throughput", {"collect_throughput"}),
    ("train_throughput", {"train_throughput"}),
])
def test_quick_run_prints_ratios(name: str, expected: set[str], capsys) -> None:
    ratios = load(name).main(["--quick"])
    printed = {label: float(value) for label, value in LINE.findall(capsys.readouterr().out)}
    assert expected <= set(printed), f"missing RATIO lines: {expected - set(printed)}"
    for label in expected:
        assert math.isfinite(printed[label]) and printed[label] > 0
        assert printed[label] == pytest.approx(ratios[label], abs=1e-3)


def test_run_all_gathers_ratio_lines() -> None:
    out = ("rep 0: ...\nRATIO harness_overhead = 1.036 (harness / bare time; target <= 1.05: met)\n"
           "RATIO agent_cost_expert = 0.010 (median act / median env.step; no target)\n")
    assert load("run_all").RATIO.findall(out) == [("harness_overhead", "1.036", "<= 1.05"),
                                                  ("agent_cost_expert", "0.010", "")]
