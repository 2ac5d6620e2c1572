"""highway-env scenarios, fixed for continuous actions and given routes, goals and commands.

Each class subclasses a stock environment and overrides only what is broken or missing; the
fixes that every scenario shares (array actions in stock rewards, the off-road test, curved
solid markings, routes and commands) are the mixins of `envmixins.py`. Fixed here:

* stock intersection writes IDM constants onto the shared `IDMVehicle` class, which leaks into
  every later environment of the same process (and so made results depend on episode order);
  its traffic uses a private subclass here.
"""

from __future__ import annotations

import numpy as np
from highway_env import utils
from highway_env.envs.highway_env import HighwayEnv
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.envs.merge_env import MergeEnv
from highway_env.envs.racetrack_env import RacetrackEnv, RacetrackEnvLarge, RacetrackEnvOval
from highway_env.envs.roundabout_env import RoundaboutEnv
from highway_env.road.road import Road
from highway_env.vehicle.behavior import IDMVehicle

from .envmixins import ContinuousRewardMixin, Edge, RouteMixin, ScenarioMixin
from .roads import CurvyLayout, curvy_highway, random_pieces

__all__ = [
    "ContinuousRewardMixin", "CurvyHighwayEnv", "Edge", "IntersectionRouteEnv", "RacetrackLargeScenarioEnv",
    "RacetrackScenarioEnv", "RampMergeEnv", "RoundaboutRouteEnv", "RouteMixin", "ScenarioMixin",
]


def _other_vehicle(env, road: Road, position, heading: float, speed: float, target: float):
    cls = utils.class_from_path(env.config["other_vehicles_type"])
    v = cls(road, position, heading=heading, speed=speed, target_speed=target)
    v.randomize_behavior()
    return v


class CurvyHighwayEnv(ScenarioMixin, HighwayEnv):
    """A curved multi-lane highway with slow vehicles that force lane changes."""

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update(
            {
                "lanes_count": 3,
                "vehicles_count": 16,
                "duration": 40,  # [s]
                "cruise_speed": 30.0,  # [m/s] what the ego's cruise control aims for
                "ego_speed": 25.0,  # [m/s] at the start
                "traffic_speed_range": [22.0, 27.0],  # [m/s] target speeds of normal traffic
                "slow_speed_range": [12.0, 18.0],  # [m/s] target speeds of slow vehicles
                "slow_fraction": 0.3,  # share of traffic that is slow
                "slow_leader_gap": [40.0, 70.0],  # [m] a slow car ahead in the ego's lane
                "spawn_window": [-60.0, 450.0],  # [m] where traffic is placed, from the ego
                "ego_clearance": 25.0,  # [m] no traffic this close to the ego at the start
                "radius_range": [300.0, 700.0],  # [m] curve radii
                "angle_range_deg": [12.0, 35.0],  # [deg] curve angles
                "offroad_terminal": True,
            }
        )
        return cfg

    def _layout(self) -> CurvyLayout:
        c = self.config
        return CurvyLayout(
            lanes=int(c["lanes_count"]),
            total_length=c["spawn_window"][1] + c["cruise_speed"] * c["duration"] + 400.0,
            radius_range=tuple(c["radius_range"]),
            angle_range_deg=tuple(c["angle_range_deg"]),
        )

    def _create_road(self) -> None:
        layout = self._layout()
        self._pieces = random_pieces(layout, self.np_random)
        self.road = Road(
            network=curvy_highway(self._pieces, layout),
            np_random=self.np_random,
            record_history=self.config["show_trajectories"],
        )

    def _place(self, s: float, lane: int) -> tuple[np.ndarray, float]:
        """World position and heading at arc length `s` along the road, in lane `lane`."""
        for k, piece in enumerate(self._pieces):
            ref = self.road.network.get_lane((f"s{k}", f"s{k + 1}", 0))
            if s <= ref.length or k == len(self._pieces) - 1:
                target = self.road.network.get_lane((f"s{k}", f"s{k + 1}", lane))
                s_lane = s * target.length / ref.length
                return target.position(s_lane, 0.0), target.heading_at(s_lane)
            s -= ref.length
        raise AssertionError("unreachable")

    def _create_vehicles(self) -> None:
        c, rng = self.config, self.np_random
        lanes = int(c["lanes_count"])
        ego_lane, ego_s = int(rng.integers(lanes)), float(rng.uniform(40.0, 60.0))
        pos, heading = self._place(ego_s, ego_lane)
        ego = self.action_type.vehicle_class(self.road, pos, heading, c["ego_speed"])
        self.controlled_vehicles = [ego]
        self.road.vehicles.append(ego)
        taken: list[tuple[int, float]] = [(ego_lane, ego_s)]

        def add(lane: int, s: float, target: float) -> None:
            p, h = self._place(s, lane)
            self.road.vehicles.append(_other_vehicle(self, self.road, p, h, target, target))
            taken.append((lane, s))

        add(ego_lane, ego_s + rng.uniform(*c["slow_leader_gap"]), rng.uniform(*c["slow_speed_range"]))
        lo, hi = c["spawn_window"]
        for _ in range(int(c["vehicles_count"]) - 1):
            for _attempt in range(20):
                lane, s = int(rng.integers(lanes)), ego_s + float(rng.uniform(lo, hi))
                clear = abs(s - ego_s) > c["ego_clearance"]
                if clear and s > 5.0 and all(l != lane or abs(s - t) > 15.0 for l, t in taken):
                    slow = rng.uniform() < c["slow_fraction"]
                    rng_range = c["slow_speed_range"] if slow else c["traffic_speed_range"]
                    add(lane, s, rng.uniform(*rng_range))
                    break


