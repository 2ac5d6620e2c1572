"""The trajectory planner: candidates along the lanes, prediction, rejection, scoring.

Everything is in the ego frame (x ahead, y right, metres). Lanes are centre lines sampled as
polylines (from the map, or from lane markings detected in pixels); objects are tracks with
positions and velocities.

Candidates: each reachable lane (the current one and its neighbours) x each speed profile
(keep speed, ease off at 2 m/s2, stop at 5 m/s2). A candidate's path is its lane's centre line
shifted sideways by a Frenet offset d(t) that starts at the ego's offset from that centre line
and decays to 0 along a smoothstep over `change_s` seconds. A lane change is a manoeuvre with a
start time: replanning continues it from where it is (`Manoeuvre.elapsed_s`) instead of
restarting it from the ego's position every step, which would stretch it out for ever. Small
offsets (under `settle_m`) in the own lane are left to the controller: the path is the centre
line itself.
Prediction: a vehicle near a lane's centre line and heading along it keeps its speed and offset
along that lane; any other at constant velocity. A candidate is rejected when, at any time step,
it overlaps a predicted vehicle (clearance `margin_m` ahead and behind, `margin_m / 2` sideways;
ahead and behind `start_gap_m` to start a lane change, so that a gap only just wide enough does
not start a change that aborts).
The survivors are scored:

    cost = w_progress * (desired speed - speed it can hold) / desired speed
         + w_lane_change * (1 if it starts a new manoeuvre or abandons the one under way)
         + w_ttc * max(0, 1 - min TTC / ttc_horizon)   (closing on the vehicle ahead)

and the cheapest wins; continuing a manoeuvre is free, so the plan does not flip between two
near-equal lanes. If every candidate collides, the stop profile in the current lane is returned
(braking is then the cruise control's job).
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
class LaneView:
    """What a lane source hands the planner: the lanes around the ego, the ego lane's id counted from
    the left (so that a lane change under way can be followed across the moment the ego crosses into
    its target lane) and the speed limit when the source knows it."""

    lanes: list[Lane]  # the ego's own (offset 0) and any neighbours
    lane_id: int
    speed_limit: float | None  # [m/s]


@dataclass(frozen=True)
class Trajectory:
    """One candidate plan over the horizon, in the ego frame: where and how fast, its cost, whether it
    is safe."""

    times: np.ndarray  # (T,) [s]
    points: np.ndarray  # (T, 2) [m] ego frame
    speeds: np.ndarray  # (T,) [m/s]
    lane_offset: int  # the lane it ends in, relative to the ego's
    profile: str  # "keep", "ease" or "stop"
    cost: float
    safe: bool
    manoeuvre: "Manoeuvre | None" = None  # the lateral manoeuvre it carries out, if any


@dataclass(frozen=True)
class Manoeuvre:
    """A move onto a lane's centre line under way (hand it back to `plan` to continue it)."""

    lane_offset: int  # its target lane, relative to the ego's current lane
    start_offset_m: float  # [m] the ego's offset from the target's centre line at the start (+ right)
    elapsed_s: float  # [s] since it started

    def advanced(self, dt: float) -> "Manoeuvre":
        """The same manoeuvre `dt` seconds later."""
        return Manoeuvre(self.lane_offset, self.start_offset_m, self.elapsed_s + dt)


@dataclass(frozen=True)
class PlannerParams:
    """The planner's horizon, timing, margins and cost weights (see the module docstring)."""

    horizon_s: float = 4.0  # [s]
    dt: float = 0.2  # [s]
    change_s: float = 3.0  # [s] duration of a lane change (or of a return to the own lane)
    settle_m: float = 1.0  # [m] own-lane offsets under this are the controller's to correct
    margin_m: float = 1.0  # [m] safety margin around the vehicles' boxes
    start_gap_m: float = 3.0  # [m] the margin ahead and behind to start a lane change: hysteresis against aborts
    lane_match_m: float = 1.5  # [m] a vehicle this close to a lane's centre line follows it
    ego_length: float = 5.0  # [m]
    ego_width: float = 2.0  # [m]
    ttc_horizon_s: float = 4.0  # [s]
    w_progress: float = 1.0
    w_lane_change: float = 0.05
    w_ttc: float = 1.0


def _arc_lengths(polyline: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(polyline, axis=0), axis=1))])


