"""Viewpoint augmentation: the warp is the view from the displaced ego, the label steers it back."""

import dataclasses

import numpy as np
import pytest
import torch

from steerbench.agents.e2e_viewpoint import (
    Viewpoint,
    WarpGeometry,
    augment,
    corrected_steering,
    curvature_to_steering,
    steering_to_curvature,
    warp_frames,
)
from steerbench.agents.expert import ExpertAgent
from steerbench.sim.camera import BACKGROUND_GREY, to_gray
from steerbench.sim.types import EpisodeInfo, Observation

MARGIN = 10  # [px] border left out of the comparisons: the warp cannot know what it brings in


def within_one_pixel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest |a - b'| over b shifted by at most one pixel each way: the renderer
    rounds lines to whole pixels in its own (world-aligned, then rotated) canvas, so a sub-pixel
    displacement plus a rotation moves the staircase of a slanted line by one pixel here and there."""
    a, b = a.astype(int), b.astype(int)
    best = np.full(a.shape, 255)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            best = np.minimum(best, np.abs(a - np.roll(b, (di, dj), (0, 1))))
    return best


def displaced_render(env, shift: float, yaw: float) -> np.ndarray:
    """The grey frame the camera takes from the ego moved `shift` m to its right and turned `yaw`
    rad towards its right (the simulation does not move; the ego is put back)."""
    ego = env.core.vehicle
    pos, heading = ego.position.copy(), ego.heading
    try:
        ego.position = pos + shift * np.array([-np.sin(heading), np.cos(heading)])
        ego.heading = heading + yaw
        return to_gray(env.camera.render(ego)[0])
    finally:
        ego.position, ego.heading = pos, heading


def warp(frame: np.ndarray, shift: float, yaw: float, geometry: WarpGeometry) -> np.ndarray:
    out = warp_frames(torch.from_numpy(frame)[None, None], torch.tensor([shift]), torch.tensor([yaw]), geometry)
    return out[0, 0].numpy()


@pytest.mark.parametrize("scenario, steps", [("highway", 8), ("roundabout", 15), ("racetrack", 20)])
@pytest.mark.parametrize("shift, yaw_deg", [(4 / 1.75, 0.0), (-1.0, 0.0), (0.0, 5.0), (2.0, -4.0)])
def test_the_warp_is_the_view_from_the_displaced_ego(envs, scenario, steps, shift, yaw_deg):
    env = envs(scenario)
    env.reset(seed=1)
    for _ in range(steps):
        env.step(np.array([0.0, 0.0]))
    geometry = WarpGeometry.from_camera(env.camera_config)
    yaw = np.radians(yaw_deg)
    original = to_gray(env.camera.render(env.core.vehicle)[0])
    truth = displaced_render(env, shift, yaw)
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))

    def error(frame):
        return within_one_pixel(frame, truth)[inner].mean()

    warped, flipped = warp(original, shift, yaw, geometry), warp(original, -shift, -yaw, geometry)
    # Measured (grey levels, mean over the inner frame, one-pixel tolerance): warped 0.00-0.06,
    # untransformed 2.6-13, the opposite displacement 3.9-9.2.
    assert error(warped) <= 0.2, (error(warped), error(original))
    assert error(original) >= 2.0 and error(flipped) >= 2.0, (error(original), error(flipped))
    if scenario == "highway" and yaw == 0.0 and abs(shift * geometry.scaling - round(shift * geometry.scaling)) < 1e-9:
        # A whole-pixel shift of an axis-aligned view is exact, pixel for pixel (the ego included).
        assert np.array_equal(warped[inner], truth[inner])


def test_the_ego_stays_at_its_pixel_and_the_border_is_background(envs):
    env = envs("highway")
    env.reset(seed=1)
    geometry = WarpGeometry.from_camera(env.camera_config)
    frame = to_gray(env.camera.render(env.core.vehicle)[0])
    ego = geometry.ego_mask().numpy() & (frame != geometry.background)
    assert ego.sum() >= 20  # the 9 x 3 px sprite
    warped = warp(frame, 1.0, np.radians(5.0), geometry)
    assert np.array_equal(warped[ego], frame[ego])
    # The sprite is not dragged along by the warp: a copy of it would appear beside the ego.
    assert (warped[geometry.ego_mask().numpy() == 0] == frame[ego].max()).sum() == 0
    big = warp(frame, 10.0, 0.0, geometry)  # 17.5 px: the bottom rows come from outside the frame
    assert (big[-17:] == BACKGROUND_GREY).all() and BACKGROUND_GREY == geometry.background == 99


def test_one_warp_for_every_frame_of_a_sample():
    geometry = WarpGeometry(64, 128, 1.75, 38.0, 32.0)
    g = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (1, 1, 64, 128), generator=g, dtype=torch.uint8)
    stack = frame.expand(3, 4, 64, 128).clone()
    out = warp_frames(stack, torch.tensor([1.0, -0.5, 0.0]), torch.tensor([0.0, 0.05, -0.08]), geometry)
    for b in range(3):
        assert all(torch.equal(out[b, k], out[b, 0]) for k in range(4))
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1, 0], stack[1, 0])


# -- the label --------------------------------------------------------------------------------
def test_no_displacement_keeps_the_label():
    steering = torch.linspace(-1, 1, 41)
    for speed in (0.0, 8.0, 25.0):
        same = corrected_steering(steering, torch.full_like(steering, speed), torch.zeros(41), torch.zeros(41))
        assert torch.allclose(same, steering, atol=1e-6)
    assert torch.allclose(curvature_to_steering(steering_to_curvature(steering)), steering, atol=1e-6)


def test_the_label_steers_back_towards_the_path():
    steering = torch.tensor([-0.2, 0.0, 0.05, 0.3])
    speed = torch.full((4,), 20.0)
    zero = torch.zeros(4)

    def fix(shift, yaw):
        return corrected_steering(steering, speed, torch.full((4,), shift), torch.full((4,), yaw))

    # +shift / +yaw: the ego sits right of the path / points right of it; +steering turns right.
    assert (fix(0.5, 0.0) < steering).all() and (fix(-0.5, 0.0) > steering).all()
    assert (fix(0.0, 0.05) < steering).all() and (fix(0.0, -0.05) > steering).all()
    assert (fix(1.0, 0.0) < fix(0.5, 0.0)).all()  # further off, steer harder
    # Size, straight path at 20 m/s: the pursued point 40 m ahead, 1 m off: curvature 2 * 1 / 40^2.
    kappa = 2 * np.sin(np.arctan2(1.0, 40.0)) / np.hypot(1.0, 40.0)
    expected = float(curvature_to_steering(torch.tensor(kappa, dtype=torch.float64)))
    one = corrected_steering(torch.zeros(1), torch.tensor([20.0]), torch.tensor([-1.0]), torch.zeros(1))
    assert float(one) == pytest.approx(expected, rel=1e-6)
    wild = corrected_steering(torch.rand(1000) * 2 - 1, torch.rand(1000) * 30, torch.randn(1000) * 5, torch.randn(1000))
    assert wild.abs().max() <= 1.0 and torch.isfinite(wild).all()
    assert zero.dtype == fix(0.1, 0.0).dtype  # the label's dtype


def centre_pose(env):
    """The ego's lane-centre pose beside it and its displacement from there (right, yaw right)."""
    ego = env.ground_truth().ego
    lane = env.core.road.network.get_lane(ego.lane_index)
    s, lateral = lane.local_coordinates(ego.position)
    x, y = lane.position(s, 0.0)
    heading = lane.heading_at(s)
    yaw = (ego.heading - heading + np.pi) % (2 * np.pi) - np.pi
    return dataclasses.replace(ego, x=float(x), y=float(y), heading=float(heading)), float(lateral), float(yaw)


