"""`lanes=learned`: the lane model's per-frame lanes fused over time. The model is stood in for by
scripted predictions or by the map's own lane labels with noise, so that the filter, the lane
crossings, the oncoming lanes and the closed loop are tested apart from a network's quality."""

import numpy as np
import pytest
import torch

from steerbench.agents.modular import ModularAgent, ModularOptions
from steerbench.agents.modular_learned_lanes import LearnedLaneOptions, LearnedLaneSource
from steerbench.agents.stages import StageContext
from steerbench.cli import main
from steerbench.perception.lane_model import CHECKPOINT_FORMAT, LaneNet, LaneNetConfig, LanePrediction, network_command
from steerbench.perception.tracker import EgoMotion, Track
from steerbench.perception.training import save_checkpoint
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lane_labels import LANE_S, LaneLabeller
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import Observation

S = np.asarray(LANE_S, np.float64)
GEOMETRY = FrameGeometry()
FRAMES = np.zeros((4, 64, 128), np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained lane network's checkpoint: the stage loads it; the tests replace its predictions."""
    path = tmp_path_factory.mktemp("lanes") / "best.pt"
    torch.manual_seed(0)
    net = LaneNet(LaneNetConfig(s=tuple(float(v) for v in S), channels=(4, 4, 4, 4), squeeze=4, hidden=8))
    save_checkpoint(path, {"kind": "lanes", "format": CHECKPOINT_FORMAT, "config": net.config.as_dict(),
                           "frame": {"height": 64, "width": 128, "scaling": 1.75}, "model": net.state_dict(),
                           "epoch": 1})
    return str(path)


def straight(y: float) -> np.ndarray:
    """Samples of a straight lane `y` metres to the side, at the model's arc lengths."""
    return np.stack([S, np.full_like(S, y)], axis=1)


def prediction(lanes: dict[int, np.ndarray]) -> LanePrediction:
    centres = np.full((3, len(S), 2), np.nan)
    valid = np.zeros(3, bool)
    for slot, pts in lanes.items():
        centres[slot + 1], valid[slot + 1] = pts, True
    return LanePrediction(S, centres, valid, valid.astype(float), np.where(valid, 4.0, np.nan))


class Scripted:
    """Stands in for the lane model: the next prediction of a script each call."""

    def __init__(self, script):
        self.script, self.geometry, self.s = iter(script), GEOMETRY, S
        self.commands, self.seen, self.turns, self.odometry, self.names = 0, [], [], False, ()

    def command_for(self, names, command):
        return network_command(self.names, names, command)

    def predict(self, frames, command=None, turned=None):
        self.seen.append(command)
        self.turns.append(turned)
        return prediction(next(self.script))


def source(checkpoint, script, **options) -> LearnedLaneSource:
    stage = LearnedLaneSource(LearnedLaneOptions(checkpoint=checkpoint, **options))
    stage.reset(StageContext(GEOMETRY, 0.2, False))
    stage.model = Scripted(script)
    return stage


def view(stage, motion=None, tracks=()):
    return stage.view(Observation(FRAMES, 25.0, 0), motion, tracks)


def offsets(v) -> dict[int, float]:
    return {lane.offset: float(lane.centre[np.argmin(np.abs(lane.centre[:, 0])), 1]) for lane in v.lanes}


def test_the_filter_smooths_a_noisy_lane(checkpoint):
    rng = np.random.default_rng(0)
    noisy = [{0: straight(0.5 + e)} for e in rng.normal(0.0, 0.3, 200)]
    stage = source(checkpoint, noisy, gain=0.5)
    fused = np.array([offsets(view(stage, EgoMotion(5.0, 0.0)))[0] for _ in noisy])[20:]
    raw = np.array([pts[0][0, 1] for pts in noisy])[20:]
    assert abs(fused.mean() - 0.5) < 0.05
    assert fused.std() < 0.75 * raw.std(), (fused.std(), raw.std())  # sqrt(gain / (2 - gain)) = 0.58 in theory


def test_a_crossing_shifts_the_lanes_and_counts_the_lane_id(checkpoint):
    # Lanes 4 m apart; the ego drifts right from its lane's centre (lane at y < 0) into the next one.
    before = [{-1: straight(-4.0 - d), 0: straight(-d), 1: straight(4.0 - d)} for d in (0.0, 0.8, 1.6)]
    after = [{-1: straight(-1.6), 0: straight(2.4), 1: straight(6.4)}]  # crossed: the old right lane is the ego's
    stage = source(checkpoint, before + after, gain=1.0)
    ids = [view(stage).lane_id for _ in range(4)]
    assert ids == [0, 0, 0, 1]
    # Blending across the crossing would have averaged two lanes; shifted, the fused lanes are the measured ones.
    assert stage.fused[0][0, 1] == pytest.approx(2.4) and stage.fused[-1][0, 1] == pytest.approx(-1.6)
    assert stage.stats()["perception/lane_crossings"] == 1 and stage.stats()["perception/lanes_measured_share"] == 1


def test_a_command_conditioned_model_is_given_the_navigation_command(checkpoint):
    stage = source(checkpoint, [{0: straight(0.0)}] * 2)
    stage.view(Observation(FRAMES, 25.0, 2), None, ())
    stage.model.commands = 3
    stage.view(Observation(FRAMES, 25.0, 2), None, ())
    assert stage.model.seen == [None, 2]


def test_a_model_with_named_commands_is_given_the_commands_position_by_name(checkpoint):
    """The roundabout's exit 2 is its command 1; a network trained on the whole suite by name has it at 2."""
    roundabout = ("exit 1 (east)", "exit 2 (north)", "exit 3 (west)")
    stage = source(checkpoint, [{0: straight(0.0)}] * 3)
    stage.reset(StageContext(GEOMETRY, 0.2, False, roundabout))
    stage.model = Scripted([{0: straight(0.0)}] * 4)
    stage.model.commands, stage.model.names = 4, ("follow", *roundabout)
    for command in (1, 2, 5):
        stage.view(Observation(FRAMES, 25.0, command), None, ())
    assert stage.model.seen == [2, 3, -1]  # a command the scenario does not have: the heads' mean
    stage.model.names = ()  # a network trained by index is given the index
    stage.view(Observation(FRAMES, 25.0, 1), None, ())
    assert stage.model.seen[-1] == 1


def test_a_model_with_odometry_is_given_the_dead_reckoned_heading_since_the_start(checkpoint):
    stage = source(checkpoint, [{0: straight(0.0)}] * 5)
    stage.model.odometry = True
    for motion in (None, EgoMotion(5.0, 0.1), EgoMotion(5.0, -0.3), EgoMotion(5.0, 0.05)):
        view(stage, motion)
    assert stage.model.turns == pytest.approx([0.0, 0.1, -0.2, -0.15])
    stage.reset(StageContext(GEOMETRY, 0.2, False))
    view(stage, EgoMotion(5.0, 0.2))
    assert stage.model.turns[-1] == pytest.approx(0.2)  # a new episode counts from 0


def test_a_lane_unseen_for_longer_than_hold_is_dropped(checkpoint):
    script = [{0: straight(0.0), 1: straight(4.0)}] + [{}] * 10
    stage = source(checkpoint, script, hold_s=0.5)
    seen = [sorted(offsets(view(stage, EgoMotion(5.0, 0.0)))) for _ in script]
    assert seen[0] == [0, 1] and seen[1] == seen[2] == [0, 1]  # carried within 0.5 s (2 steps of 0.2 s)
    assert seen[-1] == [0]  # then only the straight lane ahead the planner always gets
    assert view_lane_is_straight(stage)


def view_lane_is_straight(stage) -> bool:
    stage.model = Scripted([{}])
    (lane,) = view(stage).lanes
    return lane.offset == 0 and np.allclose(lane.centre[:, 1], 0.0)


@pytest.mark.parametrize("refine", [False, True])
def test_the_marking_check_puts_a_drifting_lane_back_between_its_markings(checkpoint, refine):
    frames = np.full((4, 64, 128), 100, np.uint8)
    frames[:, (21, 28, 35, 42), :] = 240  # 4 m lanes, the ego's centred on it (tests/perception/test_lane_refine.py)
    drift = {0: np.stack([S, 0.1 * np.clip(S, 0, None)], axis=1)}  # 1 m off at 10 m, half a lane at 20 m
    stage = source(checkpoint, [drift], gain=1.0, refine=refine)
    (lane,) = stage.view(Observation(frames, 25.0, 0), None, ()).lanes
    y10 = np.interp(10.0, lane.centre[:, 0], lane.centre[:, 1])
    assert abs(y10) < 0.3 if refine else y10 == pytest.approx(1.0, abs=0.05)
    assert stage.stats()["perception/lanes_refined_share"] == float(refine)


def _track(y: float, vx: float) -> Track:
    return Track(0, np.array([20.0, y]), np.array([vx, 0.0]), 5.0, 2.0, 0.0, 3, 0, True)


@pytest.mark.parametrize("vx, offered", [(-20.0, False), (22.0, True), (0.0, True)])
def test_a_neighbour_lane_with_traffic_driving_against_it_is_not_offered(checkpoint, vx, offered):
    lanes = {0: straight(0.0), -1: straight(-4.0)}
    stage = source(checkpoint, [lanes] * 3, oncoming_hold_s=1.0)
    first = offsets(view(stage, tracks=[_track(-4.0, vx)]))
    assert (-1 in first) == offered
    later = offsets(view(stage, EgoMotion(5.0, 0.0)))  # the car has passed: still withheld for 1 s
    assert (-1 in later) == offered


def test_learned_lanes_without_a_checkpoint_or_with_a_bad_one_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    for opts, message in ((["m.lanes=learned"], "lanes=learned needs lanes.checkpoint=PATH"),
                          (["m.lanes=learned", f"m.lanes.checkpoint={bad}"], "not a readable"),
                          (["m.lanes=learned", f"m.lanes.checkpoint={tmp_path / 'none.pt'}"], "no lane-model")):
        args = ["eval", "--agent", "m=modular", *[a for o in opts for a in ("--agent-opt", o)], "--scenarios",
                "highway", "--episodes", "1", "--logdir", str(tmp_path / "run"), "--no-progress"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


class Labels:
    """Stands in for the lane model: the map's lane labels of the env's present state, with noise."""

    def __init__(self, env, noise_m: float, seed: int = 0):
        self.env, self.noise, self.rng = env, noise_m, np.random.default_rng(seed)
        self.labeller, self.s = None, S
        cam = env.camera_config
        self.geometry = FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering)
        self.commands, self.odometry = 0, False

    def predict(self, frames, command=None, turned=None):
        road = self.env.road_prior()
        if self.labeller is None or road.ego.lane_index is None:
            self.labeller = LaneLabeller()
        lab = self.labeller(road)
        centres = lab["lane_centres"].astype(np.float64)
        centres[..., 1] += self.rng.normal(0.0, self.noise, centres.shape[:2])
        valid = lab["lane_valid"]
        return LanePrediction(S, centres, valid, valid.astype(float), lab["lane_width"].astype(np.float64))


def test_learned_lanes_keep_a_curved_lane_closed_loop(checkpoint):
    """The racetrack's bends, the lanes seen with 0.3 m of noise per frame: the ego keeps its lane."""
    runner = EpisodeRunner()
    settings = EnvSettings(fast=True)
    env = runner.env("racetrack", "train", settings)

    def build():
        agent = ModularAgent(ModularOptions(detector="ground_truth", tracker="ground_truth", lanes="learned",
                                            stage_options=(("lanes.checkpoint", checkpoint),)))
        agent.lanes.model = Labels(env, 0.3)
        return agent

    try:
        task = EpisodeTask("m", build, "privileged", "racetrack", "train", 3, episode_seed("train", 3), settings)
        m = runner.run(task).metrics
    finally:
        runner.close()
    # (the untrained network itself leaves the road within 5 s)
    assert m["failure"] == "none" and m["steps"] >= 150, m
    assert m["mean_lateral_offset_m"] < 0.3 and m["route_completion"] > 0.9, m
