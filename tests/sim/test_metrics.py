"""Episode metrics from step records."""

import numpy as np
import pytest

from steerbench.sim.metrics import (
    PENALTY_COLLISION,
    PENALTY_LANE_DEPARTURE,
    EpisodeEnd,
    count_departures,
    episode_metrics,
)
from steerbench.sim.types import EpisodeReference, StepRecord


def rec(t, lateral=0.0, lane=("a", "b", 0), steering=0.0, progress=5.0, speed=25.0, ttc=float("inf")):
    return StepRecord(time=t, speed=speed, lateral_offset=lateral, heading_error=0.0, lane_index=lane,
                      on_road=True, steering=steering, ttc=ttc, progress=progress, reward=0.1,
                      extra={"desired_speed": 25.0})


def end(route_length=500.0, speed=25.0, **kw):
    base = dict(crashed=False, off_road=False, goal=False, goal_directed=False, agent_error=None,
                collision_angle=None, wall_s=1.0, policy_hz=5.0,
                reference=EpisodeReference(route_length_m=route_length, reference_speed_mps=speed, time_limit_s=20.0))
    base.update(kw)
    return EpisodeEnd(**base)


def test_clean_open_road_episode():
    records = [rec(i / 5) for i in range(100)]
    m = episode_metrics(records, end())
    assert m["success"] == 1.0 and m["failure"] == "none"
    assert m["route_completion"] == pytest.approx(1.0) and m["driving_score"] == pytest.approx(1.0)
    assert m["lane_departures"] == 0 and m["autonomy"] == 1.0 and m["min_ttc_s"] == 10.0


def test_departures_are_counted_per_excursion_and_penalised():
    lateral = [0.0] * 20 + [1.5] * 10 + [0.0] * 20 + [-1.2] * 5 + [0.0] * 45
    records = [rec(i / 5, lateral=x) for i, x in enumerate(lateral)]
    m = episode_metrics(records, end())
    assert m["lane_departures"] == 2
    assert m["driving_score"] == pytest.approx(PENALTY_LANE_DEPARTURE**2)
    assert m["autonomy"] == pytest.approx(1 - 2 * 6 / 20)


def test_lane_change_is_not_a_departure():
    lanes = [("a", "b", 0)] * 50 + [("a", "b", 1)] * 50
    lateral = [0.0] * 45 + [1.2, 1.6, 1.9, 2.0, 2.0, -2.0, -1.8, -1.5, -1.1] + [0.0] * 46
    records = [rec(i / 5, lateral=x, lane=l) for i, (x, l) in enumerate(zip(lateral, lanes))]
    assert episode_metrics(records, end())["lane_departures"] == 0
    assert count_departures(np.array(lateral), np.zeros(100, bool)) == 1  # one excursion, unexcused


def test_collision_and_smoothness():
    records = [rec(i / 5, steering=(0.2 if i % 2 else -0.2), progress=2.5) for i in range(50)]
    m = episode_metrics(records, end(crashed=True, collision_angle=0.1))
    assert m["failure"] == "front_collision" and m["success"] == 0.0
    assert m["driving_score"] == pytest.approx(0.25 * PENALTY_COLLISION)
    assert m["steering_smoothness"] == pytest.approx(0.4 * 5)
    side = episode_metrics(records, end(crashed=True, collision_angle=np.pi / 2))
    assert side["failure"] == "side_collision"


def test_goal_directed_episode():
    records = [rec(i / 5, progress=1.0) for i in range(40)]
    stuck = episode_metrics(records, end(goal_directed=True, route_length=80.0))
    assert stuck["route_completion"] == pytest.approx(0.5) and stuck["failure"] == "timeout_or_stuck"
    wrong = episode_metrics(records, end(goal_directed=True, route_length=80.0), off_route=True)
    assert wrong["failure"] == "off_route"
    done = episode_metrics(records, end(goal_directed=True, route_length=80.0, goal=True))
    assert done["success"] == 1.0 and done["route_completion"] == 1.0


def test_agent_error_scores_zero():
    m = episode_metrics([rec(0.0)], end(agent_error="RuntimeError: boom"))
    assert m["failure"] == "agent_error" and m["driving_score"] == 0.0 and m["success"] == 0.0


def test_progress_is_pace_against_the_reference_and_completion_saturates():
    # 100 steps of 5 m at 5 Hz: 25 m/s for 20 s, the reference pace over the whole time limit
    at_pace = episode_metrics([rec(i / 5) for i in range(100)], end(route_length=500.0, speed=25.0))
    assert at_pace["route_completion"] == pytest.approx(1.0) and at_pace["progress"] == pytest.approx(1.0)
    faster = episode_metrics([rec(i / 5, progress=6.0) for i in range(100)], end(route_length=500.0, speed=25.0))
    assert faster["route_completion"] == 1.0 and faster["progress"] == pytest.approx(1.2)  # overtaking shows
    slower = episode_metrics([rec(i / 5, progress=4.0) for i in range(100)], end(route_length=500.0, speed=25.0))
    assert slower["route_completion"] == pytest.approx(0.8) and slower["progress"] == pytest.approx(0.8)
