"""The shared cruise control: free-road speed, stopping behind a car, radar targets."""

import numpy as np
import pytest
from highway_env.road.lane import CircularLane, StraightLane
from highway_env.road.road import RoadNetwork

from steerbench.sim.longitudinal import (
    AdaptiveCruise,
    Radar,
    curvature_from_steering,
    idm_acceleration,
    predict,
    predicted_path,
)
from steerbench.sim.types import VehicleState


def car(x, y=0.0, speed=0.0, heading=0.0, yaw_rate=0.0, lane_index=None):
    return VehicleState(x, y, heading, speed, 5.0, 2.0, lane_index=lane_index, yaw_rate=yaw_rate)


def two_lanes() -> RoadNetwork:
    """Lanes 0 (y = 0) and 1 (y = 4) along +x, 1 km long."""
    return RoadNetwork.straight_road_network(lanes=2, length=1000.0)


def curve(radius=300.0) -> RoadNetwork:
    """One lane: 100 m straight along +x, then a right-hand (towards +y) arc of `radius`."""
    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([0.0, 0.0], [100.0, 0.0]))
    net.add_lane("b", "c", CircularLane([100.0, radius], radius, -np.pi / 2, 0.0, clockwise=True))
    return net


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


def test_path_follows_the_lane_whatever_the_command():
    """One jittery steering step must not swing the path off a leader (issue 13): at speed the
    path is the lane's centre line, wherever the command points."""
    net, radar = curve(), Radar()
    ego = car(60.0, speed=25.0, lane_index=("a", "b", 0))
    curvatures = [curvature_from_steering(u, 5.0) for u in (-0.04, 0.0, 0.04)]
    paths = [predicted_path(net, ego, radar.distances, curvature=k) for k in curvatures]
    assert np.abs(paths[0] - paths[2]).max() == 0.0
    lane = net.get_lane(("b", "c", 0))
    for point in paths[1][[60, 100, 150]]:  # on the arc, up to 110 m into it
        s, lateral = lane.local_coordinates(point)
        assert 0.0 < s < lane.length and abs(lateral) < 0.05
    leader_at = lane.position(50.0, 0.0)  # 90 m ahead along the road, 6 m off the ego's heading
    leader = car(*leader_at, speed=15.0, heading=lane.heading_at(50.0))
    tgt = radar.target(ego, [leader], path=paths[1])
    assert tgt is not None and abs(tgt.gap - 85.0) < 1.5
    # The old path, the arc of one step's command, loses it.
    assert radar.target(ego, [leader], curvature=curvature_from_steering(-0.04, 5.0)) is None


def test_path_drifts_with_the_heading_and_settles_in_the_next_lane():
    net, radar = two_lanes(), Radar()
    changing = car(100.0, 0.5, speed=25.0, heading=0.2, lane_index=("0", "1", 0))
    path = predicted_path(net, changing, radar.distances)
    assert path[5, 1] > 0.5  # it goes on towards lane 1
    assert path[100, 1] == pytest.approx(4.0, abs=0.05)  # and settles on its centre (uncapped: 5.5 m)
    returning = car(100.0, 1.5, speed=25.0, heading=-0.1, lane_index=("0", "1", 0))
    assert predicted_path(net, returning, radar.distances)[100, 1] == pytest.approx(0.0, abs=0.05)
    offset = car(100.0, 0.8, speed=25.0, lane_index=("0", "1", 0))  # a lane keeper off centre
    assert np.allclose(predicted_path(net, offset, radar.distances)[:, 1], 0.8)


def test_path_takes_the_route_at_a_fork():
    net = two_lanes()
    net.add_lane("1", "2", StraightLane([1000.0, 0.0], [2000.0, 0.0]))
    net.add_lane("1", "3", StraightLane([1000.0, 0.0], [1000.0, 1000.0]))  # a right turn
    ego = car(950.0, speed=20.0, lane_index=("0", "1", 0))
    d = Radar().distances
    turning = predicted_path(net, ego, d, route=[("0", "1", None), ("1", "3", None)])
    straight = predicted_path(net, ego, d, route=[("0", "1", None), ("1", "2", None)])
    assert turning[100] == pytest.approx([1000.0, 50.0], abs=0.1)
    assert straight[100] == pytest.approx([1050.0, 0.0], abs=0.1)


def test_a_stopped_ego_steering_round_a_stopped_car_may_go():
    """At a standstill the pose cannot show where the car will go: the command's arc does, or a
    car stopped behind an obstacle could never pull out round it."""
    net, acc = two_lanes(), AdaptiveCruise()
    ego = car(100.0, 0.0, speed=0.0, lane_index=("0", "1", 0))
    blocker = [car(110.0, 0.0)]  # 5 m bumper to bumper: the jam distance
    d = acc.radar.distances

    def accel(steering):
        path = predicted_path(net, ego, d, curvature=curvature_from_steering(steering, 5.0))
        return acc.accel(ego, blocker, 10.0, path=path)

    assert accel(0.0) <= 0.0  # held behind it
    assert accel(0.6) > 0.1  # pulls out towards lane 1
    cruising = car(100.0, 0.0, speed=10.0, lane_index=("0", "1", 0))  # at speed the command is ignored
    assert np.array_equal(predicted_path(net, cruising, d, curvature=0.1), predicted_path(net, cruising, d))
