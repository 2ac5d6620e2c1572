"""The episode's reference (route length, reference speed, time limit) comes from its seed alone:
every agent on one episode is scored on one scale, however it drives."""

from __future__ import annotations

import pytest

from steerbench.agents.registry import AgentSpec, resolve
from steerbench.sim.env import SteerEnv
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed


def _run(runner: EpisodeRunner, agent: str, scenario: str, index: int):
    spec = AgentSpec(agent, resolve(agent))
    return runner.run(EpisodeTask(agent, spec, spec.load_class().info.inputs, scenario, "train", index,
                                  episode_seed("train", index), EnvSettings(fast=True)))


@pytest.mark.parametrize("scenario", ["highway", "merge"])
def test_two_agents_one_episode_one_reference(scenario):
    runner = EpisodeRunner()
    try:
        expert, idle = (_run(runner, a, scenario, 500_003) for a in ("expert", "idle"))
    finally:
        runner.close()
    assert idle.metrics["steps"] < expert.metrics["steps"]  # they drove differently (idle leaves the road)
    assert expert.reference == idle.reference
    ref = expert.reference
    assert ref["time_limit_s"] > 0 and ref["reference_speed_mps"] > 0 and ref["route_length_m"] > 0


def test_open_road_reference_is_the_traffic_pace_over_the_time_limit():
    env = SteerEnv("highway", "train")
    try:
        env.reset(seed=episode_seed("train", 500_000))
        ref = env.reference
        others = [v for v in env.core.road.vehicles if v is not env.core.vehicle]
        lo, hi = min(v.target_speed for v in others), max(v.target_speed for v in others)
        # below the 30 m/s cruise speed that the old reference used, within the traffic's speeds
        assert lo <= ref.reference_speed_mps <= min(hi, env.desired_speed()) < 30.0 + 1e-9
        assert ref.route_length_m == pytest.approx(ref.reference_speed_mps * ref.time_limit_s)
        assert ref.time_limit_s == pytest.approx(env.max_steps / env.policy_hz)
    finally:
        env.close()
