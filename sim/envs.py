"""highway-env scenarios, fixed for continuous actions and given routes, goals and commands.

Each class subclasses a stock environment and overrides only what is broken or missing:

* stock merge and roundabout rewards test `action in [0, 2]`, which raises on an array action
  ("truth value of an array is ambiguous"); `ContinuousRewardMixin` computes the lane-change
  term from the route instead;
* stock intersection writes IDM constants onto the shared `IDMVehicle` class, which leaks into
  every later environment of the same process (and so made results depend on episode order);
  its traffic uses a private subclass here;
* stock `on_road` tests only the ego's closest lane, and the racetrack's neighbouring lanes
  leave a seam between them (about 0.09 m on segment f-g): a lane change that crossed it ended
  the episode as "off road"; `ego_on_road` accepts any lane of the ego's road segment and the
  space between two neighbouring lanes' centre lines;
* highway-env draws a `CONTINUOUS_LINE` marking as one straight chord per lane: on an arc or
  the merge ramp's sine the solid edge then runs metres inside the lane in the frames;
  `_solid_curves` draws curved lanes' solid lines as `CONTINUOUS` (a polyline) instead;
* stock environments give a continuous-action ego no route: `route_edges` and `goal_reached`
  say where the ego must go, and `command` which choice (exit, turn) the scenario asks for.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from highway_env import utils
from highway_env.envs.common.observation import ObservationType
from highway_env.envs.highway_env import HighwayEnv
from highway_env.envs.intersection_env import IntersectionEnv
from highway_env.envs.merge_env import MergeEnv
from highway_env.envs.racetrack_env import RacetrackEnv, RacetrackEnvLarge
from highway_env.envs.roundabout_env import RoundaboutEnv
from highway_env.road.lane import LineType, StraightLane
from highway_env.road.road import Road
from highway_env.vehicle.behavior import IDMVehicle

from .fastroad import index_network
from .roads import CurvyLayout, curvy_highway, random_pieces

Edge = tuple[str, str]


class ScenarioMixin:
    """What the harness asks of every scenario environment."""

    command: int = 0
    command_names: tuple[str, ...] = ("follow",)

    def route_edges(self) -> tuple[Edge, ...]:
        """Road edges the ego should drive along, in order; empty means any road counts."""
        return ()

    def goal_reached(self) -> bool:
        """True once the ego has completed a goal-directed route (never, for open roads)."""
        return False

    def cruise_speed(self) -> float:
        return float(self.config["cruise_speed"])

    def traffic_pace(self) -> float | None:
        """[m/s] the pace of traffic at the start: the median target speed of the other vehicles
        (None without traffic). The harness scores route completion against it, so a safe driver
        who keeps pace with traffic can complete the route; a scenario may define its own."""
        ego = self.vehicle  # type: ignore[attr-defined]
        speeds = [float(getattr(v, "target_speed", v.speed)) for v in self.road.vehicles if v is not ego]  # type: ignore[attr-defined]
        return float(np.median(speeds)) if speeds else None

    def ego_on_road(self) -> bool:
        """On the drivable road: on a lane of the ego's road segment, or between two of them."""
        v, net = self.vehicle, self.road.network  # type: ignore[attr-defined]
        if v.on_road:
            return True
        lanes = [net.get_lane(i) for i in net.all_side_lanes(v.lane_index)]
        coords = [lane.local_coordinates(v.position) for lane in lanes]
        along = [lane.on_lane(v.position, s, 0.0) for lane, (s, _) in zip(lanes, coords)]
        if any(ok and lane.on_lane(v.position, s, d) for ok, lane, (s, d) in zip(along, lanes, coords)):
            return True
        lateral = [d for _, d in coords]
        return any(along[i] and along[i + 1] and lateral[i] * lateral[i + 1] < 0 for i in range(len(lanes) - 1))

    def _is_terminated(self) -> bool:
        cfg = self.config  # type: ignore[attr-defined]
        off = cfg.get("offroad_terminal", cfg.get("terminate_off_road", True)) and not self.ego_on_road()
        return bool(self.vehicle.crashed or off or self.goal_reached())  # type: ignore[attr-defined]

    def define_spaces(self) -> None:
        # The harness renders its own camera; stock observations (Kinematics normalises with
        # pandas every step) would only cost time, so the core observes nothing.
        super().define_spaces()  # type: ignore[misc]
        self.observation_type = _NullObservation(self)
        self.observation_space = self.observation_type.space()

    def _reset(self) -> None:
        super()._reset()  # type: ignore[misc]
        index_network(self.road.network)
        _solid_curves(self.road.network)  # type: ignore[attr-defined]


