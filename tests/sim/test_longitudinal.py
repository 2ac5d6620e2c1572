"""The shared cruise control: free-road speed, stopping behind a car, radar targets."""

import numpy as np
import pytest

from steerbench.sim.longitudinal import AdaptiveCruise, Radar, idm_acceleration, predict
from steerbench.sim.types import VehicleState


def car(x, y=0.0, speed=0.0, heading=0.0, yaw_rate=0.0):
    return VehicleState(x, y, heading, speed, 5.0, 2.0, yaw_rate=yaw_rate)


def simulate(lead_x, lead_speed, ego_speed, desired, seconds=40.0, dt=0.1):
    """1-D closed loop of the cruise control behind a constant-speed lead; returns min gap."""
    acc = AdaptiveCruise()
    x, v, lx, min_gap = 0.0, ego_speed, lead_x, np.inf
    for _ in range(int(seconds / dt)):
        a = acc.accel(car(x, speed=v), [car(lx, speed=lead_speed)], desired) * 5.0
        v = max(v + a * dt, 0.0)
        x += v * dt
        lx += lead_speed * dt
        min_gap = min(min_gap, lx - x - 5.0)
    return min_gap, v


def test_free_road_reaches_desired_speed():
    acc = AdaptiveCruise()
    v = 10.0
    for _ in range(400):
        v += acc.accel(car(0, speed=v), [], desired_speed=25.0) * 5.0 * 0.1
    assert abs(v - 25.0) < 0.5


def test_stops_behind_a_stopped_car_without_touching_it():
    gap, v = simulate(lead_x=120.0, lead_speed=0.0, ego_speed=30.0, desired=30.0)
    assert gap > 1.0 and v < 0.1


def test_follows_a_slower_car_at_its_speed():
    gap, v = simulate(lead_x=60.0, lead_speed=15.0, ego_speed=30.0, desired=30.0, seconds=60)
    assert gap > 5.0 and abs(v - 15.0) < 0.5


def test_radar_sees_in_path_car_not_adjacent_lane():
    radar = Radar()
    ego = car(0.0, speed=20.0)
    lead = radar.target(ego, [car(30.0, 0.0, speed=10.0)])
    assert lead is not None and abs(lead.gap - 25.0) < 1.0 and abs(lead.closing_speed - 10.0) < 1e-6
    assert radar.target(ego, [car(30.0, 4.0, speed=10.0)]) is None  # next lane
    assert radar.target(ego, [car(-30.0, 0.0, speed=30.0)]) is None  # behind


def test_radar_follows_the_curve_it_steers():
    radar = Radar()
    ego = car(0.0, speed=10.0)
    on_arc = predict(car(0.0, speed=1.0), np.array([25.0]), yaw_rate=1 / 50.0)[0]  # 25 m along R=50
    other = car(*on_arc, speed=5.0, heading=0.5)
    assert radar.target(ego, [other], curvature=1 / 50.0) is not None
    assert radar.target(ego, [other], curvature=-1 / 50.0) is None


def test_radar_yields_to_crossing_traffic():
    radar = Radar()
    ego = car(0.0, speed=8.0)
    crossing = car(20.0, -20.0, speed=8.0, heading=np.pi / 2)  # reaches (20, 0) with the ego
    tgt = radar.target(ego, [crossing])
    assert tgt is not None and tgt.gap < 20.0
    assert idm_acceleration(8.0, 10.0, tgt.gap, tgt.closing_speed) < -2.0
    far = car(20.0, -70.0, speed=8.0, heading=np.pi / 2)  # arrives long after the ego passed
    assert radar.target(ego, [far]) is None


def test_world_to_vehicle_frame():
    ego = car(10.0, 5.0, heading=np.pi / 2)  # facing +y
    assert ego.to_local(np.array([[10.0, 15.0], [0.0, 5.0]])) == pytest.approx(np.array([[10.0, 0.0], [0.0, 10.0]]))
