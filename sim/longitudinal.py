"""The shared longitudinal controller: IDM-style adaptive cruise with a radar-like sensor.

In `steering` mode the harness drives the throttle of every agent with `AdaptiveCruise`, so that
contestants differ only in steering. The radar measures what a real ACC radar measures: range
and range-rate of objects inside its field of view, near the ego's predicted path. It also
brakes for crossing traffic predicted to meet that path within a short horizon (the
automatic-emergency-braking part), because a steering-only agent cannot.

The predicted path (`predicted_path`) comes from the ego's pose and the road, not from its
steering command: the arc of one step's command of 0.01 (a little jitter) passes 2 m beside a
leader 50 m ahead, so the radar dropped the leader and the cruise drove noisy steerers into it.
Like a production ACC's lane-based path prediction, the path follows the centre line of the lane
the ego is on (and the lanes after it, along the scenario's route), held at the ego's current
lateral offset, plus a drift from the ego's heading relative to the lane: the ego keeps that
relative heading for about a second of travel, then runs parallel to the lane, and the drift
ends on the first lane centre in its heading's direction (a car heading back to its lane's
centre settles there, one leaving its lane settles in the next). Heading is the integral of the
yaw rate, so it is already a low-pass record of the motion: one step's command moves it by a
fraction of a degree. Below a crawl (3 m/s) the arc of the steering command is blended in,
fully at a standstill: a stopped car's pose cannot show where it will go, and without it a car
stopped behind an obstacle could never pull out round it. The model has no state, and it is the
same function of pose, road and applied command for every contestant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from highway_env.road.lane import AbstractLane, CircularLane, SineLane, StraightLane

from .types import LaneIndex, VehicleState


@dataclass(frozen=True)
class IDMParams:
    """Intelligent Driver Model constants (same as highway-env's IDMVehicle)."""

    a_max: float = 3.0  # [m/s2] maximum acceleration
    b_comfort: float = 5.0  # [m/s2] comfortable deceleration
    b_max: float = 5.0  # [m/s2] hardest braking the actuator gives (±5 is the action range)
    time_gap: float = 1.5  # [s] desired time headway
    min_gap: float = 5.0  # [m] jam distance, bumper to bumper
    delta: float = 4.0  # acceleration exponent


def idm_acceleration(
    speed: float,
    desired_speed: float,
    gap: float | None = None,
    closing_speed: float = 0.0,
    p: IDMParams = IDMParams(),
) -> float:
    """IDM acceleration [m/s2]; `gap` is bumper to bumper [m], None when the road is free."""
    desired_speed = max(desired_speed, 0.1)
    free = p.a_max * (1.0 - (max(speed, 0.0) / desired_speed) ** p.delta)
    if gap is None:
        return float(np.clip(free, -p.b_max, p.a_max))
    s_star = p.min_gap + max(
        0.0, speed * p.time_gap + speed * closing_speed / (2.0 * np.sqrt(p.a_max * p.b_comfort))
    )
    interaction = p.a_max * (s_star / max(gap, 0.1)) ** 2
    return float(np.clip(free - interaction, -p.b_max, p.a_max))


@dataclass(frozen=True)
class RadarParams:
    range_m: float = 150.0  # [m] detection range: a stop from 30 m/s at 5 m/s2 takes 90 m
    fov_deg: float = 70.0  # [deg] half-angle of the field of view
    path_half_width: float = 2.0  # [m] lateral window around the predicted path
    conflict_horizon: float = 4.0  # [s] look-ahead for crossing traffic
    conflict_reach: float = 40.0  # [m] of the ego's path checked for crossings
    conflict_radius: float = 3.0  # [m] centre distance from the ego's path that counts as crossing it
    time_window: float = 1.5  # [s] accepted gap between the two arrivals at the crossing
    creep_speed: float = 2.0  # [m/s] speed assumed for a stopped ego when timing its arrival
    commit_decel: float = 4.0  # [m/s2] closer than this braking distance, the ego goes on through
    step: float = 0.2  # [s] time step of the predictions


@dataclass(frozen=True)
class RadarTarget:
    gap: float  # [m] bumper to bumper along the path
    closing_speed: float  # [m/s] ego speed minus target speed along the path (> 0: closing)


def curvature_from_steering(steering: float, length: float, steering_range: float = np.pi / 4) -> float:
    """[1/m] path curvature of highway-env's kinematic bicycle for a normalised steering."""
    beta = np.arctan(0.5 * np.tan(np.clip(steering, -1, 1) * steering_range))
    return float(2.0 * np.sin(beta) / length)


def predict(v: VehicleState, times: np.ndarray, yaw_rate: float | None = None) -> np.ndarray:
    """(len(times), 2) positions under constant speed and turn rate (CTRV)."""
    w = v.yaw_rate if yaw_rate is None else yaw_rate
    if abs(w) < 1e-4:
        d = np.array([np.cos(v.heading), np.sin(v.heading)])
        return v.position + np.outer(v.speed * times, d)
    h = v.heading + w * times
    r = v.speed / w
    return v.position + np.stack([r * (np.sin(h) - np.sin(v.heading)), -r * (np.cos(h) - np.cos(v.heading))], axis=1)


@dataclass(frozen=True)
class PathParams:
    """The ego's predicted path: its lane's centre line, shifted by its offset and heading."""

    heading_memory: float = 1.0  # [s] travel over which the ego keeps its heading relative to the lane
    min_memory: float = 1.0  # [m] floor on that distance, for a (nearly) stopped ego
    max_heading_error_deg: float = 60.0  # [deg] beyond this no lane describes the motion: a straight ray
    # [m/s] below this the steering command's arc is blended in (weight 1 - speed / this): a
    # (nearly) stopped car cannot show by its motion where it will go, so a driver steering round
    # a stopped car would otherwise be held behind it for ever; at a crawl IDM reacts only to
    # objects a few metres ahead, where a command's jitter bends the arc by centimetres.
    command_speed: float = 3.0
    sample_step: float = 2.0  # [m] lane sampling; resampled to the radar's 1 m (chord error < 3 cm at R 20 m)
    max_segments: int = 8  # lane segments followed ahead


def predicted_path(
    network,
    ego: VehicleState,
    distances: np.ndarray,
    route: Sequence[LaneIndex] = (),
    curvature: float = 0.0,
    p: PathParams = PathParams(),
) -> np.ndarray:
    """(len(distances), 2) world points of the ego's predicted path at those arc lengths [m].

    `network` is highway-env's `RoadNetwork`; `route` the scenario's lanes (lane id None: any),
    followed where the ego is on it, else the road ahead that continues its lane. `curvature`
    [1/m] is the steering command's, used only below `p.command_speed`."""
    path = _lane_path(network, ego, distances, route, p)
    w = float(np.clip(1.0 - ego.speed / p.command_speed, 0.0, 1.0))
    if w > 0.0:
        arc = predict(dataclasses.replace(ego, speed=1.0), distances, yaw_rate=curvature)
        path = _resample((1.0 - w) * path + w * arc, distances, ego.heading)
    return path


def _lane_path(
    network, ego: VehicleState, distances: np.ndarray, route: Sequence[LaneIndex], p: PathParams
) -> np.ndarray:
    """The path from the pose and the road alone (see the module docstring)."""
    if ego.lane_index is None:
        return _ray(ego, distances)
    lane = network.get_lane(ego.lane_index)
    s0, d0 = lane.local_coordinates(ego.position)
    error = _wrap(ego.heading - lane.heading_at(s0))
    if abs(error) > np.radians(p.max_heading_error_deg):
        return _ray(ego, distances)
    memory = max(ego.speed * p.heading_memory, p.min_memory)
    width = float(lane.width_at(s0))
    # Lane arc length to sample: an offset path inside a curve is a little shorter than the lane
    # (and `_resample` goes straight on past the end), so a margin.
    reach = 1.1 * float(distances[-1]) + p.sample_step

    # The drift ends at the first lane centre ahead of the ego in its heading's direction: a car
    # heading back to its lane's centre settles there, one leaving its lane settles in the next.
    if error >= 0:
        settle = width * np.floor(d0 / width + 1.0)
    else:
        settle = width * np.ceil(d0 / width - 1.0)

    def offset(travelled: np.ndarray) -> np.ndarray:
        shifted = d0 + np.tan(error) * memory * (1.0 - np.exp(-travelled / memory))
        return np.minimum(shifted, settle) if error >= 0 else np.maximum(shifted, settle)

    points = [ego.position[None, :]]
    index, s, travelled = ego.lane_index, float(s0), 0.0
    for _ in range(p.max_segments):
        end = min(float(lane.length), s + reach - travelled)
        if end > s:
            ss = np.append(np.arange(s + p.sample_step, end, p.sample_step), end)
            points.append(_lane_points(lane, ss, offset(travelled + ss - s)))
            travelled += end - s
        if travelled >= reach:
            break
        nxt = network.next_lane(index, route=_remaining(route, index), position=lane.position(lane.length, 0.0))
        if nxt == index:  # the road ends here
            break
        index, lane = nxt, network.get_lane(nxt)
        # Go on from abreast of the last point, never back: joined lanes may overlap a little,
        # and the ego may already be past its lane's end before its lane index moves on.
        s = max(float(lane.local_coordinates(points[-1][-1])[0]), 0.0)
    path = np.concatenate(points)
    return _resample(path, distances, ego.heading)


def _remaining(route: Sequence[LaneIndex], index: LaneIndex) -> list | None:
    """A fresh copy of the route from the ego's edge on, or None off it: stock `next_lane` pops
    the list it is given, and logs a warning for a route that does not start at the edge."""
    edges = [r[:2] for r in route]
    if index[:2] not in edges:
        return None
    return [tuple(r) for r in route[edges.index(index[:2]):]]


def _lane_points(lane: AbstractLane, s: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """`lane.position` for many points; exact types only, since a subclass may override it."""
    kind = type(lane)
    if kind in (StraightLane, SineLane):
        if kind is SineLane:
            lateral = lateral + lane.amplitude * np.sin(lane.pulsation * s + lane.phase)
        return lane.start + s[:, None] * lane.direction + lateral[:, None] * lane.direction_lateral
    if kind is CircularLane:
        phi = lane.direction * s / lane.radius + lane.start_phase
        r = lane.radius - lateral * lane.direction
        return lane.center + r[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    return np.array([lane.position(a, b) for a, b in zip(s, lateral)])


def _resample(path: np.ndarray, distances: np.ndarray, heading: float) -> np.ndarray:
    """Points at the given arc lengths along a polyline; past its end, straight on."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    keep = np.append(True, seg > 1e-9)
    path, seg = path[keep], seg[seg > 1e-9]
    if len(path) < 2:
        return path[0] + np.outer(distances, [np.cos(heading), np.sin(heading)])
    arc = np.append(0.0, np.cumsum(seg))
    out = np.stack([np.interp(distances, arc, path[:, 0]), np.interp(distances, arc, path[:, 1])], axis=1)
    beyond = distances > arc[-1]
    if beyond.any():
        tangent = (path[-1] - path[-2]) / seg[-1]
        out[beyond] = path[-1] + np.outer(distances[beyond] - arc[-1], tangent)
    return out


def _ray(ego: VehicleState, distances: np.ndarray) -> np.ndarray:
    return ego.position + np.outer(distances, [np.cos(ego.heading), np.sin(ego.heading)])


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


class Radar:
    """Finds the most constraining object ahead: an in-path lead or a predicted crossing.

    The ego's path is given as points every metre (`distances`), normally `predicted_path`'s;
    without one it is the arc of `curvature`. Other vehicles move at constant speed and turn
    rate, as a tracking radar estimates them.
    """

    def __init__(self, params: RadarParams = RadarParams()) -> None:
        self.p = params
        self._s = np.arange(0.0, params.range_m + 1.0, 1.0)  # [m] samples along the ego's path
        self._t = np.arange(0.0, params.conflict_horizon + 1e-9, params.step)
        self._reach = int(params.conflict_reach) + 1

    @property
    def distances(self) -> np.ndarray:
        """[m] arc lengths at which the radar wants the ego's path (from 0, every metre)."""
        return self._s.copy()

    def target(
        self,
        ego: VehicleState,
        others: Sequence[VehicleState],
        curvature: float = 0.0,
        path: np.ndarray | None = None,
    ) -> RadarTarget | None:
        if path is None:
            path = predict(dataclasses.replace(ego, speed=1.0), self._s, yaw_rate=curvature)  # an arc
        elif path.shape != (len(self._s), 2):
            raise ValueError(f"path must be {len(self._s)} points, one per metre from the ego; got {path.shape}")
        best: RadarTarget | None = None
        for other in others:
            if not self._visible(ego, other):
                continue
            hit = self._in_path(ego, other, path) or self._crossing(ego, other, path)
            if hit is not None and (best is None or hit.gap < best.gap):
                best = hit
        return best

    def _visible(self, ego: VehicleState, other: VehicleState) -> bool:
        d = other.position - ego.position
        dist = float(np.hypot(*d))
        if dist > self.p.range_m or dist < 1e-6:
            return dist < 1e-6
        bearing = np.arctan2(d[1], d[0]) - ego.heading
        bearing = (bearing + np.pi) % (2 * np.pi) - np.pi
        return abs(np.degrees(bearing)) <= self.p.fov_deg

    def _in_path(self, ego: VehicleState, other: VehicleState, path: np.ndarray) -> RadarTarget | None:
        dists = np.linalg.norm(path - other.position, axis=1)
        i = int(np.argmin(dists))
        if i == 0 or dists[i] > self.p.path_half_width + other.width / 2:
            return None
        tangent = path[min(i + 1, len(path) - 1)] - path[i - 1]
        along = float(np.dot(other.velocity, tangent / max(np.linalg.norm(tangent), 1e-9)))
        gap = self._s[i] - (ego.length + other.length) / 2
        return RadarTarget(gap=max(gap, 0.0), closing_speed=ego.speed - along)

    def _crossing(self, ego: VehicleState, other: VehicleState, path: np.ndarray) -> RadarTarget | None:
        """Gap acceptance: brake for a car that will cross the ego's path within the time window
        around the ego's own arrival there (post-encroachment time, as at a yield line)."""
        if other.speed < 1.0:  # a (nearly) stopped car off the path will not move into it
            return None
        future = predict(other, self._t)
        near = np.linalg.norm(future[:, None, :] - path[None, : self._reach, :], axis=2) < self.p.conflict_radius
        hits = np.argwhere(near)
        if not len(hits):
            return None
        ti, si = hits[0]  # the other car's earliest arrival on the path, and where
        tangent = path[min(si + 1, len(path) - 1)] - path[max(si - 1, 0)]
        cos = np.dot(tangent, [np.cos(other.heading), np.sin(other.heading)]) / max(np.linalg.norm(tangent), 1e-9)
        if cos > np.cos(np.radians(30)):  # travelling along the path: the in-path logic's job
            return None
        distance = self._s[si]
        if distance < ego.speed**2 / (2 * self.p.commit_decel) + 1.0:
            return None  # too late to stop short of it: braking would only park the car in its way
        ego_arrival = distance / max(ego.speed, self.p.creep_speed)
        if abs(ego_arrival - self._t[ti]) > self.p.time_window:
            return None
        # The crossing point is treated as a stopped obstacle on the ego's path.
        return RadarTarget(
            gap=max(distance - ego.length / 2 - self.p.conflict_radius / 2, 0.0), closing_speed=ego.speed
        )


@dataclass(frozen=True)
class CruiseParams:
    idm: IDMParams = IDMParams()
    radar: RadarParams = RadarParams()
    max_accel: float = 5.0  # [m/s2] the acceleration that the normalised action 1.0 maps to


class AdaptiveCruise:
    """IDM on the radar's target; returns a normalised acceleration command in [-1, 1]."""

    def __init__(self, params: CruiseParams = CruiseParams()) -> None:
        self.p = params
        self.radar = Radar(params.radar)

    def accel(
        self,
        ego: VehicleState,
        others: Sequence[VehicleState],
        desired_speed: float,
        curvature: float = 0.0,
        path: np.ndarray | None = None,
    ) -> float:
        """`path`: the ego's predicted path at `self.radar.distances`; without it, the arc of
        `curvature` [1/m]."""
        tgt = self.radar.target(ego, others, curvature, path)
        if tgt is None:
            a = idm_acceleration(ego.speed, desired_speed, p=self.p.idm)
        else:
            a = idm_acceleration(ego.speed, desired_speed, tgt.gap, tgt.closing_speed, self.p.idm)
        return float(np.clip(a / self.p.max_accel, -1.0, 1.0))
