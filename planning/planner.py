"""The trajectory planner: candidates along the lanes, prediction, rejection, scoring.

Everything is in the ego frame (x ahead, y right, metres). Lanes are centre lines sampled as
polylines (from the map, or from lane markings detected in pixels); objects are tracks with
positions and velocities.

Candidates: each reachable lane (the current one and its neighbours) x each speed profile
(keep speed, ease off at 2 m/s2, stop at 5 m/s2). Each starts at the ego's position and moves
onto the target lane's centre line along a smoothstep over `change_s` seconds, as a Frenet
offset blended between centre lines.
Prediction: other vehicles at constant velocity. A candidate is rejected when, at any time step,
it overlaps a predicted vehicle (boxes grown by `margin_m`). The survivors are scored:

    cost = w_progress * (desired speed - speed it can hold) / desired speed
         + w_lane_change * (lane changes)
         + w_ttc * max(0, 1 - min TTC / ttc_horizon)   (closing on the vehicle ahead)

and the cheapest wins. If every candidate collides, the stop profile in the current lane is
returned (braking is then the cruise control's job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.perception.tracker import Track


@dataclass(frozen=True)
class Lane:
    """A lane centre line in the ego frame; `offset` is its index relative to the ego's lane
    (-1: the lane to the left, +1: to the right)."""

    offset: int
    centre: np.ndarray  # (N, 2), ordered along the direction of travel


@dataclass(frozen=True)
class Trajectory:
    times: np.ndarray  # (T,) [s]
    points: np.ndarray  # (T, 2) [m] ego frame
    speeds: np.ndarray  # (T,) [m/s]
    lane_offset: int  # the lane it ends in, relative to the ego's
    profile: str  # "keep", "ease" or "stop"
    cost: float
    safe: bool


@dataclass(frozen=True)
class PlannerParams:
    horizon_s: float = 4.0  # [s]
    dt: float = 0.2  # [s]
    change_s: float = 3.0  # [s] duration of a lane change
    settle_s: float = 1.0  # [s] to come back to the own lane's centre
    margin_m: float = 1.0  # [m] safety margin around the vehicles' boxes
    ego_length: float = 5.0  # [m]
    ego_width: float = 2.0  # [m]
    ttc_horizon_s: float = 4.0  # [s]
    w_progress: float = 1.0
    w_lane_change: float = 0.15
    w_ttc: float = 1.0


def _resample(polyline: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Points at arc lengths `s` (clamped) along a polyline, counted from the point abreast of
    the ego (the origin): a centre line may start behind it."""
    seg = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.clip(s + _abreast(polyline, cum), 0.0, cum[-1])
    return np.stack([np.interp(s, cum, polyline[:, 0]), np.interp(s, cum, polyline[:, 1])], axis=1)


