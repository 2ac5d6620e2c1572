"""The tracker recovers constant velocities from noisy detections and follows its rules."""

import numpy as np
import pytest

from steerbench.perception.tracker import EgoMotion, KalmanTracker, TrackerOptions
from steerbench.perception.types import Detection


def det(x, y):
    return Detection(np.zeros((4, 2)), np.array([x, y], float), 5.0, 2.0, 0.0, 1.0)


def test_recovers_a_constant_velocity_from_noisy_detections():
    rng = np.random.default_rng(0)
    tracker = KalmanTracker(TrackerOptions(), dt=0.2)
    velocity = np.array([-4.0, 0.6])  # closing in, drifting right
    estimates = []
    for k in range(60):
        true = np.array([60.0, -4.0]) + velocity * 0.2 * k
        (track,) = tracker.update([det(*(true + rng.normal(0, 0.3, 2)))])
        estimates.append(track.velocity)
    assert track.confirmed and track.id == 0
    late = np.array(estimates[-30:])  # after convergence: each frame close, the average closer
    assert np.abs(late - velocity).max() < 1.0
    assert late.mean(axis=0) == pytest.approx(velocity, abs=0.2)
    assert track.position == pytest.approx(true, abs=0.5)


def test_ego_motion_is_compensated():
    """The ego drives at 25 m/s, the other car at 20 m/s in the next lane: seen from the ego it
    falls back at 5 m/s, but its own velocity is 20 m/s ahead."""
    rng = np.random.default_rng(1)
    tracker = KalmanTracker()
    for k in range(60):
        rel = np.array([40.0 - 5.0 * 0.2 * k, 4.0])
        tracks = tracker.update([det(*(rel + rng.normal(0, 0.2, 2)))], EgoMotion(distance_m=5.0, dheading=0.0))
    assert tracks[0].velocity == pytest.approx([20.0, 0.0], abs=0.4)


def test_turning_ego_sees_a_parked_car_stand_still():
    tracker = KalmanTracker()
    car_world = np.array([30.0, 10.0])
    ego, heading = np.zeros(2), 0.0
    for _ in range(40):
        c, s = np.cos(heading), np.sin(heading)
        local = np.array([[c, s], [-s, c]]) @ (car_world - ego)
        tracks = tracker.update([det(*local)], EgoMotion(distance_m=1.0, dheading=0.02))
        ego = ego + 1.0 * np.array([np.cos(heading + 0.01), np.sin(heading + 0.01)])
        heading += 0.02
    assert np.linalg.norm(tracks[0].velocity) < 0.3


def test_birth_confirmation_and_deletion_rules():
    tracker = KalmanTracker(TrackerOptions(confirm_hits=3, max_misses=2))
    assert [t.confirmed for t in tracker.update([det(20, 0)])] == [False]
    tracker.update([det(20, 0)])
    (t,) = tracker.update([det(20, 0)])
    assert t.confirmed and t.hits == 3
    tracker.update([])
    tracker.update([])
    assert len(tracker.update([det(20, 0), det(40, 4)])) == 2  # re-found after two misses; a new one born
    tracker.update([det(40, 4)])  # the tentative one is re-found, the confirmed one misses
    tracker.update([det(40, 4)])
    ids = [t.id for t in tracker.update([det(40, 4)])]
    assert ids == [1]  # three misses deleted track 0
    tracker.update([det(40, 4), det(-30, 0)])
    assert [t.id for t in tracker.update([det(40, 4)])] == [1]  # a tentative track dies at its first miss


def test_two_cars_keep_their_identities():
    tracker = KalmanTracker()
    for k in range(20):
        tracks = tracker.update([det(30 - 0.5 * k, 0.0), det(30 + 0.5 * k, 4.0)][:: -1 if k % 2 else 1])
    by_id = {t.id: t for t in tracks}
    assert by_id[0].velocity[0] == pytest.approx(-2.5, abs=0.3) and by_id[1].velocity[0] == pytest.approx(2.5, abs=0.3)
