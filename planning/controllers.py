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
    """Pure pursuit's look-ahead distance (speed x `lookahead_s`, at least `min_lookahead_m`) and the
    bicycle's length."""

    lookahead_s: float = 0.8  # [s] look-ahead time: the distance grows with speed
    min_lookahead_m: float = 5.0  # [m]
    wheelbase_m: float = 5.0  # [m] vehicle length of the bicycle model


class PurePursuit:
    """Steer the rear axle onto the circle through the look-ahead point (Coulter, 1992).

    highway-env's bicycle has its reference point at the centre, whose velocity points beta
    off the heading; the rear axle moves along the heading, so pure pursuit's geometry,
    delta = atan(2 L sin(alpha) / l_d), is exact there. Applied at the centre it over-steers
    by (l_d + L) / l_d, which oscillates on tight curves.
    """

    def __init__(self, params: PurePursuitParams = PurePursuitParams()) -> None:
        self.p = params

    def steer(self, path: np.ndarray, ego: VehicleState) -> float:
        """Normalised steering in [-1, 1] towards the look-ahead point of `path` ((N, 2), N >= 2, in the
        frame of `ego`'s pose); past the path's end, towards its last point."""
        L = self.p.wheelbase_m
        rear = ego.position - L / 2 * np.array([np.cos(ego.heading), np.sin(ego.heading)])
        lookahead = max(self.p.min_lookahead_m, self.p.lookahead_s * ego.speed)
        target = self._target(np.asarray(path, float), rear, lookahead)
        d = target - rear
        alpha = _wrap(np.arctan2(d[1], d[0]) - ego.heading)
        delta = np.arctan2(2 * L * np.sin(alpha), max(np.linalg.norm(d), 1e-6))
        return float(np.clip(delta / STEERING_RANGE, -1.0, 1.0))

    @staticmethod
    def _target(path: np.ndarray, position: np.ndarray, lookahead: float) -> np.ndarray:
        """The first path point `lookahead` away beyond the closest one (interpolated)."""
        i, _, _ = _closest(path, position)
        dist = np.linalg.norm(path[i + 1:] - position, axis=1)
        far = np.nonzero(dist >= lookahead)[0]
        if len(far) == 0:
            return path[-1]
        j = i + 1 + far[0]
        a, b = path[j - 1], path[j]
        da, db = np.linalg.norm(a - position), dist[far[0]]
        t = 0.0 if db - da < 1e-9 else float(np.clip((lookahead - da) / (db - da), 0.0, 1.0))
        return a + t * (b - a)


@dataclass(frozen=True)
class StanleyParams:
    """Stanley's cross-track gain and low-speed softening, and the bicycle's length."""

    gain: float = 1.0  # [1/s] cross-track gain k in atan(k e / v)
    softening_mps: float = 1.0  # [m/s] keeps the correction finite at low speed
    wheelbase_m: float = 5.0  # [m] the front axle is half of it ahead of the centre


class Stanley:
    """Heading error plus atan(k e / v) of the front axle's cross-track error (Thrun et al., 2006)."""

    def __init__(self, params: StanleyParams = StanleyParams()) -> None:
        self.p = params

    def steer(self, path: np.ndarray, ego: VehicleState) -> float:
        """Normalised steering in [-1, 1] for `path` ((N, 2), N >= 2, in the frame of `ego`'s pose)."""
        front = ego.position + self.p.wheelbase_m / 2 * np.array([np.cos(ego.heading), np.sin(ego.heading)])
        _, cross, tangent = _closest(np.asarray(path, float), front)
        heading_error = _wrap(np.arctan2(tangent[1], tangent[0]) - ego.heading)
        delta = heading_error + np.arctan2(-self.p.gain * cross, ego.speed + self.p.softening_mps)
        return float(np.clip(delta / STEERING_RANGE, -1.0, 1.0))
