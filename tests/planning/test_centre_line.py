"""The map lanes' centre line across a gap between segments (planning/lanes.centre_line, `bridge`)."""

import numpy as np
import pytest
from highway_env.road.lane import StraightLane
from highway_env.road.road import RoadNetwork

from steerbench.agents.modular_lanes import MapLanes
from steerbench.planning.lanes import bridge_crossing, centre_line
from steerbench.sim.types import Observation, RoadPrior, VehicleState

EGO = VehicleState(x=30.0, y=0.0, heading=0.0, speed=9.0, length=5.0, width=2.0)


def _gap_network() -> RoadNetwork:
    """A straight lane ending at x = 50 and its successor starting 6.7 m away, 45 degrees off,
    whose backward extension crosses the first lane's continuation at (53, 0)."""
    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([0.0, 0.0], [50.0, 0.0]))
    net.add_lane("b", "c", StraightLane([56.0, 3.0], [86.0, 33.0]))
    return net


def _dense(line: np.ndarray, step_m: float = 0.1) -> np.ndarray:
    """The polyline's points every `step_m` along it (a chord is a segment between two samples)."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    at = np.arange(0.0, s[-1], step_m)
    return np.stack([np.interp(at, s, line[:, 0]), np.interp(at, s, line[:, 1])], axis=1)


def _off_both(net: RoadNetwork, ego_frame_line: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearer of the two lanes' centre lines (each one extended)."""
    world = _dense(ego_frame_line) + EGO.position  # the ego sits at the origin, heading along +x
    lanes = [net.get_lane(("a", "b", 0)), net.get_lane(("b", "c", 0))]
    return np.array([min(abs(lane.local_coordinates(p)[1]) for lane in lanes) for p in world])


def test_a_gap_is_bridged_where_the_two_lanes_cross_not_by_a_chord():
    net = _gap_network()
    chord = centre_line(net, ("a", "b", 0), (), EGO, behind_m=5.0, ahead_m=40.0, step_m=1.0)
    bridged = centre_line(net, ("a", "b", 0), (), EGO, behind_m=5.0, ahead_m=40.0, step_m=1.0, bridge=True)
    assert _off_both(net, chord).max() > 1.0  # the chord from (50, 0) to (56, 3) leaves both lanes
    assert _off_both(net, bridged).max() < 0.05  # every point on one lane or the other
    corner = bridged[np.argmin(np.abs(bridged[:, 0] - 23.0))]  # x = 53 in the world
    assert np.allclose(corner, [23.0, 0.0], atol=0.05)
    steps = np.linalg.norm(np.diff(bridged, axis=0), axis=1)
    assert steps.max() < 1.05 and np.all(np.diff(bridged[:, 0]) > 0)  # evenly sampled, never back


def test_segments_that_meet_get_the_same_line_either_way():
    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([0.0, 0.0], [50.0, 0.0]))
    net.add_lane("b", "c", StraightLane([50.0, 0.0], [80.0, 20.0]))
    plain = centre_line(net, ("a", "b", 0), (), EGO, ahead_m=60.0)
    assert np.array_equal(plain, centre_line(net, ("a", "b", 0), (), EGO, ahead_m=60.0, bridge=True))


def test_lanes_that_never_cross_keep_the_chord():
    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([0.0, 0.0], [50.0, 0.0]))
    net.add_lane("b", "c", StraightLane([55.0, 4.0], [95.0, 4.0]))  # parallel, 4 m aside
    plain = centre_line(net, ("a", "b", 0), (), EGO, ahead_m=60.0)
    assert np.array_equal(plain, centre_line(net, ("a", "b", 0), (), EGO, ahead_m=60.0, bridge=True))


RING, EXIT = ("se", "ex", 1), ("ex", "exs", 0)  # the roundabout's ring lane before its east exit, and the exit


def test_the_roundabouts_exits_are_bridged_on_the_lanes(envs):
    net, ego = _before_the_exit(envs)
    for bridge, worst in ((False, 0.5), (True, 0.3)):
        line = centre_line(net, RING, [RING, EXIT], ego, behind_m=0.0, ahead_m=25.0, step_m=0.5, bridge=bridge)
        assert (_off_ring_or_exit(net, ego, line).max() < worst) == bridge


def test_the_map_lanes_bridge_by_default(envs):
    net, ego = _before_the_exit(envs)
    road = RoadPrior(net, ego, (RING, EXIT))
    view = MapLanes().view(Observation(frames=np.zeros((1, 8, 8), np.uint8), speed=8.0, command=0, road=road))
    ego_lane = next(lane for lane in view.lanes if lane.offset == 0)
    ahead = ego_lane.centre[(ego_lane.centre[:, 0] >= 0.0) & (ego_lane.centre[:, 0] <= 25.0)]
    assert _off_ring_or_exit(net, ego, ahead).max() < 0.3


def _before_the_exit(envs) -> tuple[RoadNetwork, VehicleState]:
    """The roundabout's network, and an ego on the ring lane's centre 12 m before the ring lane ends."""
    env = envs("roundabout", fast=True)
    env.reset(seed=1)
    net = env.core.road.network
    ring = net.get_lane(RING)
    start = ring.position(ring.length - 12.0, 0.0)
    return net, VehicleState(x=start[0], y=start[1], heading=ring.heading_at(ring.length - 12.0), speed=8.0,
                             length=5.0, width=2.0, lane_index=RING)


def _off_ring_or_exit(net: RoadNetwork, ego: VehicleState, line: np.ndarray) -> np.ndarray:
    """Each point of an ego-frame line's distance to the nearer of the ring lane and its exit."""
    ring, exit_ = net.get_lane(RING), net.get_lane(EXIT)
    c, s = np.cos(ego.heading), np.sin(ego.heading)
    world = ego.position + _dense(line) @ np.array([[c, s], [-s, c]])
    return np.array([min(abs(ring.local_coordinates(p)[1]), abs(exit_.local_coordinates(p)[1])) for p in world])


@pytest.mark.parametrize("scenario", ["highway", "merge", "intersection", "racetrack"])
def test_only_the_roundabout_has_gaps_that_a_bridge_changes(scenario, envs):
    env = envs(scenario, fast=True)
    env.reset(seed=1)
    net = env.core.road.network
    for a, ends in net.graph.items():
        for b, lanes in ends.items():
            for lane in lanes:
                for nxt in (n for ls in net.graph.get(b, {}).values() for n in ls):
                    assert bridge_crossing(lane, nxt) is None
