"""DAgger for the lane model (`train-lanes --dagger-rounds`, harness/lane_dagger.py): the modular
agent's rollouts with the last model go, lane-labelled, into the run's own dataset, and the next
model trains on the budget's collected frames plus every rollout frame."""

import contextlib
import io
import json

import numpy as np
import pytest

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.harness.lane_dagger import (
    LaneDaggerConfig,
    aggregate_dir,
    checkpoint,
    critical_steps_file,
    rollout_errors,
)
from steerbench.perception.lane_data import select_lane_frames
from steerbench.perception.lane_model import LaneModelError, load_lane_model
from steerbench.perception.lane_train import LaneTrainConfig
from steerbench.sim.dataset import DatasetIndex, load_episode
from steerbench.sim.episodes import DAGGER, dagger_start
from steerbench.sim.runner import EnvSettings

EXPERT = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")
SCENARIO = "merge"
TINY = ["--frames", "24", "--eval-frames", "12", "--epochs", "1", "--batch", "8"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lane-dagger") / "data"
    for split in ("train", "train-dev"):
        collect(CollectConfig(teacher=EXPERT, scenarios=(SCENARIO,), split=split, episodes=1, out=root,
                              env=EnvSettings(fast=True), progress=False))
    return root


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(data, logdir):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train-lanes", "--data", str(data), "--logdir", str(logdir), *TINY, "--no-progress",
                     "--dagger-rounds", "1", "--dagger-episodes", "1"])
    assert code == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """One DAgger round, with the base dataset's row count before it and what the command printed."""
    logdir = tmp_path_factory.mktemp("lane-dagger-run") / "run"
    base_rows = len(DatasetIndex(data).rows)
    return logdir, base_rows, _train(data, logdir)


def test_a_round_rolls_the_agent_out_into_its_own_data_and_trains_on_every_rollout_frame(data, run):
    logdir, base_rows, printed = run
    cfg = LaneDaggerConfig(train=LaneTrainConfig(data=str(data), logdir=str(logdir)), rounds=1)
    assert len(DatasetIndex(data).rows) == base_rows  # the base dataset holds no rollout
    rows = DatasetIndex(aggregate_dir(cfg)).rows
    (rollout,) = [r for r in rows if DAGGER.holds("train", r["index"])]
    assert rollout["index"] == dagger_start(1) and rollout["driver"] == "lanes-student-0"
    assert load_episode(aggregate_dir(cfg), rollout).lane_centres is not None
    history = json.loads((logdir / "lane_dagger.json").read_text())
    assert [h["round"] for h in history] == [0, 1]
    assert history[1]["rollout_frames"] == {SCENARIO: rollout["steps"]}
    assert history[0]["train_frames"] == 24 and history[1]["train_frames"] == 24 + rollout["steps"]
    assert load_lane_model(checkpoint(cfg, 1)).net.config.branched
    assert f"the model: {checkpoint(cfg, 1)}" in printed
    _train(data, logdir)  # resumed: nothing is rolled out again
    assert DatasetIndex(aggregate_dir(cfg)).rows == rows


def test_rollouts_come_on_top_of_the_frame_budget_only_when_asked(data, run):
    agg = run[0] / "data"
    steps = sum(r["steps"] for r in DatasetIndex(agg).rows if DAGGER.holds("train", r["index"]))
    collected = select_lane_frames(agg, "train", (SCENARIO,), 24)
    both = select_lane_frames(agg, "train", (SCENARIO,), 24, rollouts=True)
    assert steps > 0 and len(collected) == 24 and len(both) == 24 + steps
    assert np.array_equal(collected.centres, both.centres[:24], equal_nan=True)  # the same budgeted frames first
    assert len(select_lane_frames(agg, "train", (SCENARIO,), None)) == len(select_lane_frames(
        data, "train", (SCENARIO,), None)) + steps  # no budget: every frame, rollouts included


def test_bad_round_counts_fail_in_one_line(data, tmp_path):
    with pytest.raises(LaneModelError, match="DAgger rounds"):
        LaneDaggerConfig(train=LaneTrainConfig(data=str(data), logdir=str(tmp_path)), rounds=0)
    with pytest.raises(LaneModelError, match="critical share"):
        LaneDaggerConfig(train=LaneTrainConfig(data=str(data), logdir=str(tmp_path)), rounds=1, critical=0.0)


def test_critical_states_keep_each_rollouts_worst_steps_repeated(data, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train-lanes", "--data", str(data), "--logdir", str(tmp_path / "run"), *TINY, "--no-progress",
                     "--dagger-rounds", "1", "--dagger-episodes", "1", "--dagger-critical", "0.25",
                     "--dagger-repeat", "3"]) == 0
    cfg = LaneDaggerConfig(train=LaneTrainConfig(data=str(data), logdir=str(tmp_path / "run")), rounds=1)
    (entry,) = json.loads(critical_steps_file(cfg, 1).read_text())["episodes"]
    (row,) = [r for r in DatasetIndex(aggregate_dir(cfg)).rows if DAGGER.holds("train", r["index"])]
    errors = rollout_errors(checkpoint(cfg, 0), aggregate_dir(cfg), [row])[0]
    kept = sorted(set(entry["steps"]))
    assert len(kept) == -(-len(errors) // 4) and entry["steps"] == [t for t in kept for _ in range(3)]
    assert errors[kept].min() >= np.delete(errors, kept).max()  # the worst steps, by round 0's model
    history = json.loads((tmp_path / "run" / "lane_dagger.json").read_text())
    assert history[1]["train_frames"] == 24 + 3 * len(kept)
