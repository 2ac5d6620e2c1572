"""The planner avoids a stopped car, changes lane when the next one is free, and stays otherwise."""

import numpy as np
import pytest

from steerbench.perception.tracker import Track
from steerbench.planning.planner import Lane, TrajectoryPlanner


def lanes(offsets=(-1, 0, 1), curvature=0.0):
    s = np.arange(0.0, 150.0, 1.0)
    out = []
    for k in offsets:
        y = 4.0 * k + 0.5 * curvature * s**2
        out.append(Lane(k, np.stack([s, y], axis=1)))
    return out


def car(x, y, vx=0.0, tid=0):
    return Track(tid, np.array([x, y]), np.array([vx, 0.0]), 5.0, 2.0, 0.0, 5, 0, True)


def passes_through(traj, obstacle, half=(3.5, 1.5)):
    d = np.abs(traj.points - obstacle.position)
    return bool(((d[:, 0] < half[0]) & (d[:, 1] < half[1])).any())


def test_free_road_keeps_lane_and_speed():
    t = TrajectoryPlanner().plan(lanes(), [], speed=25.0, desired_speed=25.0)
    assert t.lane_offset == 0 and t.profile == "keep" and abs(t.points[-1, 1]) < 0.1


def test_changes_lane_around_a_stopped_car_when_the_next_lane_is_free():
    stopped = car(40.0, 0.0)
    t = TrajectoryPlanner().plan(lanes(), [stopped], speed=20.0, desired_speed=25.0)
    assert t.safe and t.lane_offset != 0 and t.profile == "keep"
    assert not passes_through(t, stopped)
    assert abs(abs(t.points[-1, 1]) - 4.0) < 0.2  # ends on the neighbouring centre line


def test_does_not_drive_into_an_occupied_lane():
    stopped = car(60.0, 0.0)  # far enough to stop: 40 m at 5 m/s2 from 20 m/s
    beside = [car(2.0, -4.0, vx=20.0, tid=1), car(-3.0, 4.0, vx=20.0, tid=2)]  # both neighbours taken
    t = TrajectoryPlanner().plan(lanes(), [stopped, *beside], speed=20.0, desired_speed=25.0)
    assert t.lane_offset == 0 and t.profile == "stop"
    assert not passes_through(t, stopped)


def test_prefers_the_faster_lane_behind_a_slow_car():
    slow = car(30.0, 0.0, vx=12.0)
    t = TrajectoryPlanner().plan(lanes(offsets=(0, 1)), [slow], speed=20.0, desired_speed=28.0)
    assert t.lane_offset == 1


def test_follows_a_curved_lane():
    curved = lanes(offsets=(0,), curvature=1 / 200.0)
    t = TrajectoryPlanner().plan(curved, [], speed=20.0, desired_speed=20.0)
    s = np.cumsum(np.r_[0, np.linalg.norm(np.diff(t.points, axis=0), axis=1)])
    assert np.allclose(t.points[:, 1], 0.5 / 200.0 * t.points[:, 0] ** 2, atol=0.1)
    assert s[-1] == pytest.approx(20.0 * 4.0, rel=0.02)


def test_needs_the_ego_lane():
    with pytest.raises(ValueError, match="offset 0"):
        TrajectoryPlanner().plan(lanes(offsets=(1,)), [], 10.0, 10.0)
