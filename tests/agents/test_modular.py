"""The modular agent drives closed loop with each detector and controller option."""

import cv2
import numpy as np
import pytest

from steerbench.agents.modular import ModularAgent, ModularOptions
from steerbench.agents.reference import IdleAgent
from steerbench.agents.registry import AgentSpec
from steerbench.planning.planner import Lane, LaneView
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import EpisodeInfo, GroundTruth, Observation, VehicleState


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner()
    yield r
    r.close()


def observe(env, obs: dict, inputs: str) -> Observation:
    """What the runner hands an agent of `inputs` (the map prior and the truth only when they
    are part of its inputs)."""
    return Observation(frames=obs["frames"], speed=float(obs["speed"][0]), command=int(obs["command"]),
                       road=env.road_prior() if inputs in ("pixels+map", "privileged") else None,
                       truth=env.ground_truth() if inputs == "privileged" else None)


class MotionSpy:
    """Stands in for an agent's tracker: records the ego motion each step hands it."""

    def __init__(self, tracker) -> None:
        self.tracker, self.motions = tracker, []

    def update(self, obs, detections, motion):
        self.motions.append(motion)
        return self.tracker.update(obs, detections, motion)


@pytest.mark.parametrize("options, inputs", [
    ((), "pixels+map"),
    ((("detector", "ground_truth"),), "privileged"),
    ((("controller", "stanley"),), "pixels+map"),
])
def test_drives_the_highway_better_than_idle(runner, options, inputs):
    spec = AgentSpec("modular-" + "-".join(v for _, v in options), "steerbench.agents.modular:ModularAgent", options)
    assert spec().info.inputs == inputs
    task = EpisodeTask(spec.label, spec, inputs, "highway", "train", 0, episode_seed("train", 0))
    m = runner.run(task).metrics
    idle = runner.run(EpisodeTask("idle", IdleAgent, "pixels", "highway", "train", 0, episode_seed("train", 0))).metrics
    assert m["failure"] != "agent_error"
    assert m["route_completion"] > 0.4 and m["driving_score"] > idle["driving_score"] + 0.2


def test_map_lanes_refuse_to_run_without_the_map(runner):
    env = runner.env("highway", "train", EnvSettings())
    obs, _ = env.reset(seed=0)
    agent = ModularAgent(ModularOptions(detector="classical", lanes="map"))
    agent.reset(episode_info(env, EpisodeTask("m", ModularAgent, "pixels", "highway", "train", 0, 0)))
    with pytest.raises(RuntimeError, match="needs the map"):
        agent.act(observe(env, obs, "pixels"))


@pytest.mark.parametrize("options, inputs", [
    ({"lanes": "pixels"}, "pixels"),
    ({"lanes": "pixels", "tracker": "ground_truth"}, "privileged"),
    ({"lanes": "map"}, "pixels+map"),
])
def test_inputs_follow_the_oracles_and_the_map(options, inputs):
    assert ModularAgent(ModularOptions(**options)).info.inputs == inputs


def test_learned_detector_needs_a_checkpoint():
    with pytest.raises(ValueError, match="checkpoint"):
        ModularOptions(detector="learned")


def test_pixel_lanes_drive_the_highway_without_the_map(runner):
    spec = AgentSpec("pixels", "steerbench.agents.modular:ModularAgent", (("lanes", "pixels"),))
    task = EpisodeTask("pixels", spec, "pixels", "highway", "train", 1, episode_seed("train", 1))
    m = runner.run(task).metrics  # the runner hands a "pixels" agent no map: it must not need one
    assert m["failure"] != "agent_error"
    assert m["route_completion"] > 0.4 and m["mean_lateral_offset_m"] < 1.0


def start(runner, scenario: str, index: int, options: ModularOptions, inputs: str):
    """An environment at the start of a train episode and a modular agent reset for it."""
    env = runner.env(scenario, "train", EnvSettings())
    obs, _ = env.reset(seed=episode_seed("train", index))
    agent = ModularAgent(options)
    agent.reset(episode_info(env, EpisodeTask("m", ModularAgent, inputs, scenario, "train", index, 0)))
    return env, obs, agent


def test_kalman_tracks_match_the_oracle_tracks(runner):
    """Fed true detections, the Kalman tracker's velocities converge to the true ones."""
    env, obs, kalman = start(runner, "highway", 2, ModularOptions(detector="ground_truth"), "privileged")
    oracle = ModularAgent(ModularOptions(detector="ground_truth", tracker="ground_truth"))
    oracle.reset(episode_info(env, EpisodeTask("o", ModularAgent, "privileged", "highway", "train", 2, 0)))
    errors = []
    for step in range(40):
        o = observe(env, obs, "privileged")
        kalman.act(o)
        oracle.act(o)
        tracks, truth = kalman.snapshot.tracks, oracle.snapshot.tracks  # the confirmed tracks of this step
        if step >= 15:  # confirmed and settled
            for t in tracks:
                near = min(truth, key=lambda g: np.linalg.norm(g.position - t.position))
                if np.linalg.norm(near.position - t.position) < 1.0:
                    errors.append(np.linalg.norm(near.velocity - t.velocity))
        obs, *_ = env.step(np.zeros(2))
    assert len(errors) > 20
    assert np.median(errors) < 1.0, np.median(errors)


