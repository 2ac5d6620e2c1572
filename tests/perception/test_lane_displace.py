"""The lane model's viewpoint augmentation (perception/lane_displace.py): displaced labels are the
map's labels of the displaced ego, and the displacer moves frames and labels together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerbench.agents.expert import ExpertAgent
from steerbench.perception.lane_displace import LaneDisplacer, displace_labels
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lane_labels import LANE_S, LaneLabeller
from steerbench.sim.camera import to_gray
from steerbench.sim.runner import EpisodeRunner
from steerbench.sim.types import EpisodeInfo
from steerbench.sim.viewwarp import Displacement, WarpGeometry, warp_frames


def labels_at(env, shift: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """The map's lane centres (3, K, 2) for the ego moved `shift` m to its right and turned `yaw`
    rad towards its right (put back afterwards)."""
    ego = env.core.vehicle
    pos, heading = ego.position.copy(), ego.heading
    try:
        ego.position = pos + shift * np.array([-np.sin(heading), np.cos(heading)])
        ego.heading = heading + yaw
        return LaneLabeller()(env.road_prior())["lane_centres"].astype(np.float64)
    finally:
        ego.position, ego.heading = pos, heading


def drive_to(env, steps: int) -> None:
    """The expert drives `steps` steps of an episode (so the ego is where a dataset's frames are)."""
    obs, _ = env.reset(seed=1)
    expert = ExpertAgent()
    expert.reset(EpisodeInfo("", "train", 1, 0, 5, "steering", env.command, camera=env.camera_config))
    for _ in range(steps):
        obs, *_ = env.step(expert.act(EpisodeRunner._observation(env, obs, "privileged")))


@pytest.mark.parametrize("scenario, steps", [("highway", 8), ("merge", 30), ("roundabout", 25), ("intersection", 20),
                                             ("intersection", 45), ("racetrack", 40)])
@pytest.mark.parametrize("shift, yaw_deg", [(1.5, 0.0), (-1.0, 6.0), (0.5, -10.0)])
def test_displaced_labels_are_the_maps_labels_of_the_displaced_ego(envs, scenario, steps, shift, yaw_deg):
    env = envs(scenario, fast=True)
    drive_to(env, steps)
    yaw = np.radians(yaw_deg)
    original, truth = labels_at(env), labels_at(env, shift, yaw)
    got = displace_labels(torch.from_numpy(original)[None], torch.from_numpy(LANE_S.astype(np.float64)),
                          torch.tensor([shift]), torch.tensor([yaw]))[0].numpy()
    both = np.isfinite(got[..., 0]) & np.isfinite(truth[..., 0])
    # The resampling is linear between samples 2.5 m apart: a chord of the racetrack's 15 m curve
    # is 5 cm off the arc; where segments join (the roundabout's ring joins its roads up to 5 m
    # apart) samples are farther apart, and the error reaches 0.18 m there (measured: 0.11 m at
    # most within 20 m ahead). Without the displacement the labels are metres off.
    assert both[1].sum() >= 0.8 * np.isfinite(truth[1, :, 0]).sum()
    err = np.abs(got - truth)[both]
    near = both & (np.abs(LANE_S) <= 20)[None, :]
    assert np.abs(got - truth)[near].max() < 0.15 and np.quantile(err, 0.9) < 0.08 and err.max() < 0.25
    untouched = np.isfinite(original[..., 0]) & np.isfinite(truth[..., 0])
    assert np.abs(original - truth)[untouched].max() > 0.5
    # Only a sample beyond the labelled range (or next to a lane's end) may be lost.
    assert np.isfinite(truth[..., 0]).sum() - both.sum() <= 3


def test_no_displacement_leaves_the_labels_as_they_are():
    s = torch.from_numpy(LANE_S.astype(np.float64))
    lanes = torch.stack([torch.stack([s, torch.full_like(s, y)], -1) for y in (-4.0, 0.3, 4.0)])
    lanes[2, -4:] = float("nan")  # a neighbour that ends
    out = displace_labels(lanes[None], s, torch.zeros(1), torch.zeros(1))[0]
    assert torch.allclose(out, lanes, equal_nan=True, atol=1e-9)


def test_a_shift_moves_the_lanes_the_other_way_and_the_frame_with_them(envs):
    env = envs("highway", fast=True)
    drive_to(env, 8)
    frame = torch.from_numpy(to_gray(env.camera.render(env.core.vehicle)[0]))
    cam = env.camera_config
    geometry = FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering)
    labels = torch.from_numpy(labels_at(env)).float()
    displacer = LaneDisplacer.for_frames((geometry,), LANE_S, share=1.0, displacement=Displacement(1.5, 0.0, 1.0))
    gen = torch.Generator().manual_seed(3)
    frames, centres = displacer(frame[None].clone(), labels[None].clone(), np.zeros(1, np.int64), gen)
    gen = torch.Generator().manual_seed(3)
    from steerbench.sim.viewwarp import sample_displacements

    shift, yaw = sample_displacements(1, displacer.displacement, gen)
    assert shift.abs().item() > 0 and yaw.item() == 0
    expected = warp_frames(frame[None, None], shift, yaw, WarpGeometry.from_camera(cam))[0, 0]
    assert torch.equal(frames[0], expected)
    finite = torch.isfinite(labels[..., 1]) & torch.isfinite(centres[0, ..., 1])
    assert torch.allclose(centres[0, ..., 1][finite], labels[..., 1][finite] - shift.float(), atol=1e-3)


