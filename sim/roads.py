"""Road layouts that stock highway-env lacks: a multi-lane highway with curves.

A straight highway lets a zero-steering agent drive as well as a lane keeper, so the suite's
highway alternates straights and arcs; the layout is drawn from the episode's seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from highway_env.road.lane import AbstractLane, CircularLane, LineType, StraightLane
from highway_env.road.road import RoadNetwork


@dataclass(frozen=True)
class Piece:
    """A stretch of road: straight when `angle` is 0, else an arc (positive angle turns right)."""

    length: float  # [m] along lane 0 (for arcs: radius * |angle|)
    angle: float = 0.0  # [rad]

    @property
    def radius(self) -> float:
        return self.length / abs(self.angle)


@dataclass(frozen=True)
class CurvyLayout:
    lanes: int = 3
    lane_width: float = 4.0  # [m]
    total_length: float = 1800.0  # [m]
    straight_range: tuple[float, float] = (80.0, 220.0)  # [m]
    radius_range: tuple[float, float] = (300.0, 700.0)  # [m] of lane 0
    angle_range_deg: tuple[float, float] = (12.0, 35.0)  # [deg] per arc
    speed_limit: float = 30.0  # [m/s]


def random_pieces(layout: CurvyLayout, rng: np.random.Generator) -> list[Piece]:
    """Straight, arc, straight, arc... with alternating turn direction, at least total_length."""
    pieces = [Piece(length=120.0)]  # a straight start, so every episode begins the same way
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    total = pieces[0].length
    while total < layout.total_length:
        radius = rng.uniform(*layout.radius_range)
        angle = np.radians(rng.uniform(*layout.angle_range_deg)) * sign
        arc = Piece(length=radius * abs(angle), angle=angle)
        straight = Piece(length=rng.uniform(*layout.straight_range))
        pieces += [arc, straight]
        total += arc.length + straight.length
        sign = -sign
    return pieces


def _line_types(i: int, lanes: int) -> list[int]:
    left = LineType.CONTINUOUS_LINE if i == 0 else LineType.STRIPED
    right = LineType.CONTINUOUS_LINE if i == lanes - 1 else LineType.NONE
    return [left, right]


def _lane(
    start: np.ndarray, heading: float, piece: Piece, offset: float, width: float, lines: list
) -> AbstractLane:
    """One lane of a piece, `offset` metres to the right of lane 0's centre line."""
    right = np.array([np.cos(heading + np.pi / 2), np.sin(heading + np.pi / 2)])
    p0 = start + offset * right
    if piece.angle == 0.0:
        direction = np.array([np.cos(heading), np.sin(heading)])
        return StraightLane(p0, p0 + piece.length * direction, width=width, line_types=lines)
    clockwise = piece.angle > 0  # turning towards +y, which is the driver's right
    radius0 = piece.radius
    if clockwise:
        center = start + radius0 * right
        radius = radius0 - offset
        phase = heading - np.pi / 2
        return CircularLane(center, radius, phase, phase + piece.angle, True, width, lines)
    center = start - radius0 * right
    radius = radius0 + offset
    phase = heading + np.pi / 2
    return CircularLane(center, radius, phase, phase + piece.angle, False, width, lines)


def curvy_highway(pieces: list[Piece], layout: CurvyLayout) -> RoadNetwork:
    """Nodes are "s0", "s1", ...; lane i of piece k is ("s{k}", "s{k+1}", i), lane 0 leftmost."""
    net = RoadNetwork()
    start, heading = np.zeros(2), 0.0
    for k, piece in enumerate(pieces):
        for i in range(layout.lanes):
            lane = _lane(
                start, heading, piece, i * layout.lane_width, layout.lane_width,
                _line_types(i, layout.lanes),
            )
            lane.speed_limit = layout.speed_limit
            net.add_lane(f"s{k}", f"s{k + 1}", lane)
        ref = net.get_lane((f"s{k}", f"s{k + 1}", 0))
        start = ref.position(ref.length, 0.0)
        heading = ref.heading_at(ref.length)
    return net
