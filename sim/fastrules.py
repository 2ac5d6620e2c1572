"""The fast core's intersection right of way: stock `RegulatedRoad` rules, cached predictions.

Stock `enforce_road_rules` calls `is_conflict_possible` for every pair of vehicles, and each call
predicts both vehicles' trajectories (the ego's by deep-copying the whole road). Here every
vehicle's trajectory is predicted once per rule pass, pairs that never come within `v1.LENGTH`
skip the rectangle test, and the ego's prediction steps a shallow copy; the rectangle test and its
order are stock, so every answer is the stock one (tests/sim/test_fastcore.py). `fastcore.fast_class`
puts `FastRegulation` in front of regulated roads.
"""

from __future__ import annotations

import copy
from collections import deque

import numpy as np
from highway_env import utils
from highway_env.road.regulation import RegulatedRoad
from highway_env.vehicle.kinematics import Vehicle

from .fastgeom import EPS

CONFLICT_HORIZON, CONFLICT_STEP = 3, 0.25  # stock `is_conflict_possible` defaults


class _Conflicts:
    """Every vehicle's predicted trajectory (once, not once per pair) and which pairs ever come
    close enough for the stock rectangle test; built when `enforce_road_rules` first asks."""

    def __init__(self, vehicles: list) -> None:
        times = np.arange(CONFLICT_STEP, CONFLICT_HORIZON, CONFLICT_STEP)
        self.row = {id(v): i for i, v in enumerate(vehicles)}
        self.paths = [_predict(v, times) for v in vehicles]
        pts = np.array([[np.asarray(p, dtype=float) for p in positions] for positions, _ in self.paths],
                       dtype=float).reshape(len(vehicles), len(times), 2)
        d = pts[:, None] - pts[None, :]
        closest = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2).min(axis=2)
        length = np.array([v.LENGTH for v in vehicles], dtype=float)
        self.near = (closest <= length[:, None] + EPS) | ~np.isfinite(closest)

    def possible(self, v1, v2) -> bool | None:
        """Stock `RegulatedRoad.is_conflict_possible(v1, v2)`, from the cached trajectories."""
        i, j = self.row.get(id(v1)), self.row.get(id(v2))
        if i is None or j is None:
            return RegulatedRoad.is_conflict_possible(v1, v2, CONFLICT_HORIZON, CONFLICT_STEP)
        if not self.near[i, j]:
            return None  # what the stock loop returns when no step comes within v1.LENGTH
        positions_1, headings_1 = self.paths[i]
        positions_2, headings_2 = self.paths[j]
        for position_1, heading_1, position_2, heading_2 in zip(
            positions_1, headings_1, positions_2, headings_2, strict=False
        ):
            if np.linalg.norm(position_2 - position_1) > v1.LENGTH:
                continue
            if utils.rotated_rectangles_intersect(
                (position_1, 1.5 * v1.LENGTH, 0.9 * v1.WIDTH, heading_1),
                (position_2, 1.5 * v2.LENGTH, 0.9 * v2.WIDTH, heading_2),
            ):
                return True
        return None


def _predict(v, times: np.ndarray):
    """`v.predict_trajectory_constant_speed(times)`; for a plain `Vehicle` (the continuous-action
    ego) without the stock deep copy of the whole road: a shallow copy with its own mutable state
    (position, action, history, log) runs the same `act` and `step` calls, which read the road
    only to look up lanes."""
    if type(v) is not Vehicle:  # other classes predict along their route, without copies
        return v.predict_trajectory_constant_speed(times)
    if v.prediction_type == "zero_steering":
        action = {"acceleration": 0.0, "steering": 0.0}
    elif v.prediction_type == "constant_steering":
        action = {"acceleration": 0.0, "steering": v.action["steering"]}
    else:
        raise ValueError("Unknown predition type")
    dt = np.diff(np.concatenate(([0.0], times)))
    ghost = copy.copy(v)
    ghost.position = v.position.copy()
    ghost.history = deque(v.history, maxlen=v.history.maxlen)
    ghost.log = list(v.log)
    positions, headings = [], []
    ghost.act(action)
    for t in dt:
        ghost.step(t)
        positions.append(ghost.position.copy())
        headings.append(ghost.heading)
    return positions, headings


class FastRegulation:
    """Placed before `RegulatedRoad` in the MRO: stock rules, cached conflict predictions."""

    _conflicts: _Conflicts | None = None
    _enforcing: bool = False

    def enforce_road_rules(self) -> None:
        self._conflicts, self._enforcing = None, True
        try:
            super().enforce_road_rules()  # type: ignore[misc]
        finally:
            self._conflicts, self._enforcing = None, False

    def is_conflict_possible(self, v1, v2, horizon: int = CONFLICT_HORIZON, step: float = CONFLICT_STEP):
        if not self._enforcing or (horizon, step) != (CONFLICT_HORIZON, CONFLICT_STEP):
            return RegulatedRoad.is_conflict_possible(v1, v2, horizon, step)
        if self._conflicts is None:  # the vehicle list does not change while the rules run
            self._conflicts = _Conflicts(self.vehicles)  # type: ignore[attr-defined]
        return self._conflicts.possible(v1, v2)