def _abreast(polyline: np.ndarray, cum: np.ndarray) -> float:
    """Arc length of the polyline's point closest to the origin."""
    a, ab = polyline[:-1], np.diff(polyline, axis=0)
    t = np.clip(-np.einsum("ij,ij->i", a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0.0, 1.0)
    i = int(np.argmin(np.linalg.norm(a + t[:, None] * ab, axis=1)))
    return float(cum[i] + t[i] * (cum[i + 1] - cum[i]))


class TrajectoryPlanner:
    def __init__(self, params: PlannerParams = PlannerParams()) -> None:
        self.p = params
        self.times = np.arange(0.0, params.horizon_s + 1e-9, params.dt)

    def plan(self, lanes: Sequence[Lane], tracks: Sequence[Track], speed: float, desired_speed: float) -> Trajectory:
        current = next((lane for lane in lanes if lane.offset == 0), None)
        if current is None:
            raise ValueError("the lanes must include the ego's own (offset 0)")
        candidates = [
            self._candidate(current, lane, profile, tracks, speed, desired_speed)
            for lane in lanes if abs(lane.offset) <= 1
            for profile in ("keep", "ease", "stop")
        ]
        safe = [c for c in candidates if c.safe]
        if safe:
            return min(safe, key=lambda c: c.cost)
        return next(c for c in candidates if c.lane_offset == 0 and c.profile == "stop")

    def candidates(self, lanes: Sequence[Lane], tracks: Sequence[Track], speed: float, desired_speed: float) -> list[Trajectory]:
        """All candidates, scored (for visualisation and tests)."""
        current = next(lane for lane in lanes if lane.offset == 0)
        return [self._candidate(current, lane, prof, tracks, speed, desired_speed)
                for lane in lanes if abs(lane.offset) <= 1 for prof in ("keep", "ease", "stop")]

    # -- internals --------------------------------------------------------------------------
    def _speeds(self, profile: str, speed: float) -> np.ndarray:
        decel = {"keep": 0.0, "ease": 2.0, "stop": 5.0}[profile]
        return np.maximum(speed - decel * self.times, 0.0)

    def _candidate(self, current: Lane, target: Lane, profile: str, tracks, speed: float, desired: float) -> Trajectory:
        speeds = self._speeds(profile, speed)
        s = np.concatenate([[0.0], np.cumsum((speeds[1:] + speeds[:-1]) / 2 * self.p.dt)])
        here, there = _resample(current.centre, s), _resample(target.centre, s)
        duration = self.p.change_s if target.offset else self.p.settle_s
        u = np.clip(self.times / duration, 0.0, 1.0)
        blend = u * u * (3 - 2 * u)  # smoothstep: no lateral jerk at either end
        # Start where the ego is (replanning every step from the lane centre would restart a
        # lane change forever), then blend onto the target's centre line.
        start_offset = -here[0]
        points = here + (1 - blend)[:, None] * start_offset + blend[:, None] * (there - here)
        safe = not self._collides(points, tracks)
        cost = self._cost(points, speeds, profile, target.offset, tracks, desired)
        return Trajectory(self.times, points, speeds, target.offset, profile, cost, safe)

    def _predicted(self, tracks: Sequence[Track]) -> np.ndarray:
        """(objects, T, 2) constant-velocity positions."""
        if not tracks:
            return np.zeros((0, len(self.times), 2))
        pos = np.array([t.position for t in tracks])[:, None, :]
        vel = np.array([t.velocity for t in tracks])[:, None, :]
        return pos + vel * self.times[None, :, None]

    def _collides(self, points: np.ndarray, tracks: Sequence[Track]) -> bool:
        if not tracks:
            return False
        others = self._predicted(tracks)
        heading = np.gradient(points, axis=0)
        heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-9)
        d = others - points[None]
        along = np.abs(np.einsum("otk,tk->ot", d, heading))
        across = np.abs(d[..., 0] * heading[None, :, 1] - d[..., 1] * heading[None, :, 0])
        lengths = np.array([t.length for t in tracks])[:, None]
        widths = np.array([t.width for t in tracks])[:, None]
        hit = (along < (self.p.ego_length + lengths) / 2 + self.p.margin_m) & (
            across < (self.p.ego_width + widths) / 2 + self.p.margin_m / 2)
        return bool(hit.any())

    def _cost(self, points: np.ndarray, speeds: np.ndarray, profile: str, offset: int, tracks, desired: float) -> float:
        p = self.p
        # The speed this candidate can hold: its own profile's, capped by the lane's leader.
        sustained = min(desired, self._lead_speed(points, tracks, desired), np.inf if profile == "keep" else speeds[-1])
        cost = p.w_progress * (desired - sustained) / max(desired, 1e-6) + p.w_lane_change * abs(offset)
        ttc = self._min_ttc(points, speeds, tracks)
        return cost + p.w_ttc * max(0.0, 1.0 - ttc / p.ttc_horizon_s)

    def _lead(self, points: np.ndarray, tracks: Sequence[Track]) -> tuple[Track, float] | None:
        """The nearest vehicle ahead on the trajectory's final lateral position."""
        end_y = points[-1, 1]
        ahead = [(t, t.position[0]) for t in tracks if t.position[0] > 0 and abs(t.position[1] - end_y) < 2.0]
        return min(ahead, key=lambda x: x[1]) if ahead else None

    def _lead_speed(self, points: np.ndarray, tracks, desired: float) -> float:
        lead = self._lead(points, tracks)
        return desired if lead is None or lead[1] > 80.0 else float(np.linalg.norm(lead[0].velocity))

    def _min_ttc(self, points: np.ndarray, speeds: np.ndarray, tracks) -> float:
        lead = self._lead(points, tracks)
        if lead is None:
            return np.inf
        track, x = lead
        closing = speeds[-1] - track.velocity[0]
        gap = x - (self.p.ego_length + track.length) / 2
        return gap / closing if closing > 0.1 else np.inf