def one_label(label: float, speed: float, shift: float, yaw: float) -> float:
    return float(corrected_steering(*(torch.tensor([x]) for x in (label, speed, shift, yaw))))


def expert_steering(env, expert, ego):
    truth = dataclasses.replace(env.ground_truth(), ego=ego)
    return float(expert.act(Observation(np.zeros((1, 1, 1), np.uint8), ego.speed, env.command, truth=truth))[1])


def test_the_label_agrees_in_sign_with_the_expert_at_the_displaced_pose(envs):
    env = envs("highway")
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.array([0.0, 0.0]))
    expert = ExpertAgent(ExpertAgent.Options(follow_ego_lane=True))
    expert.reset(EpisodeInfo("highway", "train", 2, 0, 5, "steering", env.command))
    centre, _, _ = centre_pose(env)
    label = expert_steering(env, expert, centre)
    for shift, yaw in [(1.0, 0.0), (-1.0, 0.0), (0.0, 0.05), (0.0, -0.05)]:
        h = centre.heading
        x, y = centre.x - shift * np.sin(h), centre.y + shift * np.cos(h)
        displaced = dataclasses.replace(centre, x=x, y=y, heading=h + yaw)
        theirs = expert_steering(env, expert, displaced) - label
        ours = one_label(label, centre.speed, shift, yaw) - label
        # The expert recovers faster (its lateral time constant is 0.6 s, our horizon 2 s): same
        # sign, smaller size.
        assert np.sign(ours) == np.sign(theirs) != 0 and abs(ours) < abs(theirs), (shift, yaw, ours, theirs)