def _solid_curves(network) -> None:
    """Solid markings of lanes that are not straight: a polyline, not a chord."""
    for lanes in (lanes for to in network.graph.values() for lanes in to.values()):
        for lane in lanes:
            if not isinstance(lane, StraightLane) and LineType.CONTINUOUS_LINE in lane.line_types:
                lane.line_types = [LineType.CONTINUOUS if t == LineType.CONTINUOUS_LINE else t for t in lane.line_types]


class _NullObservation(ObservationType):
    def space(self) -> spaces.Space:
        return spaces.Box(0.0, 0.0, shape=(1,), dtype=np.float32)

    def observe(self) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)


class ContinuousRewardMixin:
    """Stock rewards that crash on array actions; a lane change is read off the ego's lane."""

    def _rewards(self, action) -> dict[str, float]:  # type: ignore[override]
        lane = getattr(self.vehicle, "lane_index", None)
        changed = lane is not None and getattr(self, "_last_lane", lane)[2] != lane[2]
        self._last_lane = lane
        return super()._rewards(_LaneChangeFlag(changed))  # type: ignore[misc]


class _LaneChangeFlag:
    """Stands in for a discrete action in stock reward code: `flag in [0, 2]` is the flag."""

    def __init__(self, changed: bool) -> None:
        self.changed = changed

    def __eq__(self, other: object) -> bool:
        return self.changed and other in (0, 2)

    __hash__ = None  # type: ignore[assignment]


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


class RouteMixin(ScenarioMixin):
    """Goal-directed scenarios: the command picks a destination node, the route is the shortest path."""

    DESTINATIONS: tuple[str, ...] = ()
    EXIT_NODES: tuple[str, ...] = ()  # nodes that end an exit road, right or wrong
    START_NODE = ""
    GOAL_DISTANCE = 20.0  # [m] along the final edge that counts as arrived

    def _reset(self) -> None:
        # Drawn first, so that the command is uniform over seeds whatever traffic set-up consumes.
        fixed = self.config.get("command")
        n = len(self.DESTINATIONS)
        if fixed is not None and not 0 <= int(fixed) < n:
            raise ValueError(f"command must be in [0, {n}), got {fixed}")
        self.command = int(fixed) if fixed is not None else int(self.np_random.integers(n))
        super()._reset()  # type: ignore[misc]
        path = self.road.network.shortest_path(self.START_NODE, self.DESTINATIONS[self.command])
        self._route = tuple(zip(path[:-1], path[1:]))

    def route_edges(self) -> tuple[Edge, ...]:
        return self._route

    def goal_reached(self) -> bool:
        lane = self.vehicle.lane_index
        if lane[:2] != self._route[-1]:
            return False
        s, _ = self.road.network.get_lane(lane).local_coordinates(self.vehicle.position)
        return bool(s >= self.GOAL_DISTANCE)

    def _is_terminated(self) -> bool:
        return bool(super()._is_terminated() or self._left_route())

    def _left_route(self) -> bool:
        """Arrived on an exit road that is not the commanded one (a wrong turn)."""
        lane = self.vehicle.lane_index
        on_exit = lane[1] in self.EXIT_NODES
        return bool(on_exit and lane[:2] != self._route[-1])



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
        placements = [(ring[int(i)], int(rng.integers(2))) for i in rng.choice(len(ring), c["ring_vehicles"], replace=False)]
        placements += [(arms[int(i)], 0) for i in rng.choice(len(arms), c["entering_vehicles"], replace=False)]
        for (a, b), lane_id in placements:
            lane = road.network.get_lane((a, b, lane_id))
            s = float(rng.uniform(0.2, 0.8) * lane.length) if a in dict(ring) else float(rng.uniform(30.0, 80.0))
            v = cls.make_on_lane(road, (a, b, lane_id), longitudinal=s, speed=float(rng.uniform(*c["traffic_speed_range"])))
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
            }
        )
        return cfg

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
