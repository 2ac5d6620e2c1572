"""The modular agent drives closed loop with each detector and controller option."""

import cv2
import numpy as np
import pytest

from steerbench.agents.modular import ModularAgent, ModularOptions, _truth_tracks
from steerbench.agents.reference import IdleAgent
from steerbench.agents.registry import AgentSpec
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.scenarios import episode_seed


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner()
    yield r
    r.close()


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
        agent.act(EpisodeRunner._observation(env, obs, "pixels"))


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


def start(runner, scenario: str, index: int):
    """An environment at the start of a train episode and a ground-truth-detection agent reset for it."""
    env = runner.env(scenario, "train", EnvSettings())
    obs, _ = env.reset(seed=episode_seed("train", index))
    agent = ModularAgent(ModularOptions(detector="ground_truth"))
    agent.reset(episode_info(env, EpisodeTask("m", ModularAgent, "privileged", scenario, "train", index, 0)))
    return env, obs, agent


def test_kalman_tracks_match_the_oracle_tracks(runner):
    """Fed true detections, the Kalman tracker's velocities converge to the true ones."""
    env, obs, kalman = start(runner, "highway", 2)
    errors = []
    for step in range(40):
        o = EpisodeRunner._observation(env, obs, "privileged")
        motion = kalman._ego_motion(o)
        tracks = kalman._track(o, kalman._detect(o), motion)
        truth = _truth_tracks(o.truth)
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
    env, obs, agent = start(runner, "racetrack", 0)
    diffs = []
    for _ in range(30):
        o = EpisodeRunner._observation(env, obs, "privileged")
        action = agent.act(o)
        obs, *_ = env.step(action)
        after = EpisodeRunner._observation(env, obs, "privileged")
        pose = agent._ego_motion(after)
        agent.last_pose = o.road.ego  # undo: act() will see this step again
        blind = agent._ego_motion(EpisodeRunner._observation(env, obs, "pixels"))
        diffs.append((abs(pose.distance_m - blind.distance_m), abs(pose.dheading - blind.dheading)))
    d = np.array(diffs)
    assert d[:, 0].max() < 0.3 and d[:, 1].max() < 0.02, d.max(axis=0)


def test_stage_latency_reaches_results_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from steerbench.harness.evaluate import EvalConfig, run_eval

    out = run_eval(EvalConfig(agents=(AgentSpec("modular", "steerbench.agents.modular:ModularAgent"),),
                              scenarios=("merge",), episodes=1, logdir=tmp_path, progress=False))
    stats = out.rows[0]["agent_stats"]
    for stage in ("detect", "track", "plan", "control"):
        # (a mean may exceed the p95 when one step is slow: only positivity is guaranteed)
        assert stats[f"time/{stage}_ms_mean"] > 0 and stats[f"time/{stage}_ms_p95"] > 0
    assert stats["perception/detections_per_step"] > 0
    acc = EventAccumulator(str(tmp_path / "tb" / "modular"))
    acc.Reload()
    assert "time/merge/train/plan_ms_p95" in acc.Tags()["scalars"]
    # The overlay strip: the plan is drawn in red over the (grey) camera frames.
    assert "media/merge-overlay/train" in acc.Tags()["images"]
    strip = cv2.imread(str(tmp_path / "media" / "modular" / f"merge-overlay_train_{out.rows[0]['index']}.png"))[..., ::-1]
    red = (strip[..., 0] > 200) & (strip[..., 1] < 40) & (strip[..., 2] < 40)
    assert strip.shape[0] == 4 * 64 and red.sum() > 100


def test_full_mode_brakes_for_a_car_ahead_on_a_curved_plan():
    from steerbench.perception.tracker import Track
    from steerbench.planning.planner import Lane, TrajectoryPlanner

    x = np.arange(-5.0, 120.0, 1.0)
    curve = Lane(0, np.stack([x, x**2 / (2 * 60.0)], axis=1))  # a 60 m radius bend to the right
    plan = TrajectoryPlanner().plan([curve], [], 20.0, 20.0)
    p = curve.centre[np.searchsorted(x, 40.0)]  # 40 m along, 13 m to the side in the ego frame
    stopped = Track(0, p, np.zeros(2), 5.0, 2.0, 0.0, 5, 0, True)
    aside = Track(1, p + [0.0, 6.0], np.zeros(2), 5.0, 2.0, 0.0, 5, 0, True)
    assert ModularAgent._accel(20.0, 20.0, plan, [stopped]) < -0.5
    assert ModularAgent._accel(20.0, 20.0, plan, [aside]) >= 0.0
