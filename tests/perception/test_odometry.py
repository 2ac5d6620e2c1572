"""Dead reckoning (perception/odometry.py): the heading a pixels-only agent can know from its
speedometer and its own steering, and the lane frames' `turned` made from a dataset the same way."""

import numpy as np
import pytest

from steerbench.agents.expert import ExpertAgent
from steerbench.perception.lane_data import select_lane_frames
from steerbench.perception.odometry import step_turn, turned
from steerbench.sim.dataset import DatasetIndex, load_episode
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.scenarios import episode_seed


def test_a_constant_steer_turns_at_a_constant_rate():
    speed, steering = np.full(11, 8.0), np.full(11, 0.1)
    out = turned(speed, steering, 0.2)
    assert out[0] == 0.0 and np.allclose(np.diff(out), step_turn(8.0, 0.1, 0.2)) and step_turn(8.0, 0.1, 0.2) > 0
    assert turned(speed, -steering, 0.2) == pytest.approx(-out)


@pytest.mark.parametrize("index", [1000, 1001])
def test_dead_reckoning_follows_the_true_heading_round_a_roundabout_exit(envs, index):
    env = envs("roundabout", "train-dev", fast=True)
    obs, _ = env.reset(seed=episode_seed("train-dev", index))
    task = EpisodeTask("expert", ExpertAgent, "privileged", "roundabout", "train-dev", index, 0, EnvSettings(fast=True))
    agent = ExpertAgent()
    agent.reset(episode_info(env, task))
    start, estimate, last, errors, done = env.ground_truth().ego.heading, 0.0, None, [], False
    while not done:
        o = EpisodeRunner._observation(env, obs, "privileged")
        if last is not None:
            estimate += step_turn(o.speed, last, 0.2)
        true = np.angle(np.exp(1j * (env.ground_truth().ego.heading - start)))
        errors.append(abs(np.angle(np.exp(1j * (estimate - true)))))
        action = agent.act(o)
        last = float(np.atleast_1d(action)[-1])
        obs, _, term, trunc, _ = env.step(action)
        done = term or trunc
    assert abs(estimate) > np.radians(60) and max(errors) < np.radians(3)  # a real turn, tracked


def test_lane_frames_carry_the_heading_dead_reckoned_from_their_episode(tmp_path):
    from steerbench.agents.registry import AgentSpec
    from steerbench.harness.collect import CollectConfig, collect

    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"), scenarios=("merge",),
                          split="train", episodes=1, out=tmp_path, env=EnvSettings(fast=True), noise_std=0.1,
                          progress=False))
    row, = DatasetIndex(tmp_path).rows
    ep = load_episode(tmp_path, row)
    every_third = select_lane_frames(tmp_path, "train", ("merge",), None, stride=3)
    expected = turned(ep.speed, ep.executed[:, 1], 0.2)[::3]
    assert np.allclose(every_third.turned, expected, atol=1e-6) and np.ptp(expected) > 0.01
