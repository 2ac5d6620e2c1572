"""The stock environments crash with continuous actions; the suite's subclasses do not."""

import numpy as np
import pytest
from highway_env.envs.merge_env import MergeEnv
from highway_env.envs.roundabout_env import RoundaboutEnv
from highway_env.vehicle.behavior import IDMVehicle

from steerbench.sim.envs import IntersectionRouteEnv, RacetrackScenarioEnv, RampMergeEnv, RoundaboutRouteEnv

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


def test_the_seam_between_two_racetrack_lanes_is_on_the_road():
    env = RacetrackScenarioEnv(config=CONTINUOUS)
    env.reset(seed=0)
    net, ego = env.road.network, env.vehicle
    left, right = net.get_lane(("f", "g", 0)), net.get_lane(("f", "g", 1))
    seam = (left.position(5.0, 0.0) + right.position(5.0, 0.0)) / 2
    assert left.local_coordinates(seam)[1] > left.width_at(5.0) / 2  # stock geometry: a gap
    ego.position, ego.heading = seam, left.heading_at(5.0)
    ego.on_state_update()
    assert not ego.on_road  # what stock highway-env says
    assert env.ego_on_road() and not env._is_terminated()
    ego.position = left.position(5.0, -left.width_at(5.0) / 2 - 1.0)  # a metre past the outer edge
    ego.on_state_update()
    assert not env.ego_on_road() and env._is_terminated()
