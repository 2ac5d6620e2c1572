"""Evaluation: paired episodes, parallel workers, agent failures, TensorBoard contents."""

import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from steerbench.agents.registry import AgentSpec
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.episodes import EVAL_START
from steerbench.sim.scenarios import episode_seed


def spec(label, target):
    return AgentSpec(label, target)


def config(tmp_path, agents, scenarios=("merge",), episodes=2, **kw):
    return EvalConfig(agents=tuple(agents), scenarios=tuple(scenarios), episodes=episodes,
                      logdir=Path(tmp_path), progress=False, **kw)


def metrics_by_key(rows):
    out = {}
    for r in rows:
        m = dict(r["metrics"])
        m.pop("wall_s")
        out[(r["agent"], r["scenario"], r["index"])] = (r["seed"], m)
    return out


def test_paired_seeds_and_resume(tmp_path):
    agents = [
        spec("expert", "steerbench.agents.expert:ExpertAgent"),
        spec("idle", "steerbench.agents.reference:IdleAgent"),
    ]
    out = run_eval(config(tmp_path, agents, episodes=2, seed=5))
    assert out.ran == 4
    seeds = {(r["agent"], r["index"]): r["seed"] for r in out.rows}
    assert seeds[("expert", 5)] == seeds[("idle", 5)] == episode_seed("train", 5)
    again = run_eval(config(tmp_path, agents, episodes=3, seed=5))
    assert again.ran == 2 and len(again.rows) == 6
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len({(r["agent"], r["index"]) for r in rows}) == len(rows) == 6


def test_two_workers_give_the_same_results_as_one(tmp_path):
    agents = [spec("expert", "steerbench.agents.expert:ExpertAgent")]
    one = run_eval(config(tmp_path / "one", agents, scenarios=("merge", "roundabout"), episodes=2, workers=1))
    two = run_eval(config(tmp_path / "two", agents, scenarios=("merge", "roundabout"), episodes=2, workers=2))
    assert metrics_by_key(one.rows) == metrics_by_key(two.rows)


@pytest.mark.parametrize(
    "target, message",
    [
        ("agents_for_tests:RaisingAgent", "RuntimeError: boom"),
        ("agents_for_tests:NanAgent", "non-finite"),
        ("agents_for_tests:WrongShapeAgent", "shape (3,)"),
        ("agents_for_tests:SlowAgent", "longer than 0.5 s"),
    ],
)
def test_a_misbehaving_agent_fails_its_episodes_and_the_run_goes_on(tmp_path, target, message):
    agents = [spec("bad", target), spec("idle", "steerbench.agents.reference:IdleAgent")]
    out = run_eval(config(tmp_path, agents, episodes=2, act_timeout_s=0.5))
    bad = [r for r in out.rows if r["agent"] == "bad"]
    good = [r for r in out.rows if r["agent"] == "idle"]
    assert len(bad) == 2 and all(r["metrics"]["failure"] == "agent_error" and message in r["error"] for r in bad)
    assert all(r["metrics"]["steps"] == 2 for r in bad)  # failed on its third act()
    assert len(good) == 2 and all(r["error"] is None for r in good)


def test_pixel_agents_get_no_privileged_state(tmp_path):
    from agents_for_tests import PeekingAgent

    PeekingAgent.seen.clear()
    run_eval(config(tmp_path, [spec("peek", "agents_for_tests:PeekingAgent")], episodes=1))
    assert PeekingAgent.seen and all(truth_none and road_none for truth_none, road_none, _ in PeekingAgent.seen)
    assert all(shape == (4, 64, 128) for _, _, shape in PeekingAgent.seen)


def test_outputs_and_tensorboard_tags(tmp_path):
    agents = [
        spec("expert", "steerbench.agents.expert:ExpertAgent"),
        spec("idle", "steerbench.agents.reference:IdleAgent"),
    ]
    out = run_eval(config(tmp_path, agents, episodes=2))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {g["agent"] for g in summary["groups"]} == {"expert", "idle"}
    assert summary["comparisons"][0]["baseline"] == "idle"
    assert "expert [privileged]" in (tmp_path / "summary.md").read_text()
    config_json = json.loads((tmp_path / "config.json").read_text())
    assert config_json["agents"]["idle"]["inputs"] == "pixels" and "torch" in config_json["versions"]

    rows = {(r["agent"], r["index"]): r for r in out.rows}
    for agent in ("expert", "idle"):
        acc = EventAccumulator(str(tmp_path / "tb" / agent), size_guidance={"images": 0, "histograms": 0})
        acc.Reload()
        tags = acc.Tags()
        scores = acc.Scalars("eval/merge/train/driving_score")
        assert [s.step for s in scores] == [EVAL_START, EVAL_START + 1]  # the episode index
        for s in scores:
            assert s.value == pytest.approx(rows[(agent, s.step)]["metrics"]["driving_score"], abs=1e-6)
        mean = acc.Scalars("summary/merge/train/driving_score")[0].value
        assert mean == pytest.approx(
            np.mean([rows[(agent, i)]["metrics"]["driving_score"] for i in (EVAL_START, EVAL_START + 1)]), abs=1e-6
        )
        assert "control/merge/train/steering" in tags["histograms"]
        assert "media/merge/train" in tags["images"]
        assert "summary/text_summary" in tags["tensors"]
    # A resumed run rebuilds the event files instead of appending duplicates.
    run_eval(config(tmp_path, agents, episodes=2))
    acc = EventAccumulator(str(tmp_path / "tb" / "idle"))
    acc.Reload()
    assert len(acc.Scalars("eval/merge/train/driving_score")) == 2
