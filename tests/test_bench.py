"""Smoke tests of the harness-cost benchmarks in bench/ (not measurements).

Covers: bench/harness_overhead.py, parallel_speedup.py, agent_cost.py, collect_throughput.py,
train_throughput.py, train_layout.py, study_cost.py (each `main(["--quick"])` in this process: it must run end to
end and print `RATIO <name> = <number>` lines that match what it returns), the table parser of
bench/run_all.py and study_cost's projection with made-up rates. About a minute and a half on 2
cores; `pytest -m "not slow"` leaves them out.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "bench"
LINE = re.compile(r"^RATIO (\S+) = (\S+) ", re.M)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a module's dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, expected", [
    ("harness_overhead", {"harness_overhead", "harness_overhead_cpu"}),
    ("parallel_speedup", {"parallel_speedup"}),
    ("agent_cost", {"agent_cost_e2e-M", "agent_cost_modular", "agent_cost_expert", "agent_cost_lane_keeper"}),
    ("collect_throughput", {"collect_throughput"}),
    ("train_throughput", {"train_throughput"}),
    ("train_layout", {"train_layout_S_channels_last"}),
    ("study_cost", {"study_cost_collect_fps", "study_cost_train_sps_S", "study_cost_train_sps_M",
                    "study_cost_train_sps_detector", "study_cost_train_sps_lanes", "study_cost_eval_eps_expert",
                    "study_cost_eval_eps_modular", "study_cost_eval_eps_e2e", "study_cost_hours",
                    "study_cost_cpu_hours"}),
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


def test_study_cost_projection_grows_with_n_and_seeds() -> None:
    cost = load("study_cost")
    nets = {"S": 400.0, "M": 200.0, "L": 100.0}
    rates = cost.Rates(collect_fps=100.0, train_sps={**nets, "detector": 50.0, "lanes": 80.0},
                       infer_sps={k: 1000.0 for k in (*nets, "detector", "lanes")},
                       eval_sps={"expert": 200.0, "modular": 40.0, "e2e": 80.0}, workers=2, threads=2)
    base = cost.Study(frames=(300, 1000, 3000, 10000, 30000), seeds=3, episodes=10)

    def hours(study, prefixes=("e2e-", "DA-RB", "detector", "lanes")):
        return sum(p.hours for p in cost.project(study, rates) if p.name.startswith(prefixes))

    total = lambda study: sum(p.hours for p in cost.project(study, rates))  # noqa: E731
    # doubling the seeds doubles every training part
    assert hours(dataclasses.replace(base, seeds=6)) == pytest.approx(2 * hours(base))
    assert total(dataclasses.replace(base, seeds=6)) > total(base)
    # N = 100000 adds at least passes x N / 64 updates of batch 64 per network and seed at its rate
    grown = dataclasses.replace(base, frames=(*base.frames, 100000))
    updates = math.ceil(base.passes * 100000 / 64)
    least = sum(base.seeds * updates * 64 / rate / 3600 for rate in nets.values())
    assert total(grown) - total(base) >= least
    for size, rate in nets.items():
        part = next(p for p in cost.project(grown, rates) if p.name == f"e2e-{size} N=100000")
        assert part.hours >= base.seeds * updates * 64 / rate / 3600
    # S and L stopping at 30000 leave out their N = 100000 rows, and cost less
    capped = dataclasses.replace(grown, max_frames={"S": 30000, "L": 30000})
    names = {p.name for p in cost.project(capped, rates)}
    assert "e2e-M N=100000" in names and not {"e2e-S N=100000", "e2e-L N=100000"} & names
    assert total(base) < total(capped) < total(grown)
    # more evaluation episodes cost more, the training parts stay
    more = dataclasses.replace(base, episodes=20)
    assert total(more) > total(base) and hours(more) == pytest.approx(hours(base))


def test_lane_refine_measures_a_checkpoint_on_a_datasets_held_out_frames(tmp_path, capsys) -> None:
    import torch

    from steerbench.agents.registry import AgentSpec
    from steerbench.harness.collect import CollectConfig, collect
    from steerbench.perception.lane_model import CHECKPOINT_FORMAT, LaneNet, LaneNetConfig
    from steerbench.perception.training import save_checkpoint
    from steerbench.planning.lane_labels import LANE_S
    from steerbench.sim.runner import EnvSettings

    root, checkpoint = tmp_path / "data", tmp_path / "best.pt"
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"), scenarios=("merge",),
                          split="train-dev", episodes=1, out=root, env=EnvSettings(fast=True), progress=False))
    torch.manual_seed(0)
    net = LaneNet(LaneNetConfig(s=tuple(float(v) for v in LANE_S), channels=(4, 4, 4, 4), squeeze=4, hidden=8))
    save_checkpoint(checkpoint, {"kind": "lanes", "format": CHECKPOINT_FORMAT, "config": net.config.as_dict(),
                                 "frame": {"height": 64, "width": 128, "scaling": 1.75}, "model": net.state_dict(),
                                 "epoch": 1})
    bench = load("lane_refine")
    (row,) = bench.measure(root, str(checkpoint), "train-dev", 20)
    assert row["scenario"] == "merge" and row["frames"] == 20 and 0.0 <= row["moved"] <= 1.0
    assert len(row["before"]) == len(row["after"]) == 20 and row["ms"] > 0
    bench.main(["--data", str(root), "--checkpoint", str(checkpoint), "--eval-frames", "20", "--splits", "train-dev"])
    assert "| train-dev | merge | 20 |" in capsys.readouterr().out


def test_agent_cost_adds_the_marking_check_agent_only_when_asked(tmp_path) -> None:
    agents = load("agent_cost").agents
    plain = agents(tmp_path / "e2e.pt", "det.pt", "lanes.pt")
    checked = agents(tmp_path / "e2e.pt", "det.pt", "lanes.pt", refine=True)
    assert "modular-learned-learned-refine" not in plain
    options = dict(checked["modular-learned-learned-refine"].options)
    assert options["lanes.refine"] == "true" and options["lanes.checkpoint"] == "lanes.pt"
    assert dict(checked["modular-learned-learned"].options).get("lanes.refine") is None
