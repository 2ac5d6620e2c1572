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


def test_solid_edges_of_curves_are_drawn_on_the_curve():
    """Stock highway-env draws a CONTINUOUS_LINE as a chord: on an arc it runs inside the lane."""
    from highway_env.road.lane import StraightLane

    from steerbench.sim.env import SteerEnv

    env = SteerEnv("highway", "train")
    obs, _ = env.reset(seed=0)
    for _ in range(60):  # drive until the ego is on an arc
        if not isinstance(env.core.road.network.get_lane(env.core.vehicle.lane_index), StraightLane):
            break
        obs, *_ = env.step(np.zeros(2))
    ego_lane = env.core.vehicle.lane_index
    lane = env.core.road.network.get_lane(ego_lane)
    assert not isinstance(lane, StraightLane), "the test needs the ego on an arc"
    frame = obs["frames"][-1].astype(int)
    road = np.median(frame)
    lanes_count = len(env.core.road.network.graph[ego_lane[0]][ego_lane[1]])
    edges = [env.core.road.network.get_lane((*ego_lane[:2], i)) for i in (0, lanes_count - 1)]
    hits = total = 0
    for edge, side in zip(edges, (-1, 1)):
        s0 = edge.local_coordinates(env.core.vehicle.position)[0]
        pts = np.array([edge.position(s, side * edge.width_at(s) / 2) for s in np.arange(s0, s0 + 40, 2.0)])
        for u, v in env.camera.world_to_pixel(pts, env.pose):
            u, v = int(u), int(v)
            if 1 <= u < frame.shape[1] - 1 and 1 <= v < frame.shape[0] - 1:
                total += 1
                hits += frame[v - 1:v + 2, u - 1:u + 2].max() > road + 50  # a marking pixel within 1 px
    assert total > 10 and hits / total > 0.9, (hits, total)
