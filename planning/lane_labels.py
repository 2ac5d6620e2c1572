"""Lane labels from the map: what a lane network should recover from a frame (docs/dataset.md).

Per step, in the ego frame (x ahead, y right, metres: the frame of `boxes_m` and of the modular
agent's `MapLanes`), the centre lines of three lanes, ordered (left, ego, right):

* the ego's lane as `LaneTracker` follows it (as `MapLanes` does: across segment ends, along
  the route where the scenario has one, so at a roundabout or intersection it takes the
  commanded exit or turn);
* its neighbours: `LaneTracker.side_lanes` of the segment under each sample of the ego's lane
  (the same edge, so the same direction: never an oncoming lane, never a forbidden one), taken
  abreast of that sample, from abreast of the ego outwards until the segment under a sample has
  no lane on that side; where the ego's lane ends ahead, a neighbour goes on along its own
  continuation.

Samples are at the arc lengths `LANE_S` along the ego's lane, measured from abreast of the ego;
NaN where the lane or its continuation does not exist.

Where segments join, a lane goes on from the point of the next segment abreast of the previous
one's end (its own extension where that point lies before its start: the racetrack overlaps
segments by up to 2.6 m); where the next segment starts away from the end (the roundabout's
entries and exits, 5.6 m from the ring lane's end), it goes on past the end to where it crosses
the next lane's backward extension (`bridge_crossing`, as the map lanes do), not across the gap.
A lane has no continuation when next_lane's answer turns back (more than 90 degrees: the end of
an exit road, whose closest next road is the oncoming one) or is claimed, with a
closer join, by another lane of the same edge: two lanes cannot flow into one, and the one with
the looser join ends there (the merge's acceleration lane at its barrier, where next_lane falls
back on the main road's right lane; the ring's inner lane at an exit).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from highway_env.road.lane import CircularLane

from steerbench.planning.lanes import LaneTracker, bridge_crossing, wrap_to_pi
from steerbench.sim.types import LaneIndex, RoadPrior

# [m] arc lengths along the ego's lane, from abreast of the ego. The view ahead is what the
# frame can show: 51 m on highway and merge (ego at 30% of 128 px at 1.75 px/m), 37 m elsewhere
# (docs/scenarios.md); 60 m covers it with the curves' extra arc length. 5 m behind is what
# MapLanes hands the planner (BEHIND_M). Every 2.5 m: about 4 px at the default scale, and a
# chord 5 cm off the arc on the racetrack's 15 m curves.
LANE_BEHIND_M = 5.0
LANE_AHEAD_M = 60.0
LANE_STEP_M = 2.5
LANE_S = np.arange(-LANE_BEHIND_M, LANE_AHEAD_M + LANE_STEP_M / 2, LANE_STEP_M).astype(np.float32)
LEFT, EGO, RIGHT = 0, 1, 2  # rows of the label arrays
# [m] label coordinates are multiples of this (~1 mm, far below a pixel's 0.57 m): the low
# mantissa bits are zero, so 200 highway steps of labels compress to ~40 kB instead of 85 kB.
LANE_QUANTUM_M = 2.0**-10
MAX_TURN = np.pi / 2  # [rad] a continuation that turns more than this at the join turns back

# the next lane, where on it the previous one joins it, and where on the previous one (its length,
# or past it where the join is bridged) it leaves
Continuation = tuple[LaneIndex, float, float]


def arc_length(lane, position: np.ndarray) -> float:
    """`position`'s arc length along `lane`. Stock `local_coordinates` wraps an arc's angle to
    +-pi, so past half a turn (the racetrack has a 181-degree arc) it reports a negative s."""
    s = float(lane.local_coordinates(position)[0])
    if s < 0 and isinstance(lane, CircularLane) and s + 2 * np.pi * lane.radius <= lane.length:
        s += 2 * np.pi * lane.radius
    return s


class LaneLabeller:
    """The lane labels of one episode, one call per step with the map prior (a new labeller per
    episode: it keeps the lane tracker, which follows the ego across segment ends, and caches of
    the network's joins)."""

    def __init__(self, s: Sequence[float] = LANE_S) -> None:
        self.s = np.asarray(s, dtype=np.float64)
        if not (np.all(np.diff(self.s) > 0) and 0.0 in self.s):
            raise ValueError("sample arc lengths must be increasing and include 0")
        self.k0 = int(np.flatnonzero(self.s == 0.0)[0])
        self.tracker: LaneTracker | None = None
        self.route: tuple = ()
        self._next: dict[LaneIndex, Continuation | None] = {}
        self._prev: dict[LaneIndex, Continuation | None] = {}
        self._sides: dict[LaneIndex, tuple[LaneIndex | None, LaneIndex | None]] = {}
        self._incoming: dict[str, list[str]] | None = None

    def __call__(self, road: RoadPrior) -> dict[str, np.ndarray]:
        """`lane_centres` (3, K, 2) float32, `lane_valid` (3,) bool, `lane_width` (3,) float32."""
        net, ego = road.network, road.ego
        lane = self._follow(road)
        k, k0 = len(self.s), self.k0
        world = np.full((3, k, 2), np.nan)
        segments: list[LaneIndex | None] = [None] * k
        self._walk(net, lane, arc_length(net.get_lane(lane), ego.position), world[EGO], segments)
        width = np.full(3, np.nan)
        if segments[k0] is not None:
            ego_lane = net.get_lane(segments[k0])
            width[EGO] = ego_lane.width_at(arc_length(ego_lane, world[EGO, k0]))
        for row, side in ((LEFT, 0), (RIGHT, 1)):
            self._neighbour(net, side, world[EGO], segments, world[row])
            if np.isfinite(world[row, k0, 0]):
                n_lane = net.get_lane(self._side(net, segments[k0])[side])
                width[row] = n_lane.width_at(arc_length(n_lane, world[row, k0]))
        local = np.full_like(world, np.nan)
        ok = np.isfinite(world[..., 0])
        local[ok] = np.round(ego.to_local(world[ok]) / LANE_QUANTUM_M) * LANE_QUANTUM_M
        valid = ok[:, k0]
        return {
            "lane_centres": local.astype(np.float32),
            "lane_valid": valid,
            "lane_width": np.where(valid, width, np.nan).astype(np.float32),
        }

    # -- the ego's lane ---------------------------------------------------------------------
    def _follow(self, road: RoadPrior) -> LaneIndex:
        """The followed lane, as the modular agent's `MapLanes` follows it."""
        if self.tracker is None:
            self.tracker = LaneTracker(road.network, road.ego.lane_index, road.route)
            self.route = tuple(road.route)  # the episode's: the caches of joins assume it fixed
        if road.ego.lane_index[:2] == self.tracker.lane[:2]:
            self.tracker.lane = road.ego.lane_index  # a lane change: follow the new lane
        return self.tracker.update(road.ego.position, road.ego.lane_index)

    def _walk(self, net, start: LaneIndex, s0: float, out: np.ndarray, segments: list) -> None:
        """Fill `out` (K, 2) with the world points `s0 + s` along the lane from `start`'s origin
        (forwards through continuations, backwards through predecessors), and `segments` with
        the lane under each point."""
        targets = s0 + self.s
        lower = min(s0, self._entry(net, start))  # below this, the points lie on the predecessor
        ahead = np.flatnonzero(targets >= lower)
        for i, index, point in self._forward(net, start, zip(ahead, targets[ahead])):
            out[i], segments[i] = point, index
        behind = np.flatnonzero(targets < lower)[::-1]
        for i, index, point in self._backward(net, start, lower, zip(behind, targets[behind])):
            out[i], segments[i] = point, index

    def _forward(self, net, index: LaneIndex, items):
        """(i, lane, point) for each (i, u) of increasing arc lengths `u` from `index`'s origin,
        through continuations, until the lane ends."""
        lane, origin = net.get_lane(index), 0.0  # origin: the arc length u at which `index`'s s is 0
        for i, u in items:
            while u - origin > (leave := self._leave(net, index)):
                nxt = self._continuation(net, index)
                if nxt is None:
                    return
                origin += leave - nxt[1]  # go on from the join
                index, lane = nxt[0], net.get_lane(nxt[0])
            yield i, index, lane.position(u - origin, 0.0)

    def _backward(self, net, index: LaneIndex, lower: float, items):
        """As `_forward`, for decreasing `u` below `lower` (where `index` begins), through
        predecessors."""
        lane, origin = net.get_lane(index), 0.0
        for i, u in items:
            while u - origin < lower:
                prev = self._predecessor(net, index)
                if prev is None:
                    return
                origin += prev[1] - prev[2]  # `index`'s entry point is where the predecessor leaves
                index, lane, lower = prev[0], net.get_lane(prev[0]), self._entry(net, prev[0])
            yield i, index, lane.position(u - origin, 0.0)

    def _neighbour(self, net, side: int, ego_pts: np.ndarray, segments: list, out: np.ndarray) -> None:
        """Fill `out` with the lane on `side` (0 left, 1 right) abreast of the ego lane's points,
        outwards from abreast of the ego while the segment under each point has a lane on that
        side; where the ego's lane ends ahead, the neighbour goes on along its own continuation."""
        k, k0 = len(self.s), self.k0
        for order in (range(k0, k), range(k0 - 1, -1, -1)):
            last = None
            for i in order:
                if segments[i] is None:
                    break
                n_index = self._side(net, segments[i])[side]
                if n_index is None:
                    last = None
                    break
                n_lane = net.get_lane(n_index)
                s_n = arc_length(n_lane, ego_pts[i])
                out[i], last = n_lane.position(s_n, 0.0), (i, n_index, s_n)
            if order.step > 0 and last is not None and last[0] < k - 1:
                i0, n_index, s_n = last  # the ego's lane ended beside this lane
                rest = range(i0 + 1, k)
                for i, _, point in self._forward(net, n_index, ((i, s_n + self.s[i] - self.s[i0]) for i in rest)):
                    out[i] = point
            if not np.isfinite(out[k0, 0]):
                return  # none abreast of the ego: no neighbour on this side

    def _continuation(self, net, index: LaneIndex) -> Continuation | None:
        """The lane `index` flows into (along the route) and where the two join: abreast of
        `index`'s end, or where a gap is bridged (`bridge_crossing`); None where the lane ends
        (see the module docstring)."""
        key = index  # the route is the episode's: fixed
        if key not in self._next:
            self._next[key] = None
            nxt, gap, s_entry = self._next_lane(net, index)
            if nxt is not None:
                siblings = [j for j in net.all_side_lanes(index) if j != index]
                if not any(self._next_lane(net, j)[0] == nxt and self._next_lane(net, j)[1] < gap for j in siblings):
                    cross = bridge_crossing(net.get_lane(index), net.get_lane(nxt))
                    leave, entry = cross if cross is not None else (net.get_lane(index).length, s_entry)
                    self._next[key] = (nxt, entry, leave)
        return self._next[key]

    def _next_lane(self, net, index: LaneIndex) -> tuple[LaneIndex | None, float, float]:
        """next_lane's answer along the route, the gap from `index`'s end to its start, and the
        arc length on it abreast of that end; None for none, or one that turns back."""
        lane = net.get_lane(index)
        end = lane.position(lane.length, 0.0)
        route = LaneTracker(net, index, self.route).remaining_route()
        nxt = net.next_lane(index, route=route, position=end)
        if nxt == index:
            return None, np.inf, 0.0
        n_lane = net.get_lane(nxt)
        s_entry = arc_length(n_lane, end)
        if abs(wrap_to_pi(n_lane.heading_at(max(s_entry, 0.0)) - lane.heading_at(lane.length))) > MAX_TURN:
            return None, np.inf, 0.0
        return nxt, float(np.hypot(*(n_lane.position(0.0, 0.0) - end))), s_entry

    def _predecessor(self, net, index: LaneIndex) -> Continuation | None:
        """The lane whose continuation is `index`, and where it entered `index`: on the route's
        previous edge where the route holds `index`'s edge and one there flows into it, else
        the incoming lane with the closest join."""
        if index not in self._prev:
            if self._incoming is None:
                self._incoming = {}
                for a, to in net.graph.items():
                    for b in to:
                        self._incoming.setdefault(b, []).append(a)
            edges = [r[:2] for r in self.route]
            on_route = index[:2] in edges and edges.index(index[:2]) > 0
            groups = [[edges[edges.index(index[:2]) - 1][0]]] if on_route else []
            self._prev[index] = None
            for froms in groups + [self._incoming.get(index[0], [])]:
                best, best_gap = None, np.inf
                for a in froms:
                    for j in range(len(net.graph[a][index[0]])):
                        cand = (a, index[0], j)
                        cont, gap = self._continuation(net, cand), self._next_lane(net, cand)[1]
                        if cont is not None and cont[0] == index and gap < best_gap:
                            best, best_gap = (cand, cont[1], cont[2]), gap
                if best is not None:
                    self._prev[index] = best
                    break
        return self._prev[index]

    def _leave(self, net, index: LaneIndex) -> float:
        """Where on `index` the labels go on to its continuation (its length where it has none)."""
        nxt = self._continuation(net, index)
        return nxt[2] if nxt is not None else net.get_lane(index).length

    def _entry(self, net, index: LaneIndex) -> float:
        """Where on `index` its predecessor ended (0 when it has none)."""
        prev = self._predecessor(net, index)
        return prev[1] if prev is not None else 0.0

    # -- neighbours -------------------------------------------------------------------------
    def _side(self, net, index: LaneIndex) -> tuple[LaneIndex | None, LaneIndex | None]:
        """(left, right) lanes beside `index` on its edge (not forbidden), by where they lie."""
        if index not in self._sides:
            lane = net.get_lane(index)
            left = right = None
            for side in LaneTracker(net, index).side_lanes():
                other = net.get_lane(side)
                if lane.local_coordinates(other.position(other.length / 2, 0.0))[1] < 0:
                    left = side
                else:
                    right = side
            self._sides[index] = (left, right)
        return self._sides[index]
