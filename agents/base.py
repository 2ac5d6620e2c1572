"""The agent protocol: what the harness calls, and what an agent declares about itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from steerbench.sim.types import INPUT_KINDS, EpisodeInfo, Inputs, Observation


@dataclass(frozen=True)
class AgentInfo:
    """Shown beside the agent's name in every report."""

    name: str
    inputs: Inputs  # "pixels", "pixels+map" (lane geometry, as an HD map) or "privileged"
    description: str = ""

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {self.inputs!r}")


@runtime_checkable
class Agent(Protocol):
    """Anything with these members drives: no base class to inherit.

    `act` returns a normalised action `[acceleration, steering]` in [-1, 1]; in `steering` mode
    the harness's cruise control replaces the acceleration.
    """

    info: AgentInfo

    def reset(self, episode: EpisodeInfo) -> None: ...

    def act(self, obs: Observation) -> np.ndarray: ...
