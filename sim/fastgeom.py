"""Approximate lane geometry for the fast simulation core: filters, never results.

highway-env's lane formulas are evaluated here for many lanes and points at once (numpy) or in
plain Python floats (`math`). These numbers never enter the simulation: a vector kernel or `math`
may round differently from the numpy scalar calls highway-env makes, so a value can differ from
the stock one in its last bits. The core only uses them to prove which lane or vehicle a stock
computation would pick, and where the proof needs a margin wider than `EPS` it runs the stock
code instead. At the suite's scale (kilometres, radians) the real difference is about 1e-12,
so `EPS` is a wide margin, and fallbacks are rare (near-exact ties).

A value is "unsure" where a tiny difference could change it discontinuously: a circular lane's
longitudinal coordinate jumps by a full turn where `wrap_to_pi` wraps. Lanes of a type not
modelled here (exact types only: a subclass may override the geometry) are always unsure.
"""

from __future__ import annotations

import math

import numpy as np
from highway_env.road.lane import AbstractLane, CircularLane, SineLane, StraightLane

EPS = 1e-6  # [m] or [rad]: assumed bound on |approximate - exact|
WRAP_TOL = 1e-9  # [rad] this close to where wrap_to_pi jumps, a value is unsure
TWO_PI = 2 * math.pi
MODELLED = (StraightLane, SineLane, CircularLane)


def is_modelled(lane: AbstractLane) -> bool:
    return type(lane) in MODELLED


class LaneTable:
    """A list of lanes as arrays (for all lanes x all points) and as tuples of floats (for one point)."""

    def __init__(self, lanes: list[AbstractLane]) -> None:
        self.lanes = lanes
        self.size = len(lanes)
        self.row = {id(lane): i for i, lane in enumerate(lanes)}
        self.params = [_params(lane) for lane in lanes]
        self.length = np.array([float(lane.length) for lane in lanes])
        self.vehicle_length = np.array([float(lane.VEHICLE_LENGTH) for lane in lanes])
        self.half_width = np.array([float(lane.width) / 2 if is_modelled(lane) else np.nan for lane in lanes])
        self._straight = _columns(lanes, (StraightLane, SineLane))
        self._circular = _columns(lanes, (CircularLane,))

    # -- many points -------------------------------------------------------------------------
    def coordinates(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, lateral, unsure), each (lanes, points), of (N, 2) world points; NaN and unsure
        for lanes not modelled."""
        shape = (self.size, len(points))
        s, lat, unsure = np.full(shape, np.nan), np.full(shape, np.nan), np.ones(shape, dtype=bool)
        x, y = points[:, 0], points[:, 1]
        g = self._straight
        if len(g["idx"]):
            dx, dy = x[None, :] - g["x0"][:, None], y[None, :] - g["y0"][:, None]
            gs = dx * g["ux"][:, None] + dy * g["uy"][:, None]
            glat = dx * g["vx"][:, None] + dy * g["vy"][:, None]
            sine = g["sine"]
            if sine.any():
                arg = g["pulsation"][sine, None] * gs[sine] + g["phase"][sine, None]
                glat[sine] -= g["amplitude"][sine, None] * np.sin(arg)
            s[g["idx"]], lat[g["idx"]], unsure[g["idx"]] = gs, glat, False
        g = self._circular
        if len(g["idx"]):
            dx, dy = x[None, :] - g["x0"][:, None], y[None, :] - g["y0"][:, None]
            w, jump = _wrap(np.arctan2(dy, dx) - g["phase"][:, None])
            s[g["idx"]] = g["sign"][:, None] * w * g["radius"][:, None]
            lat[g["idx"]] = g["sign"][:, None] * (g["radius"][:, None] - np.sqrt(dx * dx + dy * dy))
            unsure[g["idx"]] = jump
        return s, lat, unsure

    # -- one point -----------------------------------------------------------------------------
    def distance(self, i: int, x: float, y: float, heading: float | None) -> tuple[float, bool]:
        """Approximate `lanes[i].distance_with_heading((x, y), heading)`, and whether it is unsure."""
        p = self.params[i]
        if p is None:
            return math.nan, True
        unsure = False
        if p[0] == "circular":
            _, cx, cy, radius, phase, sign, length = p
            dx, dy = x - cx, y - cy
            w = (math.atan2(dy, dx) - phase + math.pi) % TWO_PI
            unsure = w < WRAP_TOL or w > TWO_PI - WRAP_TOL
            s = sign * (w - math.pi) * radius
            r = sign * (radius - math.hypot(dx, dy))
            lane_heading = sign * s / radius + phase + math.pi / 2 * sign
        else:
            _, x0, y0, ux, uy, vx, vy, lane_heading, amplitude, pulsation, phase, length = p
            dx, dy = x - x0, y - y0
            s = dx * ux + dy * uy
            r = dx * vx + dy * vy
            if amplitude:
                r -= amplitude * math.sin(pulsation * s + phase)
                lane_heading += math.atan(amplitude * pulsation * math.cos(pulsation * s + phase))
        d = abs(r) + max(s - length, 0.0) + max(-s, 0.0)
        if heading is not None:
            d += abs((heading - lane_heading + math.pi) % TWO_PI - math.pi)
        return d, unsure


def _wrap(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """highway-env's wrap_to_pi, and where it is about to jump."""
    y = (x + np.pi) % TWO_PI
    return y - np.pi, (y < WRAP_TOL) | (y > TWO_PI - WRAP_TOL)


def _params(lane: AbstractLane) -> tuple | None:
    if type(lane) is CircularLane:
        return ("circular", float(lane.center[0]), float(lane.center[1]), float(lane.radius),
                float(lane.start_phase), float(lane.direction), float(lane.length))
    if type(lane) in (StraightLane, SineLane):
        sine = type(lane) is SineLane
        return ("straight", float(lane.start[0]), float(lane.start[1]), float(lane.direction[0]),
                float(lane.direction[1]), float(lane.direction_lateral[0]), float(lane.direction_lateral[1]),
                float(lane.heading), float(lane.amplitude) if sine else 0.0,
                float(lane.pulsation) if sine else 0.0, float(lane.phase) if sine else 0.0, float(lane.length))
    return None


def _columns(lanes: list[AbstractLane], types: tuple[type, ...]) -> dict[str, np.ndarray]:
    """Parameter columns of the lanes whose exact type is in `types`, and their rows."""
    idx = [i for i, lane in enumerate(lanes) if type(lane) in types]
    params = [_params(lanes[i]) for i in idx]

    def col(k: int) -> np.ndarray:
        return np.array([p[k] for p in params], dtype=float)

    if types == (CircularLane,):
        names = ("x0", "y0", "radius", "phase", "sign")
    else:
        names = ("x0", "y0", "ux", "uy", "vx", "vy", "heading", "amplitude", "pulsation", "phase")
    out = {name: col(k + 1) for k, name in enumerate(names)}
    out["idx"] = np.array(idx, dtype=int)
    if types != (CircularLane,):
        out["sine"] = np.array([type(lanes[i]) is SineLane for i in idx], dtype=bool)
    return out
