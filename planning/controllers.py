"""Steering controllers that follow a path: pure pursuit and Stanley.

Both return a normalised steering command in [-1, 1] for highway-env's kinematic bicycle, whose
reference point is the vehicle's centre: a steering angle delta gives a slip angle
beta = atan(tan(delta) / 2) and a path curvature 2 sin(beta) / L. The path is a polyline in the
same frame as the ego's pose (world or ego frame, the controller does not care).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steerbench.sim.types import VehicleState

STEERING_RANGE = np.pi / 4  # [rad] steering that the normalised command 1.0 maps to


def steering_for_curvature(curvature: float, length: float) -> float:
    """Normalised steering that makes the kinematic bicycle drive at `curvature` [1/m]."""
    beta = np.arcsin(np.clip(curvature * length / 2, -1.0, 1.0))
    return float(np.clip(np.arctan(2 * np.tan(beta)) / STEERING_RANGE, -1.0, 1.0))


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _closest(path: np.ndarray, point: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Index of the path segment nearest to `point`, the point's signed cross-track error
    (positive: the point is on the +y side, the right, of the path) and the segment's tangent."""
    a, b = path[:-1], path[1:]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
    proj = a + t[:, None] * ab
    i = int(np.argmin(np.linalg.norm(proj - point, axis=1)))
    tangent = ab[i] / max(np.linalg.norm(ab[i]), 1e-12)
    d = point - proj[i]
    cross = tangent[0] * d[1] - tangent[1] * d[0]  # > 0: the point lies to the right (+y side)
    return i, float(cross), tangent


@dataclass(frozen=True)
class PurePursuitParams:
    lookahead_s: float = 0.8  # [s] look-ahead time: the distance grows with speed
    min_lookahead_m: float = 4.0  # [m]
    wheelbase_m: float = 5.0  # [m] vehicle length of the bicycle model


class PurePursuit:
    """Steer onto the circle through the look-ahead point (Coulter, 1992)."""

    def __init__(self, params: PurePursuitParams = PurePursuitParams()) -> None:
        self.p = params

    def steer(self, path: np.ndarray, ego: VehicleState) -> float:
        lookahead = max(self.p.min_lookahead_m, self.p.lookahead_s * ego.speed)
        target = self._target(np.asarray(path, float), ego.position, lookahead)
        d = target - ego.position
        alpha = _wrap(np.arctan2(d[1], d[0]) - ego.heading)
        curvature = 2 * np.sin(alpha) / max(np.linalg.norm(d), 1e-6)
        return steering_for_curvature(curvature, self.p.wheelbase_m)

    @staticmethod
    def _target(path: np.ndarray, position: np.ndarray, lookahead: float) -> np.ndarray:
        i, _, _ = _closest(path, position)
        for p in path[i + 1:]:
            if np.linalg.norm(p - position) >= lookahead:
                return p
        return path[-1]


@dataclass(frozen=True)
class StanleyParams:
    gain: float = 1.0  # [1/s] cross-track gain k in atan(k e / v)
    softening_mps: float = 1.0  # [m/s] keeps the correction finite at low speed
    wheelbase_m: float = 5.0  # [m] the front axle is half of it ahead of the centre


class Stanley:
    """Heading error plus atan(k e / v) of the front axle's cross-track error (Thrun et al., 2006)."""

    def __init__(self, params: StanleyParams = StanleyParams()) -> None:
        self.p = params

    def steer(self, path: np.ndarray, ego: VehicleState) -> float:
        front = ego.position + self.p.wheelbase_m / 2 * np.array([np.cos(ego.heading), np.sin(ego.heading)])
        _, cross, tangent = _closest(np.asarray(path, float), front)
        heading_error = _wrap(np.arctan2(tangent[1], tangent[0]) - ego.heading)
        delta = heading_error + np.arctan2(-self.p.gain * cross, ego.speed + self.p.softening_mps)
        return float(np.clip(delta / STEERING_RANGE, -1.0, 1.0))