class RampMergeEnv(ContinuousRewardMixin, ScenarioMixin, MergeEnv):
    """The ego starts on the access ramp and must merge before the ramp ends at a barrier."""

    GOAL_X = 440.0  # [m] 130 m past the merge (stock ends at 370, where a stuck car scored 0.9)
    GOAL_DISTANCE = 130.0  # [m] along the last route edge, which starts at x = 310

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update(
            {
                "duration": 30,  # [s]
                "cruise_speed": 25.0,  # [m/s]
                "ego_speed": 20.0,  # [m/s]
                "highway_vehicles": 6,  # on the two main lanes
                "traffic_speed_range": [20.0, 26.0],  # [m/s]
                "traffic_window": [0.0, 260.0],  # [m] of highway where traffic starts
                "offroad_terminal": True,
            }
        )
        return cfg

    def _make_vehicles(self) -> None:
        c, rng, road = self.config, self.np_random, self.road
        ramp = road.network.get_lane(("j", "k", 0))
        ego_s = float(rng.uniform(20.0, 50.0))
        ego = self.action_type.vehicle_class(road, ramp.position(ego_s, 0.0), 0.0, c["ego_speed"])
        road.vehicles.append(ego)
        self.vehicle = ego
        self.controlled_vehicles = [ego]
        taken: list[tuple[int, float]] = []
        for _ in range(int(c["highway_vehicles"])):
            for _attempt in range(20):
                lane_id, x = int(rng.integers(2)), float(rng.uniform(*c["traffic_window"]))
                if all(l != lane_id or abs(x - t) > 20.0 for l, t in taken):
                    lane = road.network.get_lane(("a", "b", lane_id))
                    speed = float(rng.uniform(*c["traffic_speed_range"]))
                    road.vehicles.append(
                        _other_vehicle(self, road, lane.position(x, 0.0), 0.0, speed, speed)
                    )
                    taken.append((lane_id, x))
                    break

    def _is_truncated(self) -> bool:
        return self.time >= self.config["duration"]

    def route_edges(self) -> tuple[Edge, ...]:
        return (("j", "k"), ("k", "b"), ("b", "c"), ("c", "d"))

    def goal_reached(self) -> bool:
        return bool(self.vehicle.position[0] > self.GOAL_X and self.vehicle.lane_index[:2] == ("c", "d"))