def _resample(polyline: np.ndarray, s: np.ndarray, s0: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit right-hand normals at arc lengths `s` counted from `s0`, extended
    straight past the polyline's end (a lane seen up to 100 m still has a road beyond)."""
    cum = _arc_lengths(polyline)
    s = np.maximum(s + s0, 0.0)
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(polyline) - 2)
    tangent = polyline[i + 1] - polyline[i]
    seg = np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    points = polyline[i] + tangent * ((s - cum[i])[:, None] / seg)
    tangent /= seg
    return points, np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def frenet(polyline: np.ndarray, point: np.ndarray = np.zeros(2)) -> tuple[float, float, np.ndarray]:
    """Arc length of the polyline point abreast of `point`, the point's signed lateral offset
    (+: to the right, the +y side) and the polyline's unit tangent there."""
    a, ab = polyline[:-1], np.diff(polyline, axis=0)
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0.0, 1.0)
    proj = a + t[:, None] * ab
    i = int(np.argmin(np.linalg.norm(proj - point, axis=1)))
    tangent = ab[i] / max(np.linalg.norm(ab[i]), 1e-12)
    d = point - proj[i]
    s = _arc_lengths(polyline)[i] + t[i] * np.linalg.norm(ab[i])
    return float(s), float(tangent[0] * d[1] - tangent[1] * d[0]), tangent


