"""The expert and the reference agents, closed loop on a few fixed episodes."""

import numpy as np
import pytest

from steerbench.agents.expert import ExpertAgent
from steerbench.agents.reference import IdleAgent, LaneKeeperAgent
from steerbench.sim.runner import EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner()
    yield r
    r.close()


def episode(runner, factory, inputs, scenario, index):
    label = factory.__qualname__  # the runner caches agents by label: keep them distinct
    task = EpisodeTask(label, factory, inputs, scenario, "train", index, episode_seed("train", index))
    return runner.run(task).metrics


@pytest.mark.parametrize("scenario, episodes", [("highway", 2), ("racetrack", 3), ("merge", 3),
                                                ("roundabout", 3), ("intersection", 3)])
def test_expert_bars_on_a_small_sample(runner, scenario, episodes):
    """The README's 50-seed figures in miniature: at most one failure, and a clear lead over idle."""
    expert = [episode(runner, ExpertAgent, "privileged", scenario, i) for i in range(episodes)]
    idle = [episode(runner, IdleAgent, "pixels", scenario, i) for i in range(episodes)]
    assert sum(m["success"] for m in expert) >= episodes - 1, [m["failure"] for m in expert]
    lead = np.mean([m["driving_score"] for m in expert]) - np.mean([m["driving_score"] for m in idle])
    assert lead >= 0.3, lead


def test_lane_keeper_never_changes_lane(runner):
    seen = []

    class Watching(LaneKeeperAgent):
        def act(self, obs):
            seen.append(obs.truth.ego.lane_index[2])
            return super().act(obs)

    m = episode(runner, Watching, "privileged", "highway", 0)
    assert m["failure"] != "agent_error" and len(set(seen)) == 1


def test_expert_overtakes_a_slow_leader(runner):
    lanes = []

    class Watching(ExpertAgent):
        def act(self, obs):
            lanes.append(obs.truth.ego.lane_index[2])
            return super().act(obs)

    expert = episode(runner, Watching, "privileged", "highway", 0)
    keeper = episode(runner, LaneKeeperAgent, "privileged", "highway", 0)
    assert len(set(lanes)) > 1  # it changed lane
    assert expert["route_completion"] > keeper["route_completion"]


def test_expert_takes_the_commanded_exit(runner):
    """Never a wrong exit (off_route), and most episodes reach the goal of the commanded exit (a
    collision or a wait behind crashed traffic ends some before the exit)."""
    outcomes = [episode(runner, ExpertAgent, "privileged", "roundabout", i)["failure"] for i in range(6)]
    assert "off_route" not in outcomes
    assert outcomes.count("none") >= 4, outcomes
