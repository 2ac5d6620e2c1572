"""What every steerbench scenario environment shares: the harness's contract, and the fixes to
stock highway-env that all scenarios need (the scenarios themselves are in `envs.py`).

* stock merge and roundabout rewards test `action in [0, 2]`, which raises on an array action
  ("truth value of an array is ambiguous"); `ContinuousRewardMixin` computes the lane-change
  term from the route instead;
* stock `on_road` tests only the ego's closest lane, and the racetrack's neighbouring lanes
  leave a seam between them (about 0.09 m on segment f-g): a lane change that crossed it ended
  the episode as "off road"; `ego_on_road` accepts any lane of the ego's road segment and the
  space between two neighbouring lanes' centre lines;
* highway-env draws a `CONTINUOUS_LINE` marking as one straight chord per lane: on an arc or
  the merge ramp's sine the solid edge then runs metres inside the lane in the frames;
  `_solid_curves` draws curved lanes' solid lines as `CONTINUOUS` (a polyline) instead;
* stock environments give a continuous-action ego no route: `route_edges` and `goal_reached`
  say where the ego must go, and `command` which choice (exit, turn) the scenario asks for;
  `RouteMixin` derives them from a destination node.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from highway_env.envs.common.observation import ObservationType
from highway_env.road.lane import LineType, StraightLane

from .fastroad import index_network

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
        """[m/s] the speed the ego's cruise control aims for (the scenario's `cruise_speed`)."""
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
