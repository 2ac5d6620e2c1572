"""Lane markings drawn with the stock pixel arithmetic, all lanes in one pass (fast core).

Profiling shows the camera's time going to `LaneGraphics.draw_stripes`: for every stripe of
every lane near the ego, two `lane.position` and two `vec2pix` calls in Python, then one
`pygame.draw.line`. Here the stripes of all lanes are computed as arrays with the same
elementwise operations in the same order (numpy's elementwise `+ - * /` round exactly like its
scalar ones, so positions and pixels are bit-identical); `cos`/`sin` of curved lanes stay numpy
scalar calls per point, as in stock, since a vector kernel might round differently. Lines that
lie wholly outside the surface are skipped (pygame would clip them to nothing; curved lanes are
culled on vector-kernel positions with a margin first, to save those scalar calls); the others
are drawn by the same `pygame.draw.line` calls, in the same order. So frames are pixel-identical.
Anything else (another lane type or surface, a viewer with a trajectory, an agent display,
saved images) is drawn by stock code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pygame
from highway_env.envs.common.graphics import EnvViewer, ObservationGraphics
from highway_env.road.graphics import LaneGraphics, RoadGraphics, WorldSurface
from highway_env.road.lane import AbstractLane, CircularLane, LineType, SineLane, StraightLane

STRAIGHT, SINE, CIRCULAR = 0, 1, 2
KIND = {StraightLane: STRAIGHT, SineLane: SINE, CircularLane: CIRCULAR}  # exact types only
LINES = (LineType.STRIPED, LineType.CONTINUOUS, LineType.CONTINUOUS_LINE)
PIXEL_LIMIT = 1e9  # [px] beyond this (or non-finite), leave the conversion to stock code
CULL_MARGIN = 4  # [px] beyond the line width: pygame's thick lines and rough positions' rounding


class FastEnvViewer(EnvViewer):
    """`EnvViewer` whose road layer is drawn by `draw_road`; the rest is the stock sequence."""

    def display(self) -> None:
        plain = self.offscreen and not self.vehicle_trajectory and not EnvViewer.agent_display
        if not (self.enabled and plain and not self.SAVE_IMAGES and type(self.sim_surface) is WorldSurface):
            super().display()
            return
        self.sim_surface.move_display_window_to(self.window_position())
        draw_road(self.env.road, self.sim_surface)
        RoadGraphics.display_road_objects(self.env.road, self.sim_surface, offscreen=self.offscreen)
        RoadGraphics.display_traffic(
            self.env.road, self.sim_surface,
            simulation_frequency=self.env.config["simulation_frequency"], offscreen=self.offscreen,
        )
        ObservationGraphics.display(self.env.observation_type, self.sim_surface)


def install_viewer(viewer: EnvViewer) -> EnvViewer:
    """Give one viewer the fast road layer, in place."""
    if type(viewer) is EnvViewer:
        viewer.__class__ = FastEnvViewer
    return viewer


def draw_road(road, surface: WorldSurface) -> None:
    """`RoadGraphics.display`: grey ground, then every lane's markings."""
    lanes = [lane for to in road.network.graph.values() for ids in to.values() for lane in ids]
    if any(type(lane) not in KIND for lane in lanes) or _stripe_count(surface) <= 0:
        RoadGraphics.display(road, surface)
        return
    surface.fill(surface.GREY)
    stripes = Stripes.of(lanes, surface)
    width = max(surface.pix(LaneGraphics.STRIPE_WIDTH), 1)
    lines = stripes.lines(surface, width)
    if lines is None:  # a pixel out of int range: let stock code decide (and raise)
        RoadGraphics.display(road, surface)
        return
    for p, q in lines:
        pygame.draw.line(surface, surface.WHITE, p, q, width)


@dataclass(frozen=True)
class Sides:
    """One row per drawn side of a lane (lane order, then side): its geometry as columns."""

    kind: np.ndarray
    lateral: np.ndarray  # (side - 0.5) * width
    start: np.ndarray  # straight and sine lanes (N, 2)
    direction: np.ndarray
    lateral_direction: np.ndarray
    amplitude: np.ndarray  # sine lanes
    pulsation: np.ndarray
    phase: np.ndarray
    center: np.ndarray  # circular lanes (N, 2)
    radius: np.ndarray
    sign: np.ndarray  # lane.direction: +1 clockwise
    start_phase: np.ndarray

    @classmethod
    def of(cls, rows: list[tuple[AbstractLane, float]]) -> Sides:
        def col(name: str, default: float = 0.0) -> np.ndarray:
            return np.array([float(getattr(lane, name, default)) for lane, _ in rows])

        def vec(name: str) -> np.ndarray:
            return np.array([getattr(lane, name, (0.0, 0.0)) for lane, _ in rows], dtype=float).reshape(-1, 2)

        return cls(
            kind=np.array([KIND[type(lane)] for lane, _ in rows], dtype=int),
            lateral=np.array([lat for _, lat in rows], dtype=float),
            start=vec("start"), direction=np.array([_straight_dir(lane) for lane, _ in rows]).reshape(-1, 2),
            lateral_direction=vec("direction_lateral"), amplitude=col("amplitude"), pulsation=col("pulsation"),
            phase=col("phase"), center=vec("center"), radius=col("radius", 1.0),
            sign=np.array([float(lane.direction) if type(lane) is CircularLane else 1.0 for lane, _ in rows]),
            start_phase=col("start_phase"),
        )


def _straight_dir(lane: AbstractLane) -> tuple[float, float]:
    return (0.0, 0.0) if type(lane) is CircularLane else tuple(lane.direction)