def test_driving_the_corrected_label_brings_the_ego_back(envs):
    """Closed loop in the simulator: put the ego 1 m right of its lane centre and turned 3 degrees
    right, then steer at each step the expert's label at the centre pose, corrected for the ego's
    displacement. The offset follows the linearised pure-pursuit loop (module docstring):
    y = exp(-t/T) (y0 cos(t/T) + (y0 + T y0') sin(t/T)), T = recover_s, y0' = v sin(yaw0)."""
    env = envs("highway")
    env.reset(seed=3)
    expert = ExpertAgent(ExpertAgent.Options(follow_ego_lane=True))
    expert.reset(EpisodeInfo("highway", "train", 3, 0, 5, "steering", env.command))
    ego = env.core.vehicle
    h = ego.heading
    ego.position = ego.position + 1.0 * np.array([-np.sin(h), np.cos(h)])
    ego.heading = h + np.radians(3.0)
    offsets, speeds = [], []
    for _ in range(25):  # 5 s at 5 Hz
        env._truth = None  # the ego was moved by hand: rebuild the cached ground truth
        centre, shift, yaw = centre_pose(env)
        offsets.append(shift)
        speeds.append(centre.speed)
        if len(offsets) == 1:
            yaw0 = yaw
        label = expert_steering(env, expert, centre)
        steer = one_label(label, centre.speed, shift, yaw)
        env.step(np.array([0.0, float(steer)]))
    offsets = np.array(offsets)
    T, t = Viewpoint().recover_s, np.arange(25) / 5
    model = np.exp(-t / T) * (np.cos(t / T) + (1 + T * np.mean(speeds) * np.sin(yaw0)) * np.sin(t / T))
    assert offsets[0] == pytest.approx(1.0, abs=1e-6) and yaw0 == pytest.approx(np.radians(3.0), abs=1e-3)
    # Measured: within 0.08 m of the model at every step; 1.48 m at most, 0.05 m after 5 s.
    assert np.abs(offsets - model).max() < 0.2, np.c_[offsets, model].round(2)
    assert abs(offsets[-1]) < 0.3 and np.abs(offsets).max() < 1.6


# -- the batch function -----------------------------------------------------------------------
def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 4, 64, 128), generator=g, dtype=torch.uint8)
    speed = torch.rand(n, generator=g) * 30
    steering = torch.rand(n, generator=g) * 0.6 - 0.3
    return frames, speed, steering


def test_augment_is_deterministic_and_keeps_dtype_and_shape():
    geometry = WarpGeometry(64, 128, 1.75, 38.0, 32.0)
    frames, speed, steering = batch()
    a = augment(frames, speed, steering, geometry, torch.Generator().manual_seed(7))
    b = augment(frames, speed, steering, geometry, torch.Generator().manual_seed(7))
    c = augment(frames, speed, steering, geometry, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert a[0].dtype == torch.uint8 and a[0].shape == frames.shape
    assert a[1].dtype == steering.dtype and a[1].shape == steering.shape
    moved = a[1] != steering
    assert 2 <= int(moved.sum()) <= 14  # prob 0.5 of 16
    for i in range(16):  # a sample keeps its label exactly when its frames are untouched
        assert torch.equal(a[0][i], frames[i]) == (not bool(moved[i]))


def test_prob_zero_is_the_identity():
    geometry = WarpGeometry(64, 128, 1.75, 38.0, 32.0)
    frames, speed, steering = batch()
    out, labels = augment(frames, speed, steering, geometry, torch.Generator().manual_seed(0), Viewpoint(prob=0.0))
    assert torch.equal(out, frames) and torch.equal(labels, steering)


def test_viewpoint_checks_its_options():
    with pytest.raises(ValueError):
        Viewpoint(prob=1.5)
    with pytest.raises(ValueError):
        Viewpoint(recover_s=0.0)
    with pytest.raises(ValueError):
        Viewpoint(shift_m=-1.0)
