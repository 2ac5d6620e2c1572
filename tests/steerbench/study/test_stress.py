"""The stress family (sim/stress.py) and `compare --stress`: every condition is a valid override
that changes what it says, an unknown one is a one-line error, and compare reports each
contestant's degradation beyond the test split, resumably."""

import json
import re

import numpy as np
import pytest

from steerbench.cli import main
from steerbench.harness.results import ResultsStore
from steerbench.sim.env import SteerEnv
from steerbench.sim.scenario_options import parameters
from steerbench.sim.scenarios import SUITE, get_scenario
from steerbench.sim.stress import CONDITIONS, UnknownStressError, condition_options, parse_conditions, unchanged
from steerbench.study.design import OVERALL, Entry
from steerbench.study.stress_report import degradation

PLUG_IN = "examples.dense_highway:dense_highway"


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_every_condition_is_a_valid_override_of_every_built_in_scenario(name):
    options = condition_options(name, list(SUITE))
    assert options, name
    for scenario, key, _ in options:
        assert key in parameters(get_scenario(scenario))
    for scenario in SUITE:  # and each stressed test env builds and resets
        env = SteerEnv(scenario, "test", fast=True, scenario_options=options)
        env.reset(seed=0)
    changed = {s for s, _, _ in options}
    assert changed | set(unchanged(name, list(SUITE))) == set(SUITE)


def _vehicles(options=()) -> int:
    env = SteerEnv("highway", "test", fast=True, scenario_options=options)
    env.reset(seed=3)
    return len(env.core.road.vehicles)


def _grey(options=()) -> float:
    env = SteerEnv("merge", "test", fast=True, scenario_options=options)
    obs, _ = env.reset(seed=3)
    return float(np.mean(obs["frames"]))


def test_conditions_change_what_they_say():
    assert _vehicles(condition_options("dense", ["highway"])) > 1.5 * _vehicles()
    assert _grey(condition_options("dark", ["merge"])) < 0.8 * _grey()
    env = SteerEnv("merge", "test", scenario_options=condition_options("noisy", ["merge"]))
    assert env.look.noise_std > 2 * SUITE["merge"].test.look.noise_std
    curves = dict(((s, k), v) for s, k, v in condition_options("curves", ["highway"]))
    assert max(curves[("highway", "radius_range")]) < max(SUITE["highway"].test.config["radius_range"])


def test_plug_ins_get_appearance_conditions_and_are_skipped_by_the_others():
    assert {k for _, k, _ in condition_options("dark", [PLUG_IN])} == {"brightness"}
    assert condition_options("dense", [PLUG_IN]) == () and unchanged("dense", [PLUG_IN, "merge"]) == (PLUG_IN,)
    assert unchanged("curves", ["merge", "highway"]) == ("merge",)


def test_an_unknown_condition_is_one_line_with_a_hint_and_exit_2(tmp_path, capsys):
    with pytest.raises(UnknownStressError, match="did you mean 'dark'"):
        parse_conditions("dense,drak")
    code = main(["compare", "--contestants", "expert", "--scenarios", "merge", "--stress", "drak",
                 "--logdir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'dark'" in err and len(err.strip().splitlines()) == 1, err


def test_compare_stress_evaluates_reports_and_resumes(tmp_path, capsys):
    args = ["compare", "--contestants", "expert", "--agent", "idle", "--scenarios", "merge", "--episodes", "1",
            "--splits", "test", "--stress", "dark", "--fast-sim", "--logdir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    rows = list(ResultsStore(tmp_path / "stress-dark" / "results.jsonl"))
    assert {(r["agent"], r["split"], r["scenario"]) for r in rows} == {("expert", "test", "merge"),
                                                                     ("idle", "test", "merge")}
    md = (tmp_path / "report.md").read_text()
    assert "## Beyond the test split" in md and "exploratory" in md
    doc = json.loads((tmp_path / "compare.json").read_text())
    overall = [d for d in doc["stress"]["degradation"] if d["scenario"] == OVERALL]
    assert {d["contestant"] for d in overall} == {"expert", "idle"}
    for d in overall:
        assert d["condition"] == "dark" and d["n"] == 1 and np.isfinite(d["degradation"]["mean"])
        assert f"| {d['contestant']} |" in md.split("## Beyond the test split")[1]
    capsys.readouterr()
    assert main(args) == 0
    runs = re.findall(r"\((\d+) episodes run now\)", capsys.readouterr().out)
    assert len(runs) == 2 and set(runs) == {"0"}  # the test split and stress-dark: nothing again
    assert len(list(ResultsStore(tmp_path / "stress-dark" / "results.jsonl"))) == len(rows)


def _row(agent, index, score):
    return {"agent": agent, "scenario": "merge", "split": "test", "index": index,
            "metrics": {"driving_score": score}}


def test_degradation_pairs_seeds_and_episodes_and_counts_the_seed_spread():
    rng = np.random.default_rng(0)
    entry = Entry("n", "e2e", "pixels", ("n-s0", "n-s1", "n-s2"), (0, 1, 2))
    level = {"n-s0": 0.2, "n-s1": 0.5, "n-s2": 0.8}  # seeds differ a lot in level...
    test = [_row(a, i, v + rng.normal(0, 0.05)) for a, v in level.items() for i in range(8)]
    same = [_row(r["agent"], r["index"], r["metrics"]["driving_score"] - 0.1) for r in test]
    d = degradation(entry, "merge", test, same)  # ...but degrade alike: the level's spread cancels
    assert d.n == 8 and d.difference.mean == pytest.approx(-0.1)
    assert d.difference.high - d.difference.low < 1e-6
    drop = {"n-s0": 0.0, "n-s1": -0.2, "n-s2": -0.4}  # seeds that degrade differently: a wide interval
    varied = [_row(r["agent"], r["index"], r["metrics"]["driving_score"] + drop[r["agent"]]) for r in test]
    wide = degradation(entry, OVERALL, test, varied)
    assert wide.difference.mean == pytest.approx(-0.2) and wide.difference.high - wide.difference.low > 0.4
