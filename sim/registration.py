"""Every scenario as a gymnasium id: `gymnasium.make("steerbench/highway-v0", split="test")`."""

from __future__ import annotations

import gymnasium as gym

from .scenarios import SUITE, scenario_entry_points

NAMESPACE = "steerbench"


def env_id(scenario: str) -> str:
    return f"{NAMESPACE}/{scenario}-v0"


def register_envs() -> None:
    """The suite's scenarios and the installed ones (entry points; resolved only when made)."""
    for name in [*SUITE, *scenario_entry_points()]:
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point="steerbench.sim.env:SteerEnv", kwargs={"scenario": name})