def test_the_displacer_keeps_undisplaced_samples_bit_for_bit():
    geometry = FrameGeometry()
    displacer = LaneDisplacer.for_frames((geometry, FrameGeometry(centering=(0.5, 0.5))), LANE_S, share=0.5)
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (16, 64, 128), generator=gen, dtype=torch.uint8)
    labels = torch.randn(16, 3, len(LANE_S), 2, generator=gen)
    scenario = np.arange(16) % 2
    out_f, out_c = displacer(frames, labels, scenario, torch.Generator().manual_seed(1))
    same = (out_f == frames).flatten(1).all(1) & (out_c == labels).flatten(1).all(1)  # NaN only where moved
    assert 3 <= int(same.sum()) <= 13  # about half displaced, the rest untouched
    again = displacer(frames, labels, scenario, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], out_f)
    torch.testing.assert_close(again[1], out_c, rtol=0, atol=0, equal_nan=True)


class UnderTheEgo(torch.nn.Module):
    """A lane 'model' that always puts the ego's lane under the ego, straight ahead: right on every
    frame of an ego at its lane's centre, wrong by the offset on every other."""

    def __init__(self, s: np.ndarray) -> None:
        super().__init__()
        self.config = type("Config", (), {"s": tuple(float(v) for v in s)})()

    def forward(self, frames, ego_px, scaling, command=None, turned=None):
        b, k = len(frames), len(self.config.s)
        y = torch.tensor([-4.0, 0.0, 4.0]).view(1, 3, 1).expand(b, 3, k)
        return {"dx": torch.zeros(b, 3, k), "y": y, "exists": torch.full((b, 3, k), 5.0),
                "valid": torch.full((b, 3), 5.0), "width": torch.full((b, 3), 4.0)}


def test_the_off_centre_error_catches_a_model_that_puts_the_lane_under_the_ego():
    from steerbench.perception.lane_data import LaneFrameSet
    from steerbench.perception.lane_displace import displaced_quality
    from steerbench.perception.lane_train import evaluate_lanes

    n, s = 6, LANE_S
    lanes = np.stack([np.stack([s, np.full_like(s, y)], -1) for y in (-4.0, 0.0, 4.0)]).astype(np.float32)
    data = LaneFrameSet("train-dev", np.full((n, 64, 128), 99, np.uint8), np.arange(n) % 2, ("highway", "racetrack"),
                        (FrameGeometry(), FrameGeometry(centering=(0.5, 0.5))), s, np.repeat(lanes[None], n, 0),
                        np.ones((n, 3), bool), np.full((n, 3), 4.0, np.float32), np.zeros(n, np.int64))
    net = UnderTheEgo(s)
    centred, _ = evaluate_lanes(net, data, 1.75)
    assert centred["lateral_10m"]["median"] == 0.0  # the ego drives on its lane's centre: no error
    off = displaced_quality(net, data, 1.75, shift_m=1.5)
    assert off["lateral_10m"]["n"] == 2 * n and off["lateral_10m"]["median"] == pytest.approx(1.5, abs=1e-5)
    assert set(off["by_scenario"]) == {"highway", "racetrack"}


def test_a_viewpoint_share_outside_0_1_is_a_one_line_error():
    from steerbench.perception.lane_model import LaneModelError
    from steerbench.perception.lane_train import LaneTrainConfig

    with pytest.raises(LaneModelError, match="viewpoint is a share"):
        LaneTrainConfig(data="data", logdir="run", viewpoint=1.5)
    with pytest.raises(LaneModelError, match="viewpoint_rotate is in"):
        LaneTrainConfig(data="data", logdir="run", viewpoint=0.5, viewpoint_rotate=90.0)