class RoundaboutRouteEnv(ContinuousRewardMixin, RouteMixin, RoundaboutEnv):
    """Enter from the south and take the exit the command names."""

    DESTINATIONS = ("exr", "nxr", "wxr")
    EXIT_NODES = ("exr", "nxr", "wxr", "sxr")
    START_NODE = "ser"
    command_names = ("exit 1 (east)", "exit 2 (north)", "exit 3 (west)")

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update(
            {
                "duration": 30,  # [s]
                "cruise_speed": 10.0,  # [m/s]
                "command": None,  # None: drawn from the seed
                "ring_vehicles": 4,  # circulating traffic
                "entering_vehicles": 2,  # traffic entering from the other arms
                "traffic_speed_range": [7.0, 11.0],  # [m/s]
                "offroad_terminal": True,
            }
        )
        return cfg

    def _make_vehicles(self) -> None:
        c, rng, road = self.config, self.np_random, self.road
        ego_lane = road.network.get_lane(("ser", "ses", 0))
        ego = self.action_type.vehicle_class(
            road, ego_lane.position(125.0, 0.0), heading=ego_lane.heading_at(125.0), speed=8.0
        )
        road.vehicles.append(ego)
        self.vehicle = ego
        self.controlled_vehicles = [ego]
        cls = utils.class_from_path(c["other_vehicles_type"])
        ring = [("se", "ex"), ("ex", "ee"), ("ee", "nx"), ("nx", "ne"), ("ne", "wx"), ("wx", "we"), ("we", "sx")]
        arms = [("eer", "ees"), ("ner", "nes"), ("wer", "wes")]
        placements = [
            (ring[int(i)], int(rng.integers(2))) for i in rng.choice(len(ring), c["ring_vehicles"], replace=False)
        ]
        placements += [(arms[int(i)], 0) for i in rng.choice(len(arms), c["entering_vehicles"], replace=False)]
        for (a, b), lane_id in placements:
            lane = road.network.get_lane((a, b, lane_id))
            s = float(rng.uniform(0.2, 0.8) * lane.length) if a in dict(ring) else float(rng.uniform(30.0, 80.0))
            v = cls.make_on_lane(
                road, (a, b, lane_id), longitudinal=s, speed=float(rng.uniform(*c["traffic_speed_range"]))
            )
            v.plan_route_to(str(rng.choice(["exr", "sxr", "nxr", "wxr"])))
            v.randomize_behavior()
            if all(np.linalg.norm(v.position - o.position) > 12.0 for o in road.vehicles):
                road.vehicles.append(v)


class _IntersectionIDM(IDMVehicle):
    """Intersection traffic: stock code tunes these constants on the class it is given."""


class IntersectionRouteEnv(RouteMixin, IntersectionEnv):
    """Cross a four-way intersection from the south: left, straight or right as commanded."""

    DESTINATIONS = ("o1", "o2", "o3")  # left, straight, right, for an ego entering from o0 (tested)
    EXIT_NODES = ("o0", "o1", "o2", "o3")
    START_NODE = "o0"
    GOAL_DISTANCE = 25.0
    command_names = ("turn left", "go straight", "turn right")

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update(
            {
                "duration": 30,  # [s]
                "cruise_speed": 9.0,  # [m/s]
                "command": None,
                "other_vehicles_type": f"{__name__}._IntersectionIDM",
                "initial_vehicle_count": 8,
                "spawn_probability": 0.45,  # per policy step, stock 0.6
                "offroad_terminal": True,
            }
        )
        return cfg


class RacetrackScenarioEnv(ScenarioMixin, RacetrackEnv):
    """The stock two-lane racetrack with slower traffic to overtake."""

    # what --scenario-opt accepts (steerbench.sim.scenario_options): the stock oval's own limits
    OPTION_RANGES = {"oval_lanes": (2, 6), "oval_length": (50.0, 1000.0)}

    @classmethod
    def default_config(cls) -> dict:
        cfg = super().default_config()
        cfg.update(
            {
                "duration": 40,  # [s]
                "cruise_speed": 12.0,  # [m/s], lowered further by each section's speed limit
                "other_vehicles": 6,
                "traffic_speed_range": [5.0, 8.0],  # [m/s]
                "neighbour_vehicles_connected_lanes": True,
                "terminate_off_road": True,
                # True: highway-env's oval track in place of the split's own, a road layout to train
                # perception on beyond the two stock tracks (docs/scenarios.md), with its lanes and straights
                "oval": False,
                "oval_lanes": 3,  # [lanes]
                "oval_length": 100.0,  # [m] each straight
            }
        )
        return cfg

    def _make_road(self) -> None:
        if not self.config["oval"]:
            super()._make_road()
            return
        # the stock oval reads its shape from these keys (and at 0 draws it from an unseeded generator)
        self.config.update(no_lanes=int(self.config["oval_lanes"]), length=float(self.config["oval_length"]),
                           block_lane=False, force_decision=False)
        RacetrackEnvOval._make_road(self)

    def _make_vehicles(self) -> None:
        super()._make_vehicles()
        lo, hi = self.config["traffic_speed_range"]
        for v in self.road.vehicles:
            if v is not self.vehicle:
                v.target_speed = float(self.np_random.uniform(lo, hi))
                v.speed = min(v.speed, v.target_speed)

    def traffic_pace(self) -> float | None:
        """None: the track's traffic is only the slow cars placed to be overtaken (5-8 m/s, below
        its 10 m/s curves), not a flow to keep pace with; the pace is the track's speed limit."""
        return None


class RacetrackLargeScenarioEnv(RacetrackScenarioEnv, RacetrackEnvLarge):
    """The stock three-lane large racetrack (its `_make_road`): another layout, for the test split."""