class TrajectoryPlanner:
    """The candidate planner of the module docstring. It keeps no state between calls: the caller hands
    back the manoeuvre under way (`ongoing`)."""

    def __init__(self, params: PlannerParams = PlannerParams()) -> None:
        self.p = params
        self.times = np.arange(0.0, params.horizon_s + 1e-9, params.dt)

    def plan(self, lanes: Sequence[Lane], tracks: Sequence[Track], speed: float, desired_speed: float,
             ongoing: Manoeuvre | None = None) -> Trajectory:
        """The cheapest safe candidate; `ongoing` is the manoeuvre the last plan was carrying out."""
        return self.choose(self.candidates(lanes, tracks, speed, desired_speed, ongoing))

    @staticmethod
    def choose(candidates: Sequence[Trajectory]) -> Trajectory:
        """The cheapest safe one; if none is safe, the stop profile in the own lane."""
        safe = [c for c in candidates if c.safe]
        if safe:
            return min(safe, key=lambda c: c.cost)
        return next(c for c in candidates if c.lane_offset == 0 and c.profile == "stop")

    def candidates(self, lanes: Sequence[Lane], tracks: Sequence[Track], speed: float, desired_speed: float,
                   ongoing: Manoeuvre | None = None) -> list[Trajectory]:
        """All candidates, scored (for visualisation and tests)."""
        if not any(lane.offset == 0 for lane in lanes):
            raise ValueError("the lanes must include the ego's own (offset 0)")
        lanes = [lane for lane in lanes if abs(lane.offset) <= 1]
        where = [[frenet(lane.centre, t.position) for lane in lanes] for t in tracks]  # [track][lane]
        predicted = self._predicted(tracks, lanes, where)
        out = []
        for j, lane in enumerate(lanes):
            ctx = _LaneContext(lane, *frenet(lane.centre)[:2], self._lead(lane, tracks, [w[j] for w in where]))
            manoeuvre, new = self._manoeuvre(ctx, ongoing)
            out += [self._candidate(ctx, manoeuvre, new, profile, tracks, predicted, speed, desired_speed)
                    for profile in ("keep", "ease", "stop")]
        return out

    # -- internals --------------------------------------------------------------------------
    def _manoeuvre(self, ctx: "_LaneContext", ongoing: Manoeuvre | None) -> tuple[Manoeuvre | None, bool]:
        """The lateral manoeuvre onto a lane, and whether choosing it starts (or abandons) one."""
        offset = ctx.lane.offset
        if ongoing is not None and ongoing.lane_offset == offset and ongoing.elapsed_s < self.p.change_s:
            return ongoing, False
        if offset == 0 and abs(ctx.d0) < self.p.settle_m:
            return None, ongoing is not None
        return Manoeuvre(offset, ctx.d0, 0.0), True

    def _lateral(self, manoeuvre: Manoeuvre | None) -> np.ndarray:
        if manoeuvre is None:
            return np.zeros_like(self.times)
        u = np.clip((manoeuvre.elapsed_s + self.times) / self.p.change_s, 0.0, 1.0)
        return manoeuvre.start_offset_m * (1 - u * u * (3 - 2 * u))  # smoothstep: no lateral jerk at the ends

    def _speeds(self, profile: str, speed: float) -> np.ndarray:
        decel = {"keep": 0.0, "ease": 2.0, "stop": 5.0}[profile]
        return np.maximum(speed - decel * self.times, 0.0)

    def _candidate(self, ctx: "_LaneContext", manoeuvre: Manoeuvre | None, new: bool, profile: str, tracks,
                   predicted: np.ndarray, speed: float, desired: float) -> Trajectory:
        speeds = self._speeds(profile, speed)
        s = np.concatenate([[0.0], np.cumsum((speeds[1:] + speeds[:-1]) / 2 * self.p.dt)])
        centre, normal = _resample(ctx.lane.centre, s, ctx.s0)
        points = centre + normal * self._lateral(manoeuvre)[:, None]
        gap = self.p.start_gap_m if new and ctx.lane.offset != 0 else self.p.margin_m
        safe = not self._collides(points, tracks, predicted, gap)
        cost = self._cost(ctx.lead, speeds, profile, new, desired)
        return Trajectory(self.times, points, speeds, ctx.lane.offset, profile, cost, safe, manoeuvre)

    def _predicted(self, tracks: Sequence[Track], lanes: Sequence[Lane], where: list) -> np.ndarray:
        """(objects, T, 2) positions: along the lane a vehicle drives in (at its speed and
        lateral offset: constant velocity would carry it across lanes in a curve), at constant
        velocity when it is in none or crossing one."""
        if not tracks:
            return np.zeros((0, len(self.times), 2))
        return np.stack([self._predict_one(t, lanes, w) for t, w in zip(tracks, where)])

    def _predict_one(self, track: Track, lanes: Sequence[Lane], where: list) -> np.ndarray:
        speed = float(np.linalg.norm(track.velocity))
        best = None
        for lane, (s, d, tangent) in zip(lanes, where):
            along = speed < 0.5 or float(np.dot(track.velocity, tangent)) > 0.9 * speed
            if abs(d) < self.p.lane_match_m and along and (best is None or abs(d) < abs(best[2])):
                best = (lane, s, d)
        if best is None:
            return track.position + track.velocity * self.times[:, None]
        lane, s, d = best
        centre, normal = _resample(lane.centre, speed * self.times, s)
        return centre + d * normal

    def _collides(self, points: np.ndarray, tracks: Sequence[Track], others: np.ndarray, gap: float) -> bool:
        if not tracks:
            return False
        heading = np.gradient(points, axis=0)
        heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-9)
        d = others - points[None]
        along = np.abs(np.einsum("otk,tk->ot", d, heading))
        across = np.abs(d[..., 0] * heading[None, :, 1] - d[..., 1] * heading[None, :, 0])
        lengths = np.array([t.length for t in tracks])[:, None]
        widths = np.array([t.width for t in tracks])[:, None]
        long_hit = along < (self.p.ego_length + lengths) / 2 + gap
        hit = long_hit & (across < (self.p.ego_width + widths) / 2 + self.p.margin_m / 2)
        return bool(hit.any())

    def _cost(
        self, lead: tuple[Track, float] | None, speeds: np.ndarray, profile: str, new: bool, desired: float
    ) -> float:
        p = self.p
        lead_speed = desired if lead is None or lead[1] > 80.0 else float(np.linalg.norm(lead[0].velocity))
        # The speed this candidate can hold: its own profile's, capped by the lane's leader.
        sustained = min(desired, lead_speed, np.inf if profile == "keep" else speeds[-1])
        cost = p.w_progress * (desired - sustained) / max(desired, 1e-6) + p.w_lane_change * new
        return cost + p.w_ttc * max(0.0, 1.0 - self._min_ttc(lead, speeds) / p.ttc_horizon_s)

    @staticmethod
    def _lead(lane: Lane, tracks: Sequence[Track], where: list) -> tuple[Track, float] | None:
        """The nearest vehicle ahead in `lane` and its distance along it (Frenet: a curve
        would move a leader sideways in the ego frame)."""
        s0 = frenet(lane.centre)[0]
        ahead = [(t, s - s0) for t, (s, d, _) in zip(tracks, where) if s > s0 and abs(d) < 2.0]
        return min(ahead, key=lambda x: x[1]) if ahead else None

    def _min_ttc(self, lead: tuple[Track, float] | None, speeds: np.ndarray) -> float:
        if lead is None:
            return np.inf
        track, distance = lead
        closing = speeds[-1] - float(np.linalg.norm(track.velocity))
        gap = distance - (self.p.ego_length + track.length) / 2
        return gap / closing if closing > 0.1 else np.inf


@dataclass(frozen=True)
class _LaneContext:
    """What every candidate in one lane shares."""

    lane: Lane
    s0: float  # arc length abreast of the ego
    d0: float  # the ego's lateral offset from the centre line (+ right)
    lead: tuple[Track, float] | None
