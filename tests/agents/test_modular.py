"""The modular agent drives closed loop with each detector and controller option."""

import pytest

from steerbench.agents.modular import ModularAgent, ModularOptions
from steerbench.agents.reference import IdleAgent
from steerbench.agents.registry import AgentSpec
from steerbench.sim.runner import EpisodeRunner, EpisodeTask
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


def test_refuses_to_run_without_the_map():
    agent = ModularAgent(ModularOptions())
    with pytest.raises(RuntimeError, match="needs the map"):
        agent.act(type("Obs", (), {"road": None})())


def test_stage_latency_reaches_results_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from steerbench.evaluate import EvalConfig, run_eval

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
