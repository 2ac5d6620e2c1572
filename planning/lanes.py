"""Lane following on a known road map: which lane to track, and the steering to track it.

`LaneFollower` is a port of highway-env's `ControlledVehicle.steering_control` (a cascade of a
lateral-position P controller, a heading P controller and a bicycle-model inversion), which holds
the lane centre within 0.6 m on the racetrack and exactly on straight roads. `LaneTracker` keeps
the target lane as the ego moves from one road segment to the next, along a route if one is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.sim.types import LaneIndex, VehicleState

STEERING_RANGE = np.pi / 4  # [rad] steering that the normalised action 1.0 maps to


def wrap_to_pi(angle: float) -> float:
    """`angle` [rad] wrapped to [-pi, pi)."""
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


@dataclass(frozen=True)
class LaneFollowerParams:
    """Time constants of the lane follower's cascade, and the bicycle's length."""

    tau_lateral: float = 0.6  # [s] time constant of the lateral-offset loop
    tau_heading: float = 0.2  # [s] time constant of the heading loop
    tau_pursuit: float = 0.1  # [s] how far ahead the lane heading is read
    wheelbase: float = 5.0  # [m] vehicle length used by the bicycle-model inversion


class LaneFollower:
    """Steering command that brings the ego onto a lane's centre line."""

    def __init__(self, params: LaneFollowerParams = LaneFollowerParams()) -> None:
        self.p = params

    def steer(self, lane, ego: VehicleState, lateral_bias: float = 0.0) -> float:
        """Normalised steering in [-1, 1] to follow `lane` (a highway-env lane object)."""
        p, speed = self.p, max(ego.speed, 0.5)
        s, lateral = lane.local_coordinates(ego.position)
        future_heading = lane.heading_at(s + speed * p.tau_pursuit)
        lateral_speed = -(lateral - lateral_bias) / p.tau_lateral
        heading_cmd = np.arcsin(np.clip(lateral_speed / speed, -1, 1))
        heading_ref = future_heading + np.clip(heading_cmd, -np.pi / 4, np.pi / 4)
        yaw_rate = wrap_to_pi(heading_ref - ego.heading) / p.tau_heading
        slip = np.arcsin(np.clip(p.wheelbase / 2 / speed * yaw_rate, -1, 1))
        angle = np.arctan(2 * np.tan(slip))
        return float(np.clip(angle / STEERING_RANGE, -1.0, 1.0))


class LaneTracker:
    """The lane to follow, carried across segment ends (along `route` when it is set)."""

    def __init__(self, network, lane: LaneIndex, route: Sequence[LaneIndex] = ()) -> None:
        self.network = network
        self.lane = lane
        self.route = tuple(route)

    def update(self, position: np.ndarray, current: LaneIndex | None = None) -> LaneIndex:
        """Advance past finished segments. `current` is the lane the ego is on now, when known:
        arcs longer than half a turn report a negative `s` near their end, so the arc length
        alone cannot tell that a segment is finished."""
        for _ in range(8):
            lane = self.network.get_lane(self.lane)
            entered_next = current is not None and current[0] == self.lane[1] and current[:2] != self.lane[:2]
            if not entered_next and lane.local_coordinates(position)[0] < lane.length:
                break
            nxt = self.network.next_lane(self.lane, route=self.remaining_route(), position=position)
            if nxt == self.lane:
                break
            self.lane = nxt
        return self.lane

    def remaining_route(self) -> list | None:
        """The route from the current edge on (stock `next_lane` expects it to start there)."""
        edges = [r[:2] for r in self.route]
        if self.lane[:2] not in edges:
            return None
        return list(self.route[edges.index(self.lane[:2]):])

    def side_lanes(self) -> list[LaneIndex]:
        """The lanes beside the followed one that are not forbidden."""
        return [i for i in self.network.side_lanes(self.lane) if not self.network.get_lane(i).forbidden]


def centre_line(network, lane_index: LaneIndex, route: Sequence[LaneIndex], ego: VehicleState,
                behind_m: float = 5.0, ahead_m: float = 100.0, step_m: float = 2.0, bridge: bool = False) -> np.ndarray:
    """A lane's centre line from `behind_m` behind the ego to `ahead_m` ahead, across segment
    ends (along `route` when it is set), in the ego frame (x ahead, y right).

    With `bridge`, where the next lane starts away from a lane's end, the line goes on along the
    lane past its end to where it crosses the next lane's backward extension, and along that
    extension from there (`bridge_crossing`). Without it, a straight chord spans the gap."""
    lane = network.get_lane(lane_index)
    s = lane.local_coordinates(ego.position)[0] - behind_m
    remaining = behind_m + ahead_m
    pts: list[np.ndarray] = []
    tracker = LaneTracker(network, lane_index, route)
    first = 0.0  # the least arc length sampled on this lane: below 0 only when bridged into
    for _ in range(6):
        nxt = network.next_lane(tracker.lane, route=tracker.remaining_route(), position=lane.position(lane.length, 0.0))
        cross = bridge_crossing(lane, network.get_lane(nxt)) if bridge and nxt != tracker.lane else None
        stop = min(lane.length if cross is None else cross[0], s + remaining)
        pts += [lane.position(si, 0.0) for si in np.arange(max(s, first), stop, step_m)]
        remaining -= stop - s
        if remaining <= 0 or nxt == tracker.lane:
            break
        tracker.lane, lane = nxt, network.get_lane(nxt)
        if cross is not None:
            s, first = cross[1], -np.inf
        else:
            # Joined segments may overlap by a little: go on from abreast of the last point, never
            # back (a backwards step would flip the polyline's tangent and the sign of offsets).
            s, first = (lane.local_coordinates(pts[-1])[0] + step_m if pts else 0.0), 0.0
    if len(pts) < 2:
        pts = [lane.position(0, 0), lane.position(lane.length, 0)]
    return ego.to_local(np.array(pts))


def bridge_crossing(lane, nxt, gap_m: float = 1.0, reach_m: float = 20.0,
                    step_m: float = 0.5) -> tuple[float, float] | None:
    """Where `lane` continued past its end crosses `nxt` extended back before its start, as arc
    lengths (on `lane`, on `nxt`); None when the two meet (within `gap_m`) or do not cross within
    `reach_m`. highway-env's roundabout starts each exit 5.6 m from the end of the ring lane it
    leaves, 46 degrees off its heading (the entries likewise): a chord across that gap takes the
    corner too early and a car tracking it cuts into the verge between the two lanes, while
    highway-env's own drivers follow the ring until the exit's lane begins."""
    end = lane.position(lane.length, 0.0)
    if np.linalg.norm(nxt.position(max(nxt.local_coordinates(end)[0], 0.0), 0.0) - end) < gap_m:
        return None
    last = None
    for s in np.arange(lane.length, lane.length + reach_m, step_m):
        s_next, lateral = nxt.local_coordinates(lane.position(s, 0.0))
        if s_next > 0:  # past the next lane's start without crossing it
            return None
        if last is not None and np.sign(lateral) != np.sign(last[1]):
            share = abs(last[1]) / max(abs(last[1]) + abs(lateral), 1e-9)
            return s - step_m * (1 - share), last[0] + (s_next - last[0]) * share
        last = (s_next, lateral)
    return None
