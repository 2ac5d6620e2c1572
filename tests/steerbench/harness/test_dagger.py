"""DAgger: the student drives, the expert labels, the data aggregates, every round is scored."""

import json
from pathlib import Path

import numpy as np
import pytest

from steerbench.agents.e2e_train import TrainConfig, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec
from steerbench.harness.collect import CollectConfig, collect, dataset_settings
from steerbench.harness.dagger import DaggerConfig, run_dagger
from steerbench.sim.dataset import DatasetError, iter_episodes
from steerbench.sim.episodes import DAGGER

EXPERT = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")


class NaNAgent:
    from steerbench.agents.base import AgentInfo

    info = AgentInfo("nan", "pixels", "returns NaN")

    def reset(self, episode):
        pass

    def act(self, obs):
        return np.array([0.0, np.nan])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dagger")
    collect(CollectConfig(teacher=EXPERT, scenarios=("merge",), episodes=2, out=root, progress=False))
    return root


def test_the_driver_drives_and_the_teacher_labels(tmp_path):
    collect(CollectConfig(teacher=EXPERT, scenarios=("merge",), episodes=1, out=tmp_path, progress=False,
                          driver=AgentSpec("idle", "steerbench.agents.reference:IdleAgent")))
    (ep,) = list(iter_episodes(tmp_path))
    assert np.all(ep.executed[:, 1] == 0.0)  # idle's steering was applied...
    assert np.abs(ep.action[:, 1]).max() > 0.05  # ...while the expert said where to steer
    row = json.loads((tmp_path / "index.jsonl").read_text().splitlines()[0])
    assert row["driver"] == "idle"


def test_a_broken_driver_is_an_error_not_data(tmp_path):
    with pytest.raises(DatasetError, match="invalid action"):
        collect(CollectConfig(teacher=EXPERT, scenarios=("merge",), episodes=1, out=tmp_path, progress=False,
                              driver=AgentSpec("nan", f"{__name__}:NaNAgent")))


def test_one_round_aggregates_retrains_and_scores(data, tmp_path):
    env, scenarios = dataset_settings(data)
    assert scenarios == ("merge",)
    base = TrainConfig(data=str(data), logdir=str(tmp_path / "run"), size="S", epochs=1, batch=32, progress=False)
    history = run_dagger(DaggerConfig(train=base, rounds=1, scenarios=scenarios, episodes=1, eval_episodes=1,
                                      env=env, progress=False))
    assert [h["round"] for h in history] == [0, 1]
    assert all(0.0 <= h["merge"]["driving_score"] <= 1.0 for h in history)
    rollouts = [e for e in iter_episodes(tmp_path / "run" / "data") if DAGGER.holds(e.split, e.index)]
    assert len(rollouts) == 1 and rollouts[0].split == "train"
    assert not [e for e in iter_episodes(data) if DAGGER.holds(e.split, e.index)]  # the base is left as it was
    assert Path(history[1]["checkpoint"]).exists() and "dagger-1" in history[1]["checkpoint"]
    assert json.loads((tmp_path / "run" / "dagger.json").read_text()) == history

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    assert sorted(e.step for e in acc.Scalars("dagger/merge/driving_score")) == [0, 1]  # event files in any order


def test_two_runs_on_one_dataset_keep_their_rollouts_apart(data, tmp_path):
    """Two training seeds' DAgger on the same base: each student's own rollouts, the base untouched."""
    env, scenarios = dataset_settings(data)
    before = (data / "index.jsonl").read_bytes()
    runs = []
    for seed in (0, 1):
        base = TrainConfig(data=str(data), logdir=str(tmp_path / f"s{seed}"), size="S", epochs=1, batch=32,
                           seed=seed, progress=False)
        runs.append(run_dagger(DaggerConfig(train=base, rounds=1, scenarios=scenarios, episodes=1, eval_episodes=1,
                                            env=env, progress=False)))
    assert (data / "index.jsonl").read_bytes() == before
    rows = [[json.loads(line) for line in (tmp_path / f"s{seed}" / "data" / "index.jsonl").read_text().splitlines()
             if DAGGER.holds(json.loads(line)["split"], json.loads(line)["index"])] for seed in (0, 1)]
    assert [len(r) for r in rows] == [1, 1]
    assert rows[0][0]["sha256"] != rows[1][0]["sha256"]  # each student drove its own rollout
    import torch

    first = torch.load(tmp_path / "s1" / "checkpoints" / "best.pt", weights_only=True)
    trained = first["episodes"]["trained"]["train"]  # the second run's cloning saw the base's episodes only
    assert trained and not any(DAGGER.holds("train", lo) or DAGGER.holds("train", hi) for lo, hi in trained)


def test_warm_start_needs_the_same_network(data, tmp_path):
    train(TrainConfig(data=str(data), logdir=str(tmp_path / "s"), size="S", epochs=1, progress=False))
    with pytest.raises(TrainingError, match="cannot start"):
        train(TrainConfig(data=str(data), logdir=str(tmp_path / "m"), size="M", epochs=1, progress=False,
                          init=str(tmp_path / "s" / "checkpoints" / "best.pt")))


def test_the_labeller_keeps_to_the_lane_the_student_is_in(tmp_path):
    """The expert decides to change lane at the start of racetrack episode 0; a student that stays
    in its lane must not get "full lock towards that lane" as the label of every later state."""
    from steerbench.harness.dagger import LABELLER

    keeper = AgentSpec("keeper", "steerbench.agents.reference:LaneKeeperAgent")
    collect(CollectConfig(teacher=LABELLER, scenarios=("racetrack",), episodes=1, out=tmp_path, progress=False,
                          driver=keeper))
    (ep,) = list(iter_episodes(tmp_path))
    saturated = np.mean(np.abs(ep.action[:, 1]) > 0.95)
    assert saturated < 0.05, saturated
    assert np.mean(np.abs(ep.action[:, 1] - ep.executed[:, 1])) < 0.1
