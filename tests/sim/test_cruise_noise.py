"""The shared cruise control treats a noisy steerer like a clean one (issue 13).

Every learned contestant steers with some jitter. The harness's throttle (sim/longitudinal.py)
must not turn that jitter into crashes: the expert with small zero-mean steering noise should
have no more front collisions than the clean expert, at about the same speed, on the same
held-out episodes. Before the path model read the road, sd 0.01 alone gave 3 front collisions
in 12 highway episodes, each within the first 5 s.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from steerbench.agents.expert import ExpertAgent
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import EpisodeInfo, Observation

pytestmark = pytest.mark.slow

SCENARIOS = ("highway", "merge")
INDICES = range(500000, 500010)  # train split, far above what the other tests and the study use
NOISE_SDS = (0.01, 0.02, 0.04)  # normalised steering units
SPEED_TOLERANCE = 1.0  # [m/s] on the mean speed over all the episodes


class NoisyExpert:
    """The expert with zero-mean Gaussian noise on its steering, seeded by the episode."""

    info = ExpertAgent.info

    def __init__(self, sd: float) -> None:
        self.sd = sd
        self.expert = ExpertAgent()
        self.rng = np.random.default_rng(0)

    def reset(self, episode: EpisodeInfo) -> None:
        self.expert.reset(episode)
        self.rng = np.random.default_rng(episode.seed)

    def act(self, obs: Observation) -> np.ndarray:
        action = np.array(self.expert.act(obs), dtype=np.float64)
        action[1] = float(np.clip(action[1] + self.rng.normal(0.0, self.sd), -1.0, 1.0))
        return action


def run_condition(runner: EpisodeRunner, sd: float) -> list[dict]:
    factory = partial(NoisyExpert, sd)
    tasks = [
        EpisodeTask(f"expert-noise-{sd:g}", factory, "privileged", scenario, "train", i,
                    episode_seed("train", i), env=EnvSettings(fast=True))
        for scenario in SCENARIOS for i in INDICES
    ]
    return [runner.run(t).metrics for t in tasks]


def summary(metrics: list[dict]) -> tuple[int, float]:
    fronts = sum(m["failure"] == "front_collision" for m in metrics)
    return fronts, float(np.mean([m["mean_speed_mps"] for m in metrics]))


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner()
    yield r
    r.close()


@pytest.fixture(scope="module")
def clean(runner) -> tuple[int, float]:
    fronts, speed = summary(run_condition(runner, 0.0))
    print(f"\nclean expert: {fronts} front collisions, mean speed {speed:.2f} m/s")
    return fronts, speed


@pytest.mark.parametrize("sd", NOISE_SDS)
def test_steering_noise_costs_no_front_collisions_or_speed(runner, clean, sd):
    fronts, speed = summary(run_condition(runner, sd))
    print(f"\nsd {sd:g}: {fronts} front collisions, mean speed {speed:.2f} m/s")
    assert fronts <= clean[0], (sd, fronts, clean)
    assert abs(speed - clean[1]) <= SPEED_TOLERANCE, (sd, speed, clean)
