"""A faster highway-env simulation core with bit-identical results (`SteerEnv(fast=True)`).

Profiling (bench/profile_env.py, docs/simcore.md) shows a substep's time going to pure-Python
loops over all vehicles: the neighbour search that IDM and MOBIL call several times per vehicle,
the all-pairs collision pre-check, the closest-lane lookup after each vehicle moves, and on the
intersection the right-of-way rules, which predict both trajectories of every pair of vehicles
(the ego's by deep-copying the whole road) for each pair.

Every replacement here keeps highway-env's own arithmetic for every number that enters the
simulation. Vectorised numpy (`fastgeom`) only filters: it proves, with a margin `EPS` far above
any rounding difference, that most vehicles, pairs or lanes cannot change a result, and the stock
code then runs on the rest in the stock order. Trajectory predictions are computed once per
vehicle instead of once per pair, and the ego's without copying the road (`fastrules`). So
trajectories, collisions and frames are exactly the stock ones (tests/sim/test_fastcore.py).

Scope: `install(road)` swaps the class of one road and its network for subclasses; highway-env's
classes, and every other environment in the process, stay stock.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import highway_env
import numpy as np
from highway_env.road.regulation import RegulatedRoad
from highway_env.road.road import LaneIndex, Road
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import Landmark, RoadObject

from .fastgeom import EPS, LaneTable, is_modelled
from .fastroad import MARGIN, IndexedRoadNetwork, index_network
from .fastrules import FastRegulation
from .fastvehicle import speed_up

# Parts of the core restate stock code (neighbour search here, trajectory prediction in
# `fastrules`, lane drawing in `fastdraw`): checked bit for bit against these versions by
# tests/sim/test_fastcore.py.
TESTED_VERSIONS = ("1.12.1",)
NEIGHBOUR_MARGIN = 1.0  # [m] the margin stock neighbour_vehicles gives on_lane
GRID = 25.0  # [m] cell size of the lane-box grid


def supported() -> bool:
    """The core mirrors stock code of these highway-env versions; on others it stays off."""
    return highway_env.__version__ in TESTED_VERSIONS


def install(road: Road) -> Road:
    """Give `road` (and its network) the fast core, in place; returns it. On a highway-env
    version it was not checked against, warns once and leaves the road stock."""
    if not supported():
        _warn_unsupported()
        return road
    if not isinstance(road.network, IndexedRoadNetwork):
        index_network(road.network)
    road.network.__class__ = FastRoadNetwork
    road.__class__ = fast_class(type(road))
    return road


@functools.cache
def _warn_unsupported() -> None:
    warnings.warn(
        f"steerbench's fast simulation core is checked against highway-env {', '.join(TESTED_VERSIONS)}, "
        f"not {highway_env.__version__}: simulating with stock code (run tests/sim/test_fastcore.py)",
        stacklevel=3,
    )


# -- closest lane ------------------------------------------------------------------------------
class FastRoadNetwork(IndexedRoadNetwork):
    """`IndexedRoadNetwork`'s answers; its candidate lanes come from a grid of the lane boxes and
    are ranked by approximate distances; the exact search runs only when the ranking is close."""

    table: LaneTable | None = None
    _cells: dict[tuple[int, int], list[int]] | None = None
    _built_for: tuple | None = None

    def _build(self) -> None:
        super()._build()
        self.table = LaneTable([self.get_lane(i) for i in self._indexes])
        cells: dict[tuple[int, int], list[int]] = {}
        for i, (x0, y0, x1, y1) in enumerate(self._boxes.tolist()):
            for cx in range(math.floor(x0 / GRID), math.floor(x1 / GRID) + 1):
                for cy in range(math.floor(y0 / GRID), math.floor(y1 / GRID) + 1):
                    cells.setdefault((cx, cy), []).append(i)
        self._cells = cells
        self._box_list = self._boxes.tolist()
        self._built_for = self._graph_key()

    def _graph_key(self) -> tuple:
        """Changes when lanes are added (`IndexedRoadNetwork` re-indexes on a changed count)."""
        return (id(self.graph), sum(len(lanes) for to in self.graph.values() for lanes in to.values()))

    def refresh(self) -> None:
        """Re-index if the graph changed; the fast road calls this once per substep."""
        if self._built_for != self._graph_key():
            self._build()

    def get_closest_lane_index(self, position: np.ndarray, heading: float | None = None) -> LaneIndex:
        if self._cells is None:
            self._build()
        x, y = float(position[0]), float(position[1])
        h = None if heading is None else float(heading)
        if not (math.isfinite(x) and math.isfinite(y) and (h is None or math.isfinite(h))):
            return super().get_closest_lane_index(position, heading)
        boxes = self._box_list
        rows = self._cells.get((math.floor(x / GRID), math.floor(y / GRID)), ())
        best, second, best_row = math.inf, math.inf, -1
        for i in rows:  # ascending: the stock index order
            x0, y0, x1, y1 = boxes[i]
            if x0 <= x <= x1 and y0 <= y <= y1:  # IndexedRoadNetwork's box test
                d, unsure = self.table.distance(i, x, y, h)
                if unsure:
                    return super().get_closest_lane_index(position, heading)
                if d < best:
                    best, second, best_row = d, best, i
                elif d < second:
                    second = d
        # A clear winner, clearly under MARGIN, is the exact search's answer too; otherwise
        # (near-ties, a distance near MARGIN, no candidate) the exact search decides.
        if best_row >= 0 and second - best > 2 * EPS and best < MARGIN - EPS:
            return self._indexes[best_row]
        return super().get_closest_lane_index(position, heading)


# -- road: neighbours, collisions ----------------------------------------------------------------
class _Frame:
    """The road's objects and their approximate coordinates on every lane while `Road.act`
    runs (nobody moves then), shared by all the neighbour queries of one substep."""

    def __init__(self, road: Road, table: LaneTable) -> None:
        self.objects = [o for o in road.vehicles + road.objects if not isinstance(o, Landmark)]
        self.row = {id(o): i for i, o in enumerate(self.objects)}
        self.table = table
        points = np.array([o.position for o in self.objects], dtype=float).reshape(-1, 2)
        s, lat, unsure = table.coordinates(points)
        half = table.half_width[:, None] + NEIGHBOUR_MARGIN
        lo, hi = -table.vehicle_length[:, None], (table.length + table.vehicle_length)[:, None]
        a = np.abs(lat)
        with np.errstate(invalid="ignore"):
            self.on = (a <= half - EPS) & (s >= lo + EPS) & (s < hi - EPS) & ~unsure
            self.off = ((a > half + EPS) | (s < lo - EPS) | (s >= hi + EPS)) & ~unsure
        self.s, self.sure = s, ~unsure
        self.finite = bool(np.isfinite(points).all())
        self._lanes: dict[int, dict[int, tuple[float, bool]]] = {}

    def on_lane(self, row: int) -> dict[int, tuple[float, bool]]:
        """Objects not surely off lane `row`: index -> (approximate s, surely on)."""
        hit = self._lanes.get(row)
        if hit is None:
            idx = np.flatnonzero(~self.off[row])
            hit = self._lanes[row] = dict(zip(idx.tolist(), zip(self.s[row, idx].tolist(), self.on[row, idx].tolist())))
        return hit


class FastRoadCore(Road):
    """Stock `Road` semantics; the searches over all vehicles are filtered first."""

    _frame: _Frame | None = None

    def act(self) -> None:
        speed_up(self.vehicles)
        net = self.network
        if isinstance(net, FastRoadNetwork):
            net.refresh()
            self._frame = _Frame(self, net.table)
        try:
            super().act()
        finally:
            self._frame = None

    def step(self, dt: float) -> None:
        for vehicle in self.vehicles:
            vehicle.step(dt)
        for a, b in self._collision_candidates(dt):
            a.handle_collisions(b, dt)

    def _collision_candidates(self, dt: float) -> list[tuple[RoadObject, RoadObject]]:
        """The (vehicle, other) pairs of the stock loop, in its order, minus those for which
        stock `handle_collisions` provably does nothing: its own distance pre-check skips them,
        or its polygon test would find a separating axis (`_surely_apart`)."""
        vehicles, objects = self.vehicles, self.objects
        others = vehicles + objects
        n = len(vehicles)
        if n == 0:
            return []
        if not all(_stock_collisions(v) for v in vehicles):  # unknown checks: all pairs, stock
            return [(v, o) for i, v in enumerate(vehicles) for o in vehicles[i + 1:] + objects]
        pos = np.array([o.position for o in others], dtype=float).reshape(-1, 2)
        diag = np.array([o.diagonal for o in others], dtype=float)
        speed = np.array([v.speed for v in vehicles], dtype=float)
        d = pos[:n, None, :] - pos[None, :, :]
        dist = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)
        reach = (diag[:n, None] + diag[None, :]) / 2 + speed[:, None] * dt
        with np.errstate(invalid="ignore"):
            near = ~(dist > reach + EPS)  # NaN stays a candidate, as in the stock pre-check
        near[:, :n] &= _upper(n)  # vehicles[i + 1:], then all objects
        rows, cols = np.nonzero(near)  # row-major: the stock loop's order
        pairs = [(vehicles[i], others[j]) for i, j in zip(rows.tolist(), cols.tolist())]
        return [(a, b) for a, b in pairs if not _surely_apart(a, b, dt)]

    def neighbour_vehicles(self, vehicle, lane_index: LaneIndex = None):
        frame = self._frame
        lane_index = lane_index or vehicle.lane_index
        if frame is None or not frame.finite or not lane_index:
            return super().neighbour_vehicles(vehicle, lane_index)
        lane = self.network.get_lane(lane_index)
        searched = self._search_lanes(lane_index, lane)
        rows = [frame.table.row.get(id(search)) for search, _ in searched]
        if any(r is None or not is_modelled(search) for r, (search, _) in zip(rows, searched)):
            return super().neighbour_vehicles(vehicle, lane_index)
        return _neighbours(frame, vehicle, lane, rows, searched)

    def _search_lanes(self, lane_index: LaneIndex, lane) -> list[tuple[Any, float]]:
        """The (lane, offset) list of stock `neighbour_vehicles`, in its order."""
        lanes_offsets = [(lane, 0)]
        if self.neighbour_vehicles_connected_lanes:
            _from, _to, _id = lane_index
            for next_lanes in self.network.graph.get(_to, {}).values():
                if _id < len(next_lanes):
                    lanes_offsets.append((next_lanes[_id], lane.length))
                elif next_lanes:
                    lanes_offsets.append((next_lanes[0], lane.length))
            for to_dict in self.network.graph.values():
                if _from in to_dict:
                    prev_lanes = to_dict[_from]
                    if _id < len(prev_lanes):
                        prev_lane = prev_lanes[_id]
                    elif prev_lanes:
                        prev_lane = prev_lanes[0]
                    else:
                        continue
                    lanes_offsets.append((prev_lane, -prev_lane.length))
        return lanes_offsets


@functools.cache
def _upper(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n), dtype=bool), k=1)


def _stock_collisions(v: RoadObject) -> bool:
    """Whether `v` checks collisions with stock code (whose pre-check the filter mirrors)."""
    t = type(v)
    return t.handle_collisions is RoadObject.handle_collisions and t._is_colliding is RoadObject._is_colliding


_STOCK_VELOCITY = (RoadObject.velocity, Vehicle.velocity)  # both speed * (cos, sin)(heading)


def _surely_apart(a: RoadObject, b: RoadObject, dt: float) -> bool:
    """True if the separating-axis test of stock `are_polygons_intersecting(a.polygon(),
    b.polygon(), a.velocity * dt, b.velocity * dt)` finds, on one of the rectangles' axes, a gap
    wider than the relative displacement: then it returns neither "intersecting" nor "will
    intersect", and `handle_collisions` changes nothing. Computed in floats with an `EPS` margin."""
    ta, tb = type(a), type(b)
    if not (ta.polygon is RoadObject.polygon and tb.polygon is RoadObject.polygon
            and ta.velocity in _STOCK_VELOCITY and tb.velocity in _STOCK_VELOCITY):
        return False
    ha, hb = float(a.heading), float(b.heading)
    ca, sa, cb, sb = math.cos(ha), math.sin(ha), math.cos(hb), math.sin(hb)
    dx, dy = float(b.position[0] - a.position[0]), float(b.position[1] - a.position[1])
    va, vb = float(a.speed) * dt, float(b.speed) * dt
    rx, ry = va * ca - vb * cb, va * sa - vb * sb  # relative displacement
    for nx, ny in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        half_a = a.LENGTH / 2 * abs(ca * nx + sa * ny) + a.WIDTH / 2 * abs(-sa * nx + ca * ny)
        half_b = b.LENGTH / 2 * abs(cb * nx + sb * ny) + b.WIDTH / 2 * abs(-sb * nx + cb * ny)
        if abs(dx * nx + dy * ny) - half_a - half_b - abs(rx * nx + ry * ny) > EPS:
            return True
    return False


