"""The stock environments crash with continuous actions; the suite's subclasses do not."""

import numpy as np
import pytest
from highway_env.envs.merge_env import MergeEnv
from highway_env.envs.roundabout_env import RoundaboutEnv
from highway_env.vehicle.behavior import IDMVehicle

from steerbench.sim.envs import IntersectionRouteEnv, RampMergeEnv, RoundaboutRouteEnv

CONTINUOUS = {"action": {"type": "ContinuousAction"}, "observation": {"type": "Kinematics"}}


@pytest.mark.parametrize("stock, fixed", [(MergeEnv, RampMergeEnv), (RoundaboutEnv, RoundaboutRouteEnv)])
def test_reward_with_array_actions(stock, fixed):
    with pytest.raises(ValueError, match="ambiguous"):  # stock: already while resetting
        env = stock(config=CONTINUOUS)
        env.reset(seed=0)
        env.step(np.array([0.0, 0.0]))
    env = fixed(config=CONTINUOUS)
    env.reset(seed=0)
    _, reward, *_ = env.step(np.array([0.0, 0.0]))
    assert np.isfinite(reward)


def test_intersection_does_not_retune_shared_idm_class():
    before = (IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN)
    env = IntersectionRouteEnv(config=CONTINUOUS)
    env.reset(seed=0)
    assert (IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN) == before


def test_lane_change_flag_counts_a_change():
    env = RampMergeEnv(config=CONTINUOUS)
    env.reset(seed=0)
    env._last_lane = ("a", "b", 0)
    env.vehicle.lane_index = ("a", "b", 1)
    rewards = env._rewards(np.zeros(2))
    assert rewards["lane_change_reward"] is True
