"""The camera: ego at a fixed pixel in its own colour, and boxes that match what is drawn."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from steerbench.sim.camera import EGO_COLOR
from steerbench.sim.types import CameraConfig


def polygon_mask(box: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixels whose centre lies inside a convex polygon given in corner coordinates."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    area = 0.5 * sum(box[i, 0] * box[(i + 1) % 4, 1] - box[(i + 1) % 4, 0] * box[i, 1] for i in range(4))
    inside = np.ones((h, w), bool)
    for i in range(4):
        a, b = box[i], box[(i + 1) % 4]
        inside &= ((b[0] - a[0]) * (yy - a[1]) - (b[1] - a[1]) * (xx - a[0])) * np.sign(area) >= 0
    return inside


def drawn_ious(env, seeds, steps=4):
    """IoU of each visible car's projected box with the pixels its drawing changes."""
    cam = env.camera_config
    out = []
    for seed in seeds:
        env.reset(seed=seed)
        for _ in range(steps):
            env.step(np.array([0.0, 0.02]))
        ego = env.core.vehicle
        full, pose = env.camera.render(ego)
        for v in list(env.core.road.vehicles):
            box = env.camera.vehicle_box(*v.position, v.heading, v.LENGTH, v.WIDTH, pose)
            if v is ego or box.min() < 0 or box[:, 0].max() >= cam.width or box[:, 1].max() >= cam.height:
                continue
            env.core.road.vehicles.remove(v)
            without, _ = env.camera.render(ego)
            env.core.road.vehicles.append(v)
            drawn = np.any(full != without, axis=2)
            mask = polygon_mask(box, cam.height, cam.width)
            out.append((drawn & mask).sum() / (drawn | mask).sum())
    return np.array(out)


def test_boxes_match_drawn_cars_on_straight_roads(envs):
    ious = drawn_ious(envs("highway"), seeds=range(4))
    assert len(ious) >= 5
    assert np.median(ious) >= 0.85  # 8 x 3 px cars: one pixel of rounding costs ~0.2
    big = drawn_ious(envs("highway", camera=CameraConfig(width=256, height=128, scaling=4.0)), seeds=range(2))
    assert np.median(big) >= 0.95


def test_boxes_match_drawn_cars_when_the_view_rotates(envs):
    env = envs("roundabout", camera=CameraConfig(width=256, height=128, scaling=4.0))
    ious = drawn_ious(env, seeds=range(6), steps=20)
    assert len(ious) >= 3
    assert np.median(ious) >= 0.8  # nearest-neighbour rotation aliases the edges


@pytest.mark.parametrize("scenario", ["highway", "roundabout"])
def test_ego_sits_at_its_pixel_in_its_colour(envs, scenario):
    env = envs(scenario)
    env.reset(seed=5)
    for _ in range(10):
        env.step(np.array([0.0, 0.1]))
    ego = env.core.vehicle
    rgb = env.render()
    box = env.camera.vehicle_box(*ego.position, ego.heading, ego.LENGTH, ego.WIDTH, env.pose)
    u, v = box.mean(axis=0)
    c = env.camera_config
    assert abs(u - c.centering[0] * c.width) < 2 and abs(v - c.centering[1] * c.height) < 2
    ys, xs = np.nonzero(np.all(rgb == EGO_COLOR, axis=2))
    assert len(xs) >= 4
    assert abs(xs.mean() + 0.5 - u) < 2 and abs(ys.mean() + 0.5 - v) < 2


def test_projection_round_trips(envs):
    env = envs("racetrack")
    env.reset(seed=2)
    for _ in range(15):
        env.step(np.array([0.0, 0.2]))
    pts = np.random.default_rng(0).uniform(-40, 40, size=(50, 2)) + env.core.vehicle.position
    back = env.camera.pixel_to_world(env.camera.world_to_pixel(pts, env.pose), env.pose)
    assert np.allclose(back, pts, atol=1e-9)
    heading = env.core.vehicle.heading
    ahead = env.core.vehicle.position + 10 * np.array([np.cos(heading), np.sin(heading)])
    u, v = env.camera.world_to_pixel(ahead, env.pose)[0]
    ego_u, ego_v = env.camera.world_to_pixel(env.core.vehicle.position, env.pose)[0]
    assert u - ego_u == pytest.approx(10 * env.camera_config.scaling) and v == pytest.approx(ego_v)


def run_child(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter, with this process's environment changed by `env_changes`
    (None removes a variable): SDL reads its variables once, when the child first renders."""
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def child_result(done: subprocess.CompletedProcess) -> dict:
    """The JSON the child printed on its last `RESULT ` line; fails with its stderr if it crashed."""
    assert done.returncode == 0, f"child exited with {done.returncode}:\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"child printed no RESULT line; stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_dummy_sdl_driver_does_not_give_black_frames():
    code = (
        "import json; from steerbench.sim.env import SteerEnv; e = SteerEnv('merge'); o, _ = e.reset(seed=0); "
        "f = o['frames']; print('RESULT ' + json.dumps({'std': float(f.std()), 'min': int(f.min()), "
        "'max': int(f.max()), 'shape': list(f.shape)}))"
    )
    frames = child_result(run_child(code, SDL_VIDEODRIVER="dummy"))
    assert frames["std"] > 5, f"SDL_VIDEODRIVER=dummy gave blank frames: {frames}"


def test_a_process_that_rendered_still_dies_on_sigterm():
    # SDL's default signal handlers swallow SIGTERM: Pool.terminate() then hangs for ever. The
    # child must not inherit the variable that camera.py sets to prevent it: camera.py must set it.
    code = (
        "import os, signal; from steerbench.sim.env import SteerEnv; e = SteerEnv('merge'); "
        "e.reset(seed=0); os.kill(os.getpid(), signal.SIGTERM); import time; time.sleep(30)"
    )
    done = run_child(code, SDL_NO_SIGNAL_HANDLERS=None)
    assert done.returncode == -signal.SIGTERM, (
        f"a child that rendered was not killed by SIGTERM (exit code {done.returncode}, expected "
        f"{-signal.SIGTERM}; 0 means SDL swallowed the signal):\n{done.stderr[-3000:]}"
    )
