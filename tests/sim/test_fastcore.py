"""The fast simulation core changes speed, never results: same trajectories, collisions, frames.

Stock and fast environments step in lockstep on the same seeds and actions (the privileged
expert's, computed on the stock one), and every vehicle's position, heading, speed, lane and
crash flag, the frames, rewards and step records are compared exactly after every step.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from highway_env.envs.common.graphics import EnvViewer
from highway_env.road.graphics import LaneGraphics, RoadGraphics
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import Road, RoadNetwork
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import ControlledVehicle
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import RoadObject

from steerbench.agents.expert import ExpertAgent
from steerbench.sim import fastcore
from steerbench.sim.env import SteerEnv
from steerbench.sim.fastroad import IndexedRoadNetwork
from steerbench.sim.fastvehicle import scalar_clip
from steerbench.sim.runner import EnvSettings, EpisodeRunner
from steerbench.sim.scenarios import SUITE, episode_seed
from steerbench.sim.types import CameraConfig, EpisodeInfo, Observation

STEPS = 40  # policy steps at 5 Hz: 8 s, with lane changes, merges, yielding and turns

def stock_functions() -> dict:
    """The highway-env functions the fast core speeds up, as the classes hold them now."""
    return {
        "Road.neighbour_vehicles": Road.neighbour_vehicles, "Road.step": Road.step, "Road.act": Road.act,
        "RoadNetwork.get_closest_lane_index": RoadNetwork.get_closest_lane_index,
        "IndexedRoadNetwork.get_closest_lane_index": IndexedRoadNetwork.get_closest_lane_index,
        "RegulatedRoad.is_conflict_possible": RegulatedRoad.__dict__["is_conflict_possible"],
        "IDMVehicle.act": IDMVehicle.act, "IDMVehicle.acceleration": IDMVehicle.acceleration,
        "ControlledVehicle.steering_control": ControlledVehicle.steering_control, "Vehicle.step": Vehicle.step,
        "RoadObject.handle_collisions": RoadObject.handle_collisions, "EnvViewer.display": EnvViewer.display,
        "RoadGraphics.display": RoadGraphics.__dict__["display"],
        "LaneGraphics.display": LaneGraphics.__dict__["display"], "np.clip": np.clip,
    }


# Captured at import: the fast core must never replace them globally.
STOCK = stock_functions()


def state(env: SteerEnv) -> list[tuple]:
    road = env.core.road
    return [
        (v.position.tobytes(), float(v.heading), float(v.speed), v.lane_index,
         getattr(v, "target_lane_index", None), bool(v.crashed), getattr(v, "target_speed", None))
        for v in road.vehicles + road.objects
    ]


def lockstep(scenario: str, split: str, seed: int, steps: int, mode: str = "steering", actions=None,
             camera: CameraConfig | None = None) -> dict:
    """Step stock and fast envs together; assert they agree exactly; return what happened."""
    stock = SteerEnv(scenario, split, mode=mode, camera=camera)
    fast = SteerEnv(scenario, split, mode=mode, camera=camera, fast=True)
    obs_s, info_s = stock.reset(seed=seed)
    obs_f, info_f = fast.reset(seed=seed)
    assert info_s == info_f and state(stock) == state(fast)
    expert = ExpertAgent()
    expert.reset(EpisodeInfo(scenario, split, seed, 0, stock.policy_hz, mode, stock.command,
                             stock.spec_.commands, stock.max_steps, stock.camera_config))
    seen = {"lane_changes": 0, "yields": 0, "crashed": False, "steps": 0}
    lanes = {id(v): v.lane_index for v in stock.core.road.vehicles}
    for k in range(steps):
        view = Observation(obs_s["frames"], float(obs_s["speed"][0]), int(obs_s["command"]),
                           stock.road_prior(), stock.ground_truth())
        action = expert.act(view) if actions is None else actions(k)
        obs_s, r_s, term_s, trunc_s, info_s = stock.step(action)
        obs_f, r_f, term_f, trunc_f, info_f = fast.step(action)
        assert state(stock) == state(fast), f"{scenario}: vehicles differ after step {k}"
        assert np.array_equal(obs_s["frames"], obs_f["frames"]), f"{scenario}: frames differ after step {k}"
        assert np.array_equal(stock.render(), fast.render()), f"{scenario}: RGB frames differ after step {k}"
        assert (r_s, term_s, trunc_s, obs_s["speed"].tobytes()) == (r_f, term_f, trunc_f, obs_f["speed"].tobytes())
        assert info_s["record"] == info_f["record"] and info_s["crashed"] == info_f["crashed"]
        for v in stock.core.road.vehicles:
            old = lanes.get(id(v))
            seen["lane_changes"] += old is not None and old[:2] == v.lane_index[:2] and old[2] != v.lane_index[2]
            lanes[id(v)] = v.lane_index
        seen["yields"] += sum(bool(getattr(v, "is_yielding", False)) for v in stock.core.road.vehicles)
        seen["crashed"] |= bool(info_s["crashed"])
        seen["steps"] = k + 1
        if term_s or trunc_s:
            break
    assert isinstance(fast.core.road, fastcore.FastRoadCore) and not isinstance(stock.core.road, fastcore.FastRoadCore)
    stock.close()
    fast.close()
    return seen


@pytest.mark.parametrize("scenario", list(SUITE))
def test_fast_core_is_bit_identical(scenario):
    seen = lockstep(scenario, "test", episode_seed("test", 0), STEPS)
    assert seen["steps"] >= 25, seen  # long enough to interact
    if scenario in ("highway", "racetrack"):
        assert seen["lane_changes"] > 0, seen  # the comparison covered lane changes
    if scenario == "intersection":
        assert seen["yields"] > 0, seen  # ... and right-of-way yielding


@pytest.mark.parametrize("scenario", list(SUITE))
def test_fast_core_is_bit_identical_on_the_train_layouts(scenario):
    seen = lockstep(scenario, "train", episode_seed("train", 0), 30)
    assert seen["steps"] >= 25, seen


def test_fast_core_is_bit_identical_through_a_crash():
    # Full throttle, no steering: the ego rear-ends the slow car placed ahead of it.
    seen = lockstep("highway", "train", episode_seed("train", 2), 80, mode="full",
                    actions=lambda k: np.array([1.0, 0.0]))
    assert seen["crashed"], seen


@pytest.mark.parametrize("scenario", ["roundabout", "merge"])
def test_fast_core_is_bit_identical_at_another_scale(scenario):
    # 8 px/m: stripes two pixels wide, a larger canvas, colour frames; curved and sine lanes.
    camera = CameraConfig(width=160, height=96, scaling=8.0, color=True)
    seen = lockstep(scenario, "train", episode_seed("train", 3), 15, camera=camera)
    assert seen["steps"] == 15, seen


def test_stock_classes_stay_stock():
    env = SteerEnv("intersection", "train", fast=True)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(2))
    assert type(env.core.road).__name__.startswith("Fast") and any(
        type(v).__name__.startswith("Fast") for v in env.core.road.vehicles)
    assert stock_functions() == STOCK
    stock = SteerEnv("intersection", "train")
    stock.reset(seed=0)
    assert type(stock.core.road) is RegulatedRoad and type(stock.camera.viewer) is EnvViewer
    env.close()
    stock.close()


def test_scalar_clip_matches_numpy():
    values = [-0.0, 0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 5e-324, np.float64(-0.0), np.pi, 0, 1, -1]
    for a, lo, hi in itertools.product(values, repeat=3):
        x, y = np.clip(a, lo, hi), scalar_clip(a, lo, hi)
        assert type(x) is type(y) and (x == y or (np.isnan(x) and np.isnan(y)))
        assert math.copysign(1.0, x) == math.copysign(1.0, y), (a, lo, hi)


@pytest.mark.parametrize("scenario", list(SUITE))
def test_closest_lane_matches_the_indexed_search(scenario):
    env = SteerEnv(scenario, "test", fast=True)
    env.reset(seed=0)
    net = env.core.road.network
    rng = np.random.default_rng(0)
    lanes = net.lanes_list()
    queries = []
    for lane in lanes:  # on, between and beyond lanes, and exactly on the wrap of circular lanes
        for s in np.linspace(-8.0, lane.length + 8.0, 7):
            for lat in (0.0, lane.width / 2, lane.width, 3 * lane.width):
                queries.append((lane.position(s, lat), lane.heading_at(s) + rng.normal(0, 0.3)))
    queries += [(lane.center + lane.radius * np.array([np.cos(lane.start_phase + np.pi),
                                                       np.sin(lane.start_phase + np.pi)]), 0.0)
                for lane in lanes if hasattr(lane, "center")]
    exact = IndexedRoadNetwork.get_closest_lane_index
    for position, heading in queries:
        for h in (heading, None):
            assert net.get_closest_lane_index(position, h) == exact(net, position, h)
    env.close()


def test_neighbours_match_stock_with_ties_and_edges():
    env = SteerEnv("highway", "test", fast=True)
    env.reset(seed=3)
    road = env.core.road
    net = road.network
    a, b, c = road.vehicles[1:4]
    b.position = a.position.copy()  # an exact tie ahead of / behind everyone else on that lane
    lane = net.get_lane(c.lane_index)
    s, _ = lane.local_coordinates(c.position)
    c.position = lane.position(s, lane.width_at(s) / 2 + 1.0)  # on the on_lane margin's edge
    net.refresh()
    road._frame = fastcore._Frame(road, net.table)  # what FastRoadCore.act sets up
    try:
        for v in road.vehicles:
            for index in [v.lane_index, *net.side_lanes(v.lane_index)]:
                assert road.neighbour_vehicles(v, index) == Road.neighbour_vehicles(road, v, index)
    finally:
        road._frame = None
    env.close()


def test_env_settings_carry_the_option_without_changing_identity():
    fast, stock = EnvSettings(fast=True), EnvSettings()
    assert fast == stock and fast.fast and not stock.fast  # same run identity, config.json and manifests
    runner = EpisodeRunner()
    assert runner.env("merge", "train", fast).fast and not runner.env("merge", "train", stock).fast
    runner.close()
