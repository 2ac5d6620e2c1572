"""The shared longitudinal controller: IDM-style adaptive cruise with a radar-like sensor.

In `steering` mode the harness drives the throttle of every agent with `AdaptiveCruise`, so that
contestants differ only in steering. The radar measures what a real ACC radar measures: range
and range-rate of objects inside its field of view, along the path predicted from the ego's
current yaw rate. It also brakes for crossing traffic predicted to meet the ego's path within a
short horizon (the automatic-emergency-braking part), because a steering-only agent cannot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .types import VehicleState


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


class Radar:
    """Finds the most constraining object ahead: an in-path lead or a predicted crossing.

    The ego's path is the arc of its current steering; other vehicles move at constant speed
    and turn rate, as a tracking radar estimates them.
    """

    def __init__(self, params: RadarParams = RadarParams()) -> None:
        self.p = params
        self._s = np.arange(0.0, params.range_m + 1.0, 1.0)  # [m] samples along the ego's path
        self._t = np.arange(0.0, params.conflict_horizon + 1e-9, params.step)
        self._reach = int(params.conflict_reach) + 1

    def target(
        self, ego: VehicleState, others: Sequence[VehicleState], curvature: float = 0.0
    ) -> RadarTarget | None:
        unit = dataclasses.replace(ego, speed=1.0)
        path = predict(unit, self._s, yaw_rate=curvature)  # arc, sampled every metre
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
        return RadarTarget(gap=max(distance - ego.length / 2 - self.p.conflict_radius / 2, 0.0), closing_speed=ego.speed)


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
    ) -> float:
        tgt = self.radar.target(ego, others, curvature)
        if tgt is None:
            a = idm_acceleration(ego.speed, desired_speed, p=self.p.idm)
        else:
            a = idm_acceleration(ego.speed, desired_speed, tgt.gap, tgt.closing_speed, self.p.idm)
        return float(np.clip(a / self.p.max_accel, -1.0, 1.0))
