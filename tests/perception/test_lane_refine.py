"""The marking check of the learned lanes (perception/lane_refine.py): a prediction that drifts
between two lanes is put back between its own markings, on drawn and on rendered frames; one
within the dead band, or on a frame without markings, is left as it is."""

from __future__ import annotations

import numpy as np
import pytest

from steerbench.agents.expert import ExpertAgent
from steerbench.perception.lane_refine import MarkingRefineOptions, refine_lanes
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lane_labels import LANE_S, LaneLabeller
from steerbench.sim.runner import EpisodeRunner
from steerbench.sim.types import EpisodeInfo

S = np.asarray(LANE_S, np.float64)
K10, K20 = int(np.argmin(abs(S - 10))), int(np.argmin(abs(S - 20)))
GEOMETRY = FrameGeometry()  # 128 x 64, 1.75 px/m, the ego's pixel (38, 32)


def road_frame() -> np.ndarray:
    """Three straight 4 m lanes, the ego's centred on it: 1 px markings on rows 21, 28, 35 and 42
    (pixel centres 3.5 px = 2 m either side of each lane's centre), grey road with noise."""
    frame = np.random.default_rng(0).normal(100, 4, (64, 128)).clip(0, 255).astype(np.uint8)
    for row in (21, 28, 35, 42):
        frame[row, :] = 240
    frame[28, (np.arange(128) // 6) % 2 == 1] = 100  # the ego's left marking dashed
    return frame


def lanes(y_of_s) -> np.ndarray:
    """(3, K, 2) lanes 4 m apart whose ego lane lies at y_of_s(s) [m]."""
    return np.stack([np.stack([S, y_of_s(S) + d], axis=1) for d in (-4.0, 0.0, 4.0)])


def drifting(s: np.ndarray) -> np.ndarray:
    return 0.1 * np.clip(s, 0, None)  # on the ego at the ego, 1 m off at 10 m, 2 m (half a lane) at 20 m


def test_a_lane_drifting_between_two_lanes_is_put_back_between_its_markings():
    got, moved = refine_lanes(road_frame(), lanes(drifting), S, 4.0, GEOMETRY)
    assert moved
    assert abs(got[1, K10, 1]) < 0.3 and abs(got[1, K20, 1]) < 0.3
    np.testing.assert_allclose(got[2, :, 1] - got[1, :, 1], 4.0, atol=0.05)  # the neighbours move with it
    assert np.all(np.abs(got[1, S <= 0, 1]) < 0.3)


@pytest.mark.parametrize("y_of_s", [lambda s: 0.0 * s, lambda s: 0.4 + 0.0 * s], ids=["on the lane", "0.4 m off"])
def test_a_prediction_within_the_dead_band_is_left_alone(y_of_s):
    predicted = lanes(y_of_s)
    got, moved = refine_lanes(road_frame(), predicted, S, 4.0, GEOMETRY)
    assert not moved and got is predicted


def test_without_markings_nothing_moves():
    blank = np.full((64, 128), 100, np.uint8)
    predicted = lanes(drifting)
    got, moved = refine_lanes(blank, predicted, S, 4.0, GEOMETRY)
    assert not moved and got is predicted


def test_a_prediction_without_an_ego_lane_abreast_is_left_alone():
    predicted = lanes(drifting)
    predicted[1, np.abs(S) < 1e-9] = np.nan
    assert refine_lanes(road_frame(), predicted, S, 4.0, GEOMETRY) == (predicted, False)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="marking check"):
        MarkingRefineOptions(spacing=(1.2, 1.4))


def rendered(env, steps: int) -> tuple[np.ndarray, np.ndarray, FrameGeometry]:
    """The newest grey frame after the expert drove `steps` steps, the map's lanes then, the geometry."""
    obs, _ = env.reset(seed=3)
    expert = ExpertAgent()
    expert.reset(EpisodeInfo("", env.split, 3, 0, 5, "steering", env.command, camera=env.camera_config))
    for _ in range(steps):
        obs, *_ = env.step(expert.act(EpisodeRunner._observation(env, obs, "privileged")))
    cam = env.camera_config
    labels = LaneLabeller()(env.road_prior())
    return (np.asarray(obs["frames"][-1]), labels["lane_centres"].astype(np.float64),
            FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering))


@pytest.mark.parametrize("scenario, split, steps", [("racetrack", "test", 30), ("highway", "test", 10)])
def test_on_rendered_frames_the_check_finds_the_maps_lane(envs, scenario, split, steps):
    frame, truth, geometry = rendered(envs(scenario, split, fast=True), steps)
    assert np.isfinite(truth[1, [K10, K20]]).all()
    off = truth.copy()
    off[..., 1] += 1.5 * np.clip(S, 0, 20) / 20  # the ego lane 0.75 m off 10 m ahead, 1.5 m at 20 m
    got, moved = refine_lanes(frame, off, S, 4.0, geometry)
    # A marking's place is good to half a pixel (0.29 m); the racetrack's solid curves are drawn as chords.
    assert moved and np.abs(got[1, [K10, K20], 1] - truth[1, [K10, K20], 1]).max() < 0.45
    assert refine_lanes(frame, truth, S, 4.0, geometry)[1] is False  # the map's own lanes: left alone
