"""Episode metrics, computed by the harness from ground truth (definitions in docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .types import EpisodeReference, StepRecord

# Infraction coefficients, CARLA-leaderboard style: the driving score is route completion times
# the product of one coefficient per infraction.
PENALTY_COLLISION = 0.60  # CARLA's coefficient for a collision with a vehicle
PENALTY_OFF_ROAD = 0.65  # CARLA's coefficient for hitting static scenery
PENALTY_LANE_DEPARTURE = 0.90  # per departure (more than 1 m off the lane centre)
DEPARTURE_M = 1.0  # [m] lateral offset that counts as a lane departure
LANE_CHANGE_WINDOW_S = 2.0  # [s] around a change of lane in which offsets are not departures
AUTONOMY_PENALTY_S = 6.0  # [s] PilotNet's cost of one intervention
TTC_CAP_S = 10.0  # [s] a larger time to collision (or none) is reported as this
STUCK_COMPLETION = 0.5  # open roads: completion below this without infraction is "stuck"

FAILURES = ("none", "front_collision", "side_collision", "off_road", "off_route", "timeout_or_stuck", "agent_error")
STEER_BINS = np.linspace(-1.0, 1.0, 21)

METRIC_NAMES = (
    "success", "collision", "off_road", "route_completion", "lane_departures", "autonomy",
    "driving_score", "progress", "mean_lateral_offset_m", "mean_heading_error_rad", "steering_smoothness",
    "min_ttc_s", "mean_speed_mps", "env_reward", "steps", "wall_s",
)


@dataclass(frozen=True)
class EpisodeEnd:
    """How the episode stopped, from the harness's point of view."""

    crashed: bool
    off_road: bool
    goal: bool
    goal_directed: bool
    agent_error: str | None  # message when the agent raised, timed out or gave a bad action
    collision_angle: float | None  # [rad] bearing of the other car from the ego at impact
    reference: EpisodeReference  # the episode's scale, the same for every agent
    wall_s: float
    policy_hz: float


def lane_change_mask(records: Sequence[StepRecord], hz: float) -> np.ndarray:
    """True for steps within LANE_CHANGE_WINDOW_S of a change of lane id on the same road edge."""
    n = len(records)
    mask = np.zeros(n, dtype=bool)
    half = int(round(LANE_CHANGE_WINDOW_S * hz))
    for i in range(1, n):
        a, b = records[i - 1].lane_index, records[i].lane_index
        if a and b and a[:2] == b[:2] and a[2] != b[2]:
            mask[max(0, i - half) : i + half + 1] = True
    return mask


def count_departures(offsets: np.ndarray, excused: np.ndarray) -> int:
    """Entries into |offset| > DEPARTURE_M outside lane changes (a long excursion counts once)."""
    out = (np.abs(offsets) > DEPARTURE_M) & ~excused
    return int(out[0]) + int(np.sum(out[1:] & ~out[:-1])) if len(out) else 0


def failure_of(end: EpisodeEnd, success: bool) -> str:
    if end.agent_error:
        return "agent_error"
    if end.crashed:
        front = end.collision_angle is not None and abs(end.collision_angle) < np.radians(30)
        return "front_collision" if front else "side_collision"
    if end.off_road:
        return "off_road"
    if success:
        return "none"
    return "timeout_or_stuck"


def episode_metrics(records: Sequence[StepRecord], end: EpisodeEnd, off_route: bool = False) -> dict:
    """All per-episode metrics as a flat dict of floats (plus `failure`)."""
    n = len(records)
    hz = end.policy_hz
    elapsed = max(n / hz, 1e-9)
    lateral = np.array([r.lateral_offset for r in records]) if n else np.zeros(0)
    excused = lane_change_mask(records, hz)
    keep = ~excused if n and (~excused).any() else np.ones(n, dtype=bool)
    departures = count_departures(lateral, excused)
    progress = float(sum(r.progress for r in records))
    ref = end.reference
    completion = 1.0 if end.goal else float(np.clip(progress / max(ref.route_length_m, 1e-6), 0, 1))
    pace = progress / elapsed / max(ref.reference_speed_mps, 1e-6) if n else 0.0
    crashed = end.crashed and not end.agent_error
    off_road = end.off_road and not crashed and not end.agent_error
    if end.agent_error:
        success = False
    elif end.goal_directed:
        success = end.goal and not crashed and not off_road
    else:
        success = not crashed and not off_road and completion >= STUCK_COMPLETION
    failure = (
        "off_route" if off_route and not success and not crashed and not end.agent_error else failure_of(end, success)
    )
    score = completion * PENALTY_LANE_DEPARTURE**departures
    score *= PENALTY_COLLISION if crashed else 1.0
    score *= PENALTY_OFF_ROAD if off_road else 1.0
    steer = np.array([r.steering for r in records]) if n else np.zeros(0)
    ttc = min([r.ttc for r in records] + [TTC_CAP_S])
    return {
        "success": float(success),
        "collision": float(crashed),
        "off_road": float(off_road),
        "route_completion": completion,
        "lane_departures": float(departures),
        "autonomy": float(max(0.0, 1.0 - departures * AUTONOMY_PENALTY_S / elapsed)),
        "driving_score": float(score if not end.agent_error else 0.0),
        "progress": float(pace),
        "mean_lateral_offset_m": float(np.mean(np.abs(lateral[keep]))) if n else 0.0,
        "mean_heading_error_rad": float(np.mean(np.abs([r.heading_error for r in records]))) if n else 0.0,
        "steering_smoothness": float(np.mean(np.abs(np.diff(steer))) * hz) if n > 1 else 0.0,
        "min_ttc_s": float(ttc),
        "mean_speed_mps": float(np.mean([r.speed for r in records])) if n else 0.0,
        "env_reward": float(sum(r.reward for r in records)),
        "steps": float(n),
        "wall_s": float(end.wall_s),
        "failure": failure,
    }


def steering_histogram(records: Sequence[StepRecord]) -> list[int]:
    counts, _ = np.histogram([r.steering for r in records], bins=STEER_BINS)
    return counts.astype(int).tolist()
