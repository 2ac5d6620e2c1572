"""The top-down camera: frames centred on the ego and rotated with it, and the exact
world <-> pixel projection of what it draws.

The renderer draws a world-aligned canvas around the ego (highway-env's `EnvViewer`); the camera
rotates it so that the ego always faces +u (right) and crops the configured window. Boxes are
projected the way the renderer rounds them (integer positions, body offsets in whole pixels,
headings under 2 degrees drawn as 0): the plain formula misses the drawn blob by half a car at
small scales (IoU 0.47 at 128x64 in our measurements).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# SDL's "dummy" driver draws nothing: every frame comes back black, with no error.
if os.environ.get("SDL_VIDEODRIVER", "dummy") == "dummy":
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# SDL turns SIGTERM and SIGINT into quit events by default: a worker process that has rendered
# would then ignore `Pool.terminate()` and hang its parent for ever.
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from highway_env.envs.common.graphics import EnvViewer  # noqa: E402
from highway_env.road.graphics import WorldSurface  # noqa: E402

from .fastroad import only_lanes_near  # noqa: E402
from .types import CameraConfig  # noqa: E402

GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])
EGO_COLOR = (50, 200, 0)  # distinct from traffic (stock ego and traffic differ by one grey level)


class BlankFrameError(RuntimeError):
    """The renderer produced a uniform image (a headless SDL set-up that draws nothing)."""


@dataclass(frozen=True)
class Pose:
    """The camera's pose for one frame: ego position and heading in the world."""

    x: float
    y: float
    heading: float


class Camera:
    def __init__(self, env, config: CameraConfig) -> None:
        self.config = config
        c = config
        reach_u = max(c.centering[0], 1 - c.centering[0]) * c.width
        reach_v = max(c.centering[1], 1 - c.centering[1]) * c.height
        self.canvas = int(2 * np.ceil(np.hypot(reach_u, reach_v)) + 4)
        viewer_config = dict(env.config)
        viewer_config.update(
            {
                "offscreen_rendering": True,
                "screen_width": self.canvas,
                "screen_height": self.canvas,
                "scaling": c.scaling,
                "centering_position": [0.5, 0.5],
            }
        )
        self.viewer = EnvViewer(env, config=viewer_config)

    def close(self) -> None:
        self.viewer.close()

    # -- rendering -------------------------------------------------------------------------
    def render(self, ego) -> tuple[np.ndarray, Pose]:
        """One RGB frame (H, W, 3) uint8 and the pose it was taken from."""
        self.viewer.observer_vehicle = ego
        reach = self.canvas / self.config.scaling  # beyond the canvas' half-diagonal
        with only_lanes_near(ego.road.network, ego.position, reach):
            self.viewer.display()
        canvas = self.viewer.get_image()
        pose = Pose(float(ego.position[0]), float(ego.position[1]), float(ego.heading))
        # Nearest neighbour keeps every pixel a colour the renderer drew (crisp 9 x 3 px cars,
        # an ego colour that stays exact); on straight roads the warp is an integer shift.
        frame = cv2.warpAffine(
            canvas, self._affine(pose), (self.config.width, self.config.height),
            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE,
        )
        if int(frame.max()) == int(frame.min()):
            raise BlankFrameError(
                "the renderer drew a blank frame; with SDL_VIDEODRIVER=dummy pygame draws "
                "nothing: unset it or use SDL_VIDEODRIVER=offscreen"
            )
        return frame, pose

    def _canvas_origin(self, pose: Pose) -> np.ndarray:
        """World position of the canvas' top-left pixel, as the renderer computes it."""
        half = self.canvas / self.config.scaling / 2
        return np.array([pose.x - half, pose.y - half])

    def _affine(self, pose: Pose) -> np.ndarray:
        """2x3 matrix on pixel indices: canvas -> output (rotate about the ego, then shift)."""
        ego_px = np.full(2, self.canvas / 2)  # the viewer centres the canvas on the ego
        c, si = np.cos(pose.heading), np.sin(pose.heading)
        rot = np.array([[c, si], [-si, c]])  # world-aligned -> ego-aligned
        target = ego_pixel(self.config)
        return np.hstack([rot, (target - rot @ ego_px)[:, None]])

    def _canvas_to_output(self, canvas_px: np.ndarray, pose: Pose) -> np.ndarray:
        # Corner coordinates (pixel (i, j) covers [j, j+1) x [i, i+1)) are indices + 0.5.
        a = self._affine(pose)
        return (canvas_px - 0.5) @ a[:, :2].T + a[:, 2] + 0.5

    # -- projection ------------------------------------------------------------------------
    def world_to_pixel(self, points: np.ndarray, pose: Pose) -> np.ndarray:
        """(N, 2) world metres -> (N, 2) output pixels (u column, v row; pixel (i, j) covers
        [j, j+1) x [i, i+1)), no rounding."""
        canvas_px = self.config.scaling * (np.atleast_2d(points) - self._canvas_origin(pose))
        return self._canvas_to_output(canvas_px, pose)

    def pixel_to_world(self, pixels: np.ndarray, pose: Pose) -> np.ndarray:
        """Inverse of `world_to_pixel`."""
        a = self._affine(pose)
        canvas_px = (np.atleast_2d(pixels) - 0.5 - a[:, 2]) @ np.linalg.inv(a[:, :2]).T + 0.5
        return canvas_px / self.config.scaling + self._canvas_origin(pose)

    def vehicle_box(self, x: float, y: float, heading: float, length: float, width: float, pose: Pose) -> np.ndarray:
        """(4, 2) output-pixel corners of the body the renderer draws for a vehicle."""
        s = self.config.scaling

        def pix(m: float) -> int:
            return int(m * s)

        origin = self._canvas_origin(pose)
        center = np.array([pix(x - origin[0]), pix(y - origin[1])], dtype=float)
        full = length + 2.0  # the sprite includes 1 m of tyres at each end
        side = pix(full)
        body_u = pix(1.0) + pix(length) / 2 - side / 2
        body_v = pix(full / 2 - width / 2) + pix(width) / 2 - side / 2
        h = heading if abs(heading) > 2 * np.pi / 180 else 0.0
        c, si = np.cos(h), np.sin(h)
        rot = np.array([[c, -si], [si, c]])
        half = np.array([pix(length) / 2, pix(width) / 2])
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half + [body_u, body_v]
        return self._canvas_to_output(center + corners @ rot.T, pose)


def ego_pixel(config: CameraConfig) -> np.ndarray:
    """(u, v) output-pixel corner coordinates where the ego's position lands (u along its heading,
    v to its right): the configured centering, rounded to a pixel corner."""
    return np.round([config.centering[0] * config.width, config.centering[1] * config.height])


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return np.dot(rgb[..., :3], GRAY_WEIGHTS).clip(0, 255).astype(np.uint8)


BACKGROUND_RGB = tuple(WorldSurface.GREY)  # what the renderer fills the world with (road and verge alike)
BACKGROUND_GREY = int(to_gray(np.array(BACKGROUND_RGB)))  # 99 (the weights sum to 0.9999, truncated)
