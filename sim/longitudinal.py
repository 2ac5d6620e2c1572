"""The shared longitudinal controller: IDM-style adaptive cruise with a radar-like sensor.

In `steering` mode the harness drives the throttle of every agent with `AdaptiveCruise`, so that
contestants differ only in steering. The radar measures what a real ACC radar measures: range
and range-rate of objects inside its field of view, along the path predicted from the ego's
current yaw rate. It also brakes for crossing traffic predicted to meet the ego's path within a
short horizon (the automatic-emergency-braking part), because a steering-only agent cannot.
"""

from __future__ import annotations

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
    range_m: float = 80.0  # [m] detection range
    fov_deg: float = 60.0  # [deg] half-angle of the field of view
    path_half_width: float = 1.8  # [m] lateral window around the predicted path
    conflict_horizon: float = 2.5  # [s] look-ahead for crossing traffic
    conflict_radius: float = 3.0  # [m] predicted distance that counts as a conflict


@dataclass(frozen=True)
class RadarTarget:
    gap: float  # [m] bumper to bumper along the path
    closing_speed: float  # [m/s] ego speed minus target speed along the path (> 0: closing)


class Radar:
    """Finds the most constraining object ahead: an in-path lead or a predicted crossing."""

    def __init__(self, params: RadarParams = RadarParams()) -> None:
        self.p = params

    def target(
        self, ego: VehicleState, others: Sequence[VehicleState], curvature: float = 0.0
    ) -> RadarTarget | None:
        best: RadarTarget | None = None
        for other in others:
            hit = self._in_path(ego, other, curvature) or self._crossing(ego, other)
            if hit is not None and (best is None or hit.gap < best.gap):
                best = hit
        return best

    def _local(self, ego: VehicleState, other: VehicleState) -> tuple[float, float]:
        d = other.position - ego.position
        c, s = np.cos(ego.heading), np.sin(ego.heading)
        return float(c * d[0] + s * d[1]), float(-s * d[0] + c * d[1])

    def _in_path(
        self, ego: VehicleState, other: VehicleState, curvature: float
    ) -> RadarTarget | None:
        dx, dy = self._local(ego, other)
        if dx <= 0 or np.hypot(dx, dy) > self.p.range_m:
            return None
        if abs(np.degrees(np.arctan2(dy, dx))) > self.p.fov_deg:
            return None
        # Lateral distance to the arc the ego drives at its current curvature.
        if abs(dy - 0.5 * curvature * dx * dx) > self.p.path_half_width + other.width / 2:
            return None
        along = float(np.dot(other.velocity, [np.cos(ego.heading), np.sin(ego.heading)]))
        gap = dx - (ego.length + other.length) / 2
        return RadarTarget(gap=max(gap, 0.0), closing_speed=ego.speed - along)

    def _crossing(self, ego: VehicleState, other: VehicleState) -> RadarTarget | None:
        dx, dy = self._local(ego, other)
        if dx <= 0 or np.hypot(dx, dy) > self.p.range_m:
            return None
        rel_p = other.position - ego.position
        rel_v = other.velocity - ego.velocity
        for t in np.arange(0.0, self.p.conflict_horizon + 1e-9, 0.25):
            if np.linalg.norm(rel_p + rel_v * t) < self.p.conflict_radius:
                # Treat the meeting point as a stopped obstacle on the ego's path.
                gap = max(ego.speed * t - ego.length / 2, 0.0)
                return RadarTarget(gap=gap, closing_speed=ego.speed)
        return None


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