def _neighbours(frame: _Frame, vehicle, lane, rows: list[int], searched: list[tuple[Any, float]]):
    """Stock `neighbour_vehicles`' answer: from the approximate coordinates when they settle it
    (no object near a lane's edge, no near-tie for the closest ahead or behind), otherwise from
    the stock loop over the few objects that could matter."""
    own = frame.row.get(id(vehicle))
    if own is not None and frame.sure[rows[0], own]:
        s = float(frame.s[rows[0], own])  # approximate: the 2 * EPS margins allow for it and for values'
    else:
        s = lane.local_coordinates(vehicle.position)[0]
    hits = [frame.on_lane(r) for r in rows]
    keys = hits[0].keys() if len(hits) == 1 else sorted(set().union(*hits))
    values: list[tuple[int, float]] = []  # (object, s on the first lane it is on, plus offset)
    doubt: list[int] = []  # objects that may or may not be on a lane
    for i in keys:
        if i == own:
            continue
        for hit, (_, offset) in zip(hits, searched):
            entry = hit.get(i)
            if entry is None:  # surely off this lane: the stock loop tries the next one
                continue
            s_v, surely_on = entry
            if surely_on:
                values.append((i, s_v + offset))
            else:
                doubt.append(i)
            break
    margin = 2 * EPS
    front = min((v for _, v in values if v >= s + margin), default=math.inf)
    rear = max((v for _, v in values if v < s - margin), default=-math.inf)
    fronts = [(i, v) for i, v in values if s - margin <= v <= front + margin]  # could be the closest ahead
    rears = [(i, v) for i, v in values if rear - margin <= v < s + margin]  # could be the closest behind
    settled = not doubt and len(fronts) <= 1 and len(rears) <= 1
    if settled and all(v >= s + margin for _, v in fronts) and all(v < s - margin for _, v in rears):
        return (frame.objects[fronts[0][0]] if fronts else None), (frame.objects[rears[0][0]] if rears else None)
    check = sorted({i for i, _ in fronts} | {i for i, _ in rears} | set(doubt))
    exact_s = lane.local_coordinates(vehicle.position)[0]
    return _stock_select(vehicle, exact_s, [frame.objects[i] for i in check], searched)


