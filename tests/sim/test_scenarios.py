"""Every scenario resets, steps and renders in every split; seeds are deterministic and disjoint."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from steerbench.sim.registration import env_id
from steerbench.sim.scenarios import SEED_STRIDE, SUITE, UnknownScenarioError, episode_seed, get_scenario
from steerbench.sim.types import SPLITS

SCENARIOS = list(SUITE)


def test_suite_has_the_five_scenarios():
    assert {"highway", "merge", "roundabout", "intersection", "racetrack"} <= set(SUITE)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_reset_step_render_non_blank(envs, scenario, split):
    env = envs(scenario, split)
    obs, info = env.reset(seed=episode_seed(split, 3))
    assert env.observation_space.contains(obs)
    for _ in range(5):
        obs, reward, term, trunc, info = env.step(np.array([0.0, 0.05]))
        frames = obs["frames"]
        assert frames.dtype == np.uint8 and frames.shape == (4, 64, 128)
        for f in frames:  # no blank frame in the stack, padding included
            assert f.std() > 5.0
        assert np.isfinite(reward)
        if term or trunc:
            break
    assert 0 <= obs["command"] < len(SUITE[scenario].commands)


@pytest.mark.parametrize("scenario", ["highway", "roundabout"])
def test_same_seed_same_episode(envs, scenario):
    env = envs(scenario)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=11)
        trace = [obs["frames"][-1].copy()]
        for k in range(6):
            obs, *_ = env.step(np.array([0.0, 0.1 * np.sin(k)]))
            trace.append(obs["frames"][-1].copy())
        runs.append((np.stack(trace), env.core.vehicle.position.copy()))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.allclose(runs[0][1], runs[1][1])


def test_different_seeds_differ(envs):
    env = envs("highway")
    env.reset(seed=1)
    a = [v.position.copy() for v in env.core.road.vehicles]
    env.reset(seed=2)
    b = [v.position.copy() for v in env.core.road.vehicles]
    assert len(a) != len(b) or not all(np.allclose(x, y) for x, y in zip(a, b))


def test_split_seeds_never_overlap():
    ranges = [set(range(episode_seed(s, 0), episode_seed(s, SEED_STRIDE - 1) + 1, 99_991)) for s in SPLITS]
    for i in range(len(ranges)):
        for j in range(i + 1, len(ranges)):
            assert not ranges[i] & ranges[j]
    assert episode_seed("train", SEED_STRIDE - 1) < episode_seed("train-dev", 0)
    with pytest.raises(ValueError):
        episode_seed("train", SEED_STRIDE)


def test_train_and_test_differ(envs):
    train, test = envs("highway", "train"), envs("highway", "test")
    train.reset(seed=0)
    test.reset(seed=0)
    assert len(test.core.road.network.graph["s0"]["s1"]) > len(train.core.road.network.graph["s0"]["s1"])
    assert train.look != test.look
    assert get_scenario("racetrack").env_class_for("test") is not get_scenario("racetrack").env_class_for("train")


def test_unknown_scenario_is_named():
    with pytest.raises(UnknownScenarioError, match="known: highway"):
        get_scenario("motorway")


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gymnasium_check_env(scenario, split):
    """Every registered id in every split: the test look's pixel noise included, which must be
    seeded by reset(seed=) like everything else."""
    env = gym.make(env_id(scenario), split=split)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_commands_follow_the_route():
    from steerbench.sim.envs import IntersectionRouteEnv

    env = gym.make(env_id("intersection")).unwrapped
    for command, name in enumerate(IntersectionRouteEnv.command_names):
        env.core.config["command"] = command
        env.reset(seed=0)
        net = env.core.road.network
        first = net.get_lane(env.core.route_edges()[0] + (0,))
        last = net.get_lane(env.core.route_edges()[-1] + (0,))
        turn = (last.heading_at(0) - first.heading_at(0) + np.pi) % (2 * np.pi) - np.pi
        expected = {"turn left": -np.pi / 2, "go straight": 0.0, "turn right": np.pi / 2}[name]
        assert turn == pytest.approx(expected, abs=0.1), name  # +y is the driver's right
    env.close()


def test_steering_mode_overrides_throttle_and_full_mode_does_not(envs):
    speeds = {}
    for mode in ("steering", "full"):
        env = envs("merge", mode=mode)
        env.reset(seed=4)
        v0 = env.core.vehicle.speed
        for _ in range(5):
            _, _, _, _, info = env.step(np.array([-1.0, 0.0]))  # full braking asked for
        speeds[mode] = (v0, env.core.vehicle.speed, info["applied_action"][0])
    v0, v1, applied = speeds["full"]
    assert applied == -1.0 and v1 == pytest.approx(max(v0 - 5.0 * 1.0, 0.0), abs=0.2)
    v0, v1, applied = speeds["steering"]
    assert applied > -1.0 and v1 > v0 - 5.0 * 1.0 + 1.0  # the cruise control did not brake so hard


def test_bad_actions_are_refused(envs):
    env = envs("merge")
    env.reset(seed=0)
    for bad in (np.zeros(3), np.array([0.0, np.nan])):
        with pytest.raises(ValueError, match="2 finite numbers"):
            env.step(bad)
