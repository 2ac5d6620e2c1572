"""Lane labels (planning/lane_labels.py): where the map says the lanes are, in the frame the camera
draws. Checked against the drawn markings, the ego's offset, the lane count, the route, and the
direction of travel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from highway_env.road.lane import CircularLane

from steerbench.agents.expert import ExpertAgent
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lane_labels import EGO, LANE_S, LEFT, RIGHT, LaneLabeller
from steerbench.sim.runner import EpisodeRunner
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import EpisodeInfo, RoadPrior, VehicleState

K0 = int(np.flatnonzero(LANE_S == 0)[0])


@dataclass
class Step:
    labels: dict
    rgb: np.ndarray  # the step's frame, in colour
    road: RoadPrior
    lane: tuple  # the lane the labeller follows


def drive(env, seed: int, steps: int, weave: float = 0.0) -> list[Step]:
    """The expert drives (its steering plus `weave` x a slow sine, to leave the lane centre);
    the labels of each step with the frame they describe."""
    obs, _ = env.reset(seed=seed)
    expert = ExpertAgent()
    expert.reset(EpisodeInfo("", "train", seed, 0, 5, "steering", env.command, camera=env.camera_config))
    labeller, out = LaneLabeller(), []
    for t in range(steps):
        road = env.road_prior()
        out.append(Step(labeller(road), env.render(), road, labeller.tracker.lane))
        action = expert.act(EpisodeRunner._observation(env, obs, "privileged"))
        action[1] = np.clip(action[1] + weave * np.sin(0.5 * t), -1, 1)
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            break
    return out


def seed_for(env, command: int) -> int:
    """The first train episode whose command is `command`."""
    for i in range(50):
        env.reset(seed=episode_seed("train", i))
        if env.command == command:
            return episode_seed("train", i)
    raise AssertionError(f"no episode with command {command}")


@pytest.fixture(scope="module")
def highway(envs):
    """Straights and curves, three lanes; seeds 2 and 4 start in the left-most and the right-most lane."""
    env = envs("highway", fast=True)
    return env, [s for seed in (2, 4) for s in drive(env, seed, 40, weave=0.15)]


@pytest.fixture(scope="module")
def racetrack(envs):
    """15-30 m curves, two lanes."""
    env = envs("racetrack", fast=True)
    return env, drive(env, 0, 60, weave=0.15)


def geometry(env) -> FrameGeometry:
    cam = env.camera_config
    return FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering)


def boundaries(labels: dict, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lane's centre line and its two boundaries (centre -+ width / 2 along the normal),
    densified to every 0.5 m between finite samples, in the ego frame."""
    c = labels["lane_centres"][row].astype(np.float64)
    ok = np.isfinite(c[:, 0])
    c = c[ok]
    dense = np.concatenate([c[i] + np.linspace(0, 1, 5, endpoint=False)[:, None] * (c[i + 1] - c[i])
                            for i in range(len(c) - 1)] + [c[-1:]])
    tangent = np.gradient(dense, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.linalg.norm(tangent, axis=1, keepdims=True)
    half = labels["lane_width"][row] / 2
    return dense, dense - half * normal, dense + half * normal


def on_marking(rgb: np.ndarray, g: FrameGeometry, xy: np.ndarray) -> np.ndarray:
    """For each ego-frame point inside the frame: is a marking (white) drawn within a pixel?"""
    white = (rgb >= 250).all(axis=-1)
    grown = np.zeros_like(white)
    for du in (-1, 0, 1):
        for dv in (-1, 0, 1):
            grown |= np.roll(np.roll(white, dv, axis=0), du, axis=1)
    uv = np.floor(g.to_pixels(xy)).astype(int)
    inside = (uv[:, 0] >= 1) & (uv[:, 0] < g.width - 1) & (uv[:, 1] >= 1) & (uv[:, 1] < g.height - 1)
    return grown[uv[inside, 1], uv[inside, 0]]


@pytest.mark.parametrize("scenario", ["highway", "racetrack"])
def test_lane_boundaries_lie_on_the_drawn_markings(scenario, request):
    """Each lane's boundaries (centre -+ width / 2), projected with the frame's geometry, fall on
    the white markings (dashed between lanes, solid at the edges; within a pixel) and its centre
    on none, on straights and curves."""
    env, steps = request.getfixturevalue(scenario)
    g = geometry(env)
    for row in (EGO, LEFT, RIGHT):
        edge, centre = [], []
        for step in steps[::2]:
            if step.labels["lane_valid"][row]:
                mid, left, right = boundaries(step.labels, row)
                edge.append(np.concatenate([on_marking(step.rgb, g, left), on_marking(step.rgb, g, right)]))
                centre.append(on_marking(step.rgb, g, mid))
        edge, centre = np.concatenate(edge), np.concatenate(centre)
        assert len(edge) > 200 and edge.mean() > 0.95 and centre.mean() < 0.02, (row, edge.mean(), centre.mean())


@pytest.mark.parametrize("scenario", ["highway", "racetrack"])
def test_ego_lane_at_s0_is_where_the_ego_is_off_its_centre(scenario, request):
    """x ahead, y right: an ego d to the right of its lane's centre (highway-env's lateral
    coordinate) sees that centre at y = -d (rotated by its heading error)."""
    _, steps = request.getfixturevalue(scenario)
    offsets = []
    for step in steps:
        ego, net = step.road.ego, step.road.network
        lane = net.get_lane(ego.lane_index)
        s, d = lane.local_coordinates(ego.position)
        e = ego.heading - lane.heading_at(s)
        expected = [-d * np.sin(e), -d * np.cos(e)]
        assert step.labels["lane_valid"][EGO]
        assert step.labels["lane_centres"][EGO, K0] == pytest.approx(expected, abs=0.03)
        offsets.append(d)
    assert max(offsets) > 0.4 and min(offsets) < -0.4  # the weave left the centre on both sides


def test_neighbours_are_a_lane_width_beside_the_ego_lane(highway):
    env, steps = highway
    lanes = env.core.config["lanes_count"]
    ids = set()
    for step in steps:
        lab, lane_id = step.labels, step.lane[2]
        ids.add(lane_id)
        assert list(lab["lane_valid"]) == [lane_id > 0, True, lane_id < lanes - 1]
        w = lab["lane_width"][EGO]
        assert w == pytest.approx(4.0)
        for row, sign in ((LEFT, -1), (RIGHT, 1)):
            if not lab["lane_valid"][row]:
                assert np.isnan(lab["lane_centres"][row]).all() and np.isnan(lab["lane_width"][row])
                continue
            gap = lab["lane_centres"][row] - lab["lane_centres"][EGO]
            assert np.isfinite(gap).all()
            assert np.linalg.norm(gap, axis=1) == pytest.approx(np.full(len(LANE_S), w), abs=0.05)
            assert sign * gap[K0, 1] > 0.95 * w  # left is -y, right +y
    assert ids == set(range(lanes))  # the left-most and the right-most lane were both driven


@pytest.fixture(scope="module")
def routes(envs):
    """Every command of the roundabout and the intersection, driven to the end by the expert."""
    out = {}
    for scenario in ("roundabout", "intersection"):
        env = envs(scenario, fast=True)
        for command in range(3):
            out[scenario, command] = drive(env, seed_for(env, command), 150)
    return out


def _distance_to_edges(net, point: np.ndarray, edges) -> float:
    """From `point` to the nearest centre line of the edges' lanes, each extended by the 5 m that
    highway-env's roundabout leaves between the ring and its exits (a label goes on from abreast
    of a lane's end on the next lane, which may be on that lane's extension)."""
    best = np.inf
    for a, b in edges:
        for lane in net.graph[a][b]:
            s, d = lane.local_coordinates(point)
            if -5.0 <= s <= lane.length + 5.0:
                best = min(best, abs(d))
    return best


def _world(ego, xy: np.ndarray) -> np.ndarray:
    """Ego frame (x ahead, y right) -> world."""
    c, s = np.cos(ego.heading), np.sin(ego.heading)
    return ego.position + np.stack([c * xy[:, 0] - s * xy[:, 1], s * xy[:, 0] + c * xy[:, 1]], axis=1)


@pytest.mark.parametrize("scenario", ["roundabout", "intersection"])
def test_ego_lane_takes_the_commanded_exit(scenario, routes):
    far_edges = set()
    for command in range(3):
        steps = routes[scenario, command]
        route = [r[:2] for r in steps[0].road.route]
        for step in steps:
            net, ego = step.road.network, step.road.ego
            c = step.labels["lane_centres"][EGO].astype(np.float64)
            far = _world(ego, c[np.isfinite(c[:, 0])][-1:])[0]
            assert _distance_to_edges(net, far, route) < 0.2
            far_edges.add(min(route, key=lambda e: _distance_to_edges(net, far, [e])))
        assert route[-1] in far_edges  # the labels reached the commanded exit road
    assert len([e for e in far_edges if e[1] in ("exr", "nxr", "wxr", "o1", "o2", "o3")]) == 3


def test_no_oncoming_lane_is_ever_a_neighbour(routes):
    """The intersection's roads are two-way: beside every inbound and outbound lane, 4 m to its
    left, runs the other direction's lane, on another edge. It must not be offered; neighbours that
    are offered (the roundabout's ring) run the ego lane's way."""
    beside = offered = 0
    for (scenario, _), steps in routes.items():
        for step in steps:
            net, ego, lab = step.road.network, step.road.ego, step.labels
            centre = lab["lane_centres"][EGO].astype(np.float64)
            if scenario == "intersection":
                assert not lab["lane_valid"][LEFT] and not lab["lane_valid"][RIGHT]
                assert np.isnan(lab["lane_centres"][[LEFT, RIGHT]]).all()
                left = _world(ego, centre[K0:K0 + 1] + [0.0, -4.0])[0]
                lane = net.get_lane(net.get_closest_lane_index(left))
                opposite = np.cos(lane.heading_at(lane.local_coordinates(left)[0]) - ego.heading) < -0.5
                beside += bool(opposite and lane.distance(left) < 0.5)
            for row in (LEFT, RIGHT):
                n = lab["lane_centres"][row].astype(np.float64)
                both = np.isfinite(n[:, 0]) & np.isfinite(centre[:, 0])
                pair = both[:-1] & both[1:]
                tn, te = np.diff(n, axis=0)[pair], np.diff(centre, axis=0)[pair]
                cos = (tn * te).sum(1) / np.linalg.norm(tn, axis=1) / np.linalg.norm(te, axis=1)
                assert (cos > 0.5).all()
                offered += int(lab["lane_valid"][row])
    assert beside > 50 and offered > 20  # the oncoming lane was there to be offered; the ring's were offered


def test_labeller_rejects_samples_without_the_ego():
    with pytest.raises(ValueError):
        LaneLabeller([5.0, 10.0])


def _labels_at(env, lane_index: tuple, s: float) -> tuple[dict, VehicleState]:
    """The labels of an ego placed on a lane's centre at arc length `s`, heading along it."""
    net = env.core.road.network
    lane = net.get_lane(lane_index)
    x, y = lane.position(s, 0.0)
    ego = VehicleState(x, y, lane.heading_at(s), 9.0, 5.0, 2.0, lane_index)
    return LaneLabeller()(RoadPrior(net, ego, env.route_lanes())), ego


def test_a_lane_ends_at_its_road_end_rather_than_turn_back_onto_the_oncoming_lane(envs):
    """At the end of the intersection's exit road the closest next road (next_lane's answer) is
    the same road's inbound lane, 4 m to the left, the other way."""
    env = envs("intersection", fast=True)
    env.reset(seed=seed_for(env, 2))  # turn right: out along il3 -> o3
    length = env.core.road.network.get_lane(("il3", "o3", 0)).length
    lab, _ = _labels_at(env, ("il3", "o3", 0), length - 20.0)
    x = lab["lane_centres"][EGO, :, 0]
    assert np.isfinite(x[LANE_S <= 20]).all() and np.isnan(x[LANE_S > 20]).all()


def test_the_acceleration_lane_ends_where_the_main_road_goes_on(envs):
    """The merge's acceleration lane (b -> c, lane 2) ends at a barrier; next_lane falls back on
    the main road's right lane, a lane width to the side: the label ends instead, and the left
    neighbour (that main-road lane) goes on."""
    env = envs("merge", fast=True)
    env.reset(seed=0)
    length = env.core.road.network.get_lane(("b", "c", 2)).length
    lab, _ = _labels_at(env, ("b", "c", 2), length - 20.0)
    c = lab["lane_centres"]
    assert np.isfinite(c[EGO, LANE_S <= 20, 0]).all() and np.isnan(c[EGO, LANE_S > 20, 0]).all()
    assert np.isfinite(c[LEFT, :, 0]).all() and c[LEFT, :, 1] == pytest.approx(-4.0, abs=0.01)
    assert list(lab["lane_valid"]) == [True, True, False]  # b -> c lane 1 beside it; nothing to its right


def test_past_half_a_turn_the_ego_is_still_abreast_of_its_lane(envs):
    """The racetrack has an arc of 181 degrees; on its last degree stock local_coordinates
    reports a negative arc length, and a label from there would run on round the circle."""
    env = envs("racetrack", fast=True)
    env.reset(seed=0)
    net = env.core.road.network
    index = next((a, b, i) for a, to in net.graph.items() for b, lanes in to.items() for i, lane in enumerate(lanes)
                 if isinstance(lane, CircularLane) and lane.length / lane.radius > np.pi)
    lane = net.get_lane(index)
    lab, ego = _labels_at(env, index, lane.length - 0.3 * (lane.length - np.pi * lane.radius))
    c = lab["lane_centres"][EGO].astype(np.float64)
    assert np.isfinite(c).all() and c[K0] == pytest.approx([0.0, 0.0], abs=0.01)
    for point in _world(ego, c):  # every sample on a lane's centre line
        assert net.get_lane(net.get_closest_lane_index(point)).distance(point) < 0.1


def test_the_roundabouts_labels_bridge_its_gaps_as_the_map_lanes_do(routes):
    """highway-env joins the roundabout's entries and exits to the ring up to 5.6 m apart: the
    labels follow a lane past its end to where it crosses the next one (as `centre_line(...,
    bridge=True)`, what the modular agent drives on map lanes), not a jump across the gap."""
    from steerbench.planning.lanes import centre_line

    bridged = 0
    for command in range(3):
        for step in routes["roundabout", command]:
            c = step.labels["lane_centres"][EGO].astype(np.float64)
            c = c[np.isfinite(c[:, 0]) & (LANE_S >= 0)]  # ahead: centre_line stops at the lane's start behind
            gaps = np.linalg.norm(np.diff(c, axis=0), axis=1)
            assert gaps.max() < 3.0  # 2.5 m apart along the lane (a sine lane's s is not its arc): no jump
            road = step.road
            line = centre_line(road.network, step.lane, road.route, road.ego, behind_m=6.0, ahead_m=62.0,
                               step_m=0.25, bridge=True)
            span = c[:, 0] >= line[0, 0]  # the line starts at its lane's start; the labels reach behind it
            off = np.min(np.linalg.norm(c[span, None, :] - line[None, :, :], axis=2), axis=1)
            assert off.max() < 0.2
            chord = centre_line(road.network, step.lane, road.route, road.ego, behind_m=6.0, ahead_m=62.0,
                                step_m=0.25)
            bridged += np.min(np.linalg.norm(c[:, None, :] - chord[None, :, :], axis=2), axis=1).max() > 1.0
    assert bridged > 20  # steps whose labels reach across a join, where a chord would lie a metre off