def _stock_select(vehicle, s: float, objects: list, searched: list[tuple[Any, float]]):
    """The body of stock `Road.neighbour_vehicles`' loop, over `objects` (a subset, in order)."""
    s_front = s_rear = None
    v_front = v_rear = None
    for v in objects:
        if v is vehicle:
            continue
        for search_lane, offset in searched:
            s_v, lat_v = search_lane.local_coordinates(v.position)
            if not search_lane.on_lane(v.position, s_v, lat_v, margin=NEIGHBOUR_MARGIN):
                continue
            s_v += offset
            if s <= s_v and (s_front is None or s_v <= s_front):
                s_front = s_v
                v_front = v
            if s_v < s and (s_rear is None or s_v > s_rear):
                s_rear = s_v
                v_rear = v
            break
    return v_front, v_rear


@functools.cache
def fast_class(cls: type) -> type:
    """The fast subclass of a road class: `cls`'s own overrides first, then the fast core, then
    `Road`; roads with right-of-way rules also get the cached conflict test."""
    if cls is Road:
        return FastRoadCore
    bases: tuple[type, ...] = (cls, FastRoadCore)
    if issubclass(cls, RegulatedRoad):
        bases = (FastRegulation,) + bases
    return type(f"Fast{cls.__name__}", bases, {"__module__": __name__})