def test_dead_reckoning_follows_the_localised_pose(runner):
    """Without the map the agent integrates speed and its steering; it must agree with the pose."""
    env, obs, agent = start(runner, "racetrack", 0, ModularOptions(lanes="pixels"), "pixels")
    spy = agent.tracker = MotionSpy(agent.tracker)
    poses = []
    for _ in range(31):
        poses.append(env.road_prior().ego)  # the localised pose, which this agent is not given
        obs, *_ = env.step(agent.act(observe(env, obs, "pixels")))
    assert spy.motions[0] is None  # nothing to reckon from at the first step
    diffs = []
    for before, after, blind in zip(poses, poses[1:], spy.motions[1:]):
        distance = np.hypot(*(after.position - before.position))
        dheading = (after.heading - before.heading + np.pi) % (2 * np.pi) - np.pi
        diffs.append((abs(distance - blind.distance_m), abs(dheading - blind.dheading)))
    d = np.array(diffs)
    assert len(d) == 30 and d[:, 0].max() < 0.3 and d[:, 1].max() < 0.02, d.max(axis=0)


def test_stage_latency_reaches_results_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from steerbench.harness.evaluate import EvalConfig, run_eval

    out = run_eval(EvalConfig(agents=(AgentSpec("modular", "steerbench.agents.modular:ModularAgent"),),
                              scenarios=("merge",), episodes=1, logdir=tmp_path, progress=False))
    stats = out.rows[0]["agent_stats"]
    for stage in ("detect", "track", "lanes", "plan", "control"):
        # (a mean may exceed the p95 when one step is slow: only positivity is guaranteed)
        assert stats[f"time/{stage}_ms_mean"] > 0 and stats[f"time/{stage}_ms_p95"] > 0
    assert stats["perception/detections_per_step"] > 0
    acc = EventAccumulator(str(tmp_path / "tb" / "modular"))
    acc.Reload()
    assert "time/merge/train/plan_ms_p95" in acc.Tags()["scalars"]
    # The overlay strip: the plan is drawn in red over the (grey) camera frames.
    assert "media/merge-overlay/train" in acc.Tags()["images"]
    png = tmp_path / "media" / "modular" / f"merge-overlay_train_{out.rows[0]['index']}.png"
    strip = cv2.imread(str(png))[..., ::-1]
    red = (strip[..., 0] > 200) & (strip[..., 1] < 40) & (strip[..., 2] < 40)
    assert strip.shape[0] == 4 * 64 and red.sum() > 100


class CurvedRoad:
    """Stands in for the agent's map lanes: one lane, a 60 m radius bend to the right."""

    def __init__(self, lane: Lane, speed_limit: float) -> None:
        self.lane, self.speed_limit = lane, speed_limit

    def view(self, obs: Observation, motion, tracks) -> LaneView:
        return LaneView([self.lane], 0, self.speed_limit)


def test_full_mode_brakes_for_a_car_ahead_on_a_curved_plan():
    x = np.arange(-5.0, 120.0, 1.0)
    curve = Lane(0, np.stack([x, x**2 / (2 * 60.0)], axis=1))  # a 60 m radius bend to the right
    p = curve.centre[np.searchsorted(x, 40.0)]  # 40 m along, 13 m to the side in the ego frame

    def acceleration(car: np.ndarray) -> float:
        """The full-mode agent's acceleration at 20 m/s (the lane's limit) with a stopped car at `car`."""
        agent = ModularAgent(ModularOptions(detector="ground_truth", tracker="ground_truth"))
        agent.reset(EpisodeInfo("highway", "train", 0, 0, policy_hz=5, mode="full", command=0))
        agent.lanes = CurvedRoad(curve, speed_limit=20.0)
        ego = VehicleState(0.0, 0.0, 0.0, 20.0, 5.0, 2.0)
        stopped = VehicleState(float(car[0]), float(car[1]), 0.0, 0.0, 5.0, 2.0)
        truth = GroundTruth(time=0.0, ego=ego, others=(stopped,), network=None)
        return float(agent.act(Observation(np.zeros((4, 64, 128), np.uint8), 20.0, 0, truth=truth))[0])

    assert acceleration(p) < -0.5
    assert acceleration(p + [0.0, 6.0]) >= 0.0
