"""Scenarios as plug-ins: `module:function` and entry points of group `steerbench.scenarios`
run through eval, collect and compare, are gymnasium ids, and fail in one line when broken."""

import json
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from steerbench.cli import main
from steerbench.sim.env import SteerEnv
from steerbench.sim.registration import env_id, register_envs
from steerbench.sim.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples.dense_highway:dense_highway"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example declared as an installed package's entry point `dense`, found from ROOT."""
    dist = tmp_path / "dense_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dense-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[steerbench.scenarios]\ndense = {EXAMPLE}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT))
    return "dense"


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _lanes(scenario: str, split: str) -> int:
    env = SteerEnv(scenario=scenario, split=split)
    env.reset(seed=0)
    road = env.core.road.network
    a, b = next((a, b) for a in road.graph for b in road.graph[a])
    return len(road.graph[a][b])


def test_module_function_scenario_runs_through_eval(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = main(["eval", "--agent", "expert", "--scenarios", EXAMPLE, "--episodes", "1", "--fast-sim",
                 "--logdir", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    (row,) = _rows(tmp_path / "run" / "results.jsonl")
    assert row["scenario"] == EXAMPLE and row["error"] is None and row["metrics"]["steps"] > 0
    assert get_scenario(EXAMPLE).name == EXAMPLE  # the name its results carry finds it again
    assert _lanes(EXAMPLE, "train") == 5 and _lanes("highway", "train") == 3  # it is what it says


def test_entry_point_scenario_runs_through_eval_collect_and_compare(installed, tmp_path, capsys):
    assert main(["eval", "--agent", "expert", "--scenarios", installed, "--episodes", "1", "--workers", "2",
                 "--fast-sim", "--logdir", str(tmp_path / "eval"), "--no-progress"]) == 0, capsys.readouterr().err
    assert [r["scenario"] for r in _rows(tmp_path / "eval" / "results.jsonl")] == [installed]
    assert main(["collect", "--scenarios", installed, "--episodes", "1", "--fast-sim", "--out",
                 str(tmp_path / "data"), "--no-progress"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "data" / "manifest.json").read_text())["episodes"] == {f"{installed}/train": 1}
    assert main(["compare", "--contestants", "expert", "--scenarios", installed, "--splits", "train", "--episodes", "1",
                 "--fast-sim", "--logdir", str(tmp_path / "cmp"), "--no-progress"]) == 0, capsys.readouterr().err
    assert installed in (tmp_path / "cmp" / "report.md").read_text()
    main(["scenarios"])
    out = capsys.readouterr().out
    assert f"{installed}  ({env_id(installed)}; {EXAMPLE})" in out and "5 lanes, 50 cars" in out


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_installed_scenario_is_a_gymnasium_id(installed, split):
    register_envs()  # at import, before this package was on the path
    env = gym.make(env_id(installed), split=split)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("ref, message", [
    ("motorway", "unknown scenario 'motorway'; known: highway"),
    ("nosuchmodule:make", "cannot import 'nosuchmodule'"),
    ("examples.dense_highway:nothing", "has no 'nothing'"),
    ("scenario_plugins_for_tests:returns_a_dict", "returned dict, not a steerbench.sim.scenarios.ScenarioSpec"),
    ("scenario_plugins_for_tests:raises", "raised RuntimeError: no road"),
    ("scenario_plugins_for_tests:not_a_scenario_env", "is not a steerbench.sim.envs scenario environment"),
])
def test_a_broken_scenario_is_one_line_and_exit_2(ref, message, tmp_path, monkeypatch, capsys):
    (tmp_path / "scenario_plugins_for_tests.py").write_text(textwrap.dedent('''
        import dataclasses
        from steerbench.sim.scenarios import SUITE
        def returns_a_dict():
            return {"name": "x"}
        def raises():
            raise RuntimeError("no road")
        def not_a_scenario_env():
            return dataclasses.replace(SUITE["highway"], env_class=dict)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(ROOT)
    code = main(["eval", "--agent", "expert", "--scenarios", ref, "--logdir", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