@dataclass(frozen=True)
class Stripes:
    """Every stripe `LaneGraphics.display` would draw, in its order: side row, start, end."""

    sides: Sides
    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, lanes: list[AbstractLane], surface: WorldSurface) -> Stripes:
        g = LaneGraphics
        count = _stripe_count(surface)
        rows, s0, kinds = [], [], []
        for lane in lanes:
            s_origin, _ = lane.local_coordinates(surface.origin)
            first = (int(s_origin) // g.STRIPE_SPACING - count // 2) * g.STRIPE_SPACING
            for side in range(2):
                if lane.line_types[side] in LINES:
                    rows.append((lane, (side - 0.5) * lane.width))  # width_at(s): constant on these types
                    s0.append(first)
                    kinds.append(lane.line_types[side])
        starts = np.array(s0, dtype=float)[:, None] + (np.arange(count) * g.STRIPE_SPACING)[None, :]
        kind = np.array(kinds, dtype=int)[:, None]
        ends = np.where(kind == LineType.CONTINUOUS, starts + g.STRIPE_SPACING, starts + g.STRIPE_LENGTH)
        single = np.flatnonzero(kind[:, 0] == LineType.CONTINUOUS_LINE)  # one segment from s0
        if len(single):
            starts[single, 0] = [s0[i] + 0 * g.STRIPE_SPACING for i in single]
            ends[single, 0] = [s0[i] + count * g.STRIPE_SPACING + g.STRIPE_LENGTH for i in single]
        length = np.array([float(lane.length) for lane, _ in rows])[:, None]
        starts, ends = np.clip(starts, 0, length), np.clip(ends, 0, length)
        keep = np.abs(starts - ends) > 0.5 * g.STRIPE_LENGTH
        keep[single, 1:] = False
        r, c = np.nonzero(keep)  # row-major: lane by lane, side by side, stripe by stripe
        return cls(Sides.of(rows), r, starts[r, c], ends[r, c])

    def lines(self, surface: WorldSurface, width: int) -> list | None:
        """Pixel end points of the stripes that may touch the surface, in order; None if a
        pixel is out of range."""
        todo = np.ones(len(self.rows), dtype=bool)
        curved = self.sides.kind[self.rows] != STRAIGHT
        if curved.any():
            idx = np.flatnonzero(curved)
            rough = [_scaled(surface, self.points(s, idx, exact=False)) for s in (self.starts, self.ends)]
            todo[idx] = _visible(surface, rough[0], rough[1], width)
        idx = np.flatnonzero(todo)
        a = _pixels(surface, self.points(self.starts, idx, exact=True))
        b = _pixels(surface, self.points(self.ends, idx, exact=True))
        if a is None or b is None:
            return None
        shown = np.flatnonzero(_visible(surface, a, b, width))
        return list(zip(a[shown].tolist(), b[shown].tolist()))

    def points(self, s_all: np.ndarray, idx: np.ndarray, exact: bool) -> np.ndarray:
        """World points `lane.position(s, lateral)` of stripes `idx`: bit for bit if `exact`
        (cos/sin as numpy scalar calls, like stock), else with vector kernels."""
        g, rows, s = self.sides, self.rows[idx], s_all[idx]
        kind, lat = g.kind[rows], g.lateral[rows]
        out = np.empty((len(s), 2))
        arc = np.flatnonzero(kind == CIRCULAR)
        if len(arc):
            r = rows[arc]
            phi = g.sign[r] * s[arc] / g.radius[r] + g.start_phase[r]
            unit = _unit(phi) if exact else np.stack([np.cos(phi), np.sin(phi)], axis=1)
            out[arc] = g.center[r] + (g.radius[r] - lat[arc] * g.sign[r])[:, None] * unit
        line = np.flatnonzero(kind != CIRCULAR)
        if len(line):
            r, sl, latl = rows[line], s[line], lat[line].copy()
            wave = np.flatnonzero(kind[line] == SINE)
            if len(wave):
                arg = g.pulsation[r[wave]] * sl[wave] + g.phase[r[wave]]
                sine = np.array([np.sin(x) for x in arg]) if exact else np.sin(arg)
                latl[wave] = latl[wave] + g.amplitude[r[wave]] * sine
            out[line] = g.start[r] + sl[:, None] * g.direction[r] + latl[:, None] * g.lateral_direction[r]
        return out


def _stripe_count(surface: WorldSurface) -> int:
    """Stripes per lane side, as `LaneGraphics.display` computes it."""
    return int(2 * (surface.get_height() + surface.get_width()) / (LaneGraphics.STRIPE_SPACING * surface.scaling))


def _unit(phi: np.ndarray) -> np.ndarray:
    """[cos, sin] per angle, each a numpy scalar call as in `CircularLane.position`."""
    return np.array([[np.cos(p), np.sin(p)] for p in phi], dtype=float).reshape(-1, 2)


def _visible(surface: WorldSurface, a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """Lines from pixels `a` to `b` (N, 2) that may touch the surface: not both ends beyond the
    same edge by more than the line width and `CULL_MARGIN`."""
    m = width + CULL_MARGIN
    w, h = surface.get_width(), surface.get_height()
    x0, x1 = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    y0, y1 = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    return ~((x1 < -m) | (x0 > w + m) | (y1 < -m) | (y0 > h + m))


def _scaled(surface: WorldSurface, points: np.ndarray) -> np.ndarray:
    """World points to unrounded surface pixels: `(x - origin) * scaling`, as `pix` computes."""
    return (points - surface.origin) * surface.scaling


def _pixels(surface: WorldSurface, points: np.ndarray) -> np.ndarray | None:
    """`surface.vec2pix` of each point: int() truncates toward zero, as astype does."""
    px = _scaled(surface, points)
    if not np.all(np.abs(px) < PIXEL_LIMIT):
        return None
    return px.astype(np.int64).reshape(-1, 2)
