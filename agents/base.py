"""The agent protocol: what the harness calls, and what an agent declares about itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from steerbench.sim.types import INPUT_KINDS, EpisodeInfo, Inputs, Observation


@dataclass(frozen=True)
class AgentInfo:
    """What an agent declares about itself, shown beside its name in every report. `inputs` also
    decides what its observations carry; an unknown kind raises ValueError."""

    name: str
    inputs: Inputs  # "pixels", "pixels+map" (lane geometry, as an HD map) or "privileged"
    description: str = ""  # one line for `steerbench agents` and the run's config.json

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {self.inputs!r}")


@runtime_checkable
class Agent(Protocol):
    """Anything with these members drives: no base class to inherit.

    `act` returns a normalised action `[acceleration, steering]` in [-1, 1]; in `steering` mode
    the harness's cruise control replaces the acceleration.

    Optional members, used when present: `Options`, a dataclass of the agent's options (set with
    `--agent-opt LABEL.KEY=VALUE`; the constructor then gets an instance of it, else no argument);
    `check_camera(camera)`, raising ValueError for frames it cannot drive with (asked once, before
    the first episode); `stats()`, per-episode numbers as {"section/name": value} for TensorBoard;
    `overlay()`, an (H, W, 3) uint8 image of what it perceived and planned, for frame strips and
    error clips. A failing `stats()` or `overlay()` never fails an episode.
    """

    info: AgentInfo

    def reset(self, episode: EpisodeInfo) -> None:
        """Start an episode: clear per-episode state. One instance drives many episodes in a
        process (cached by label), so whatever `act` remembers must be reset here. An exception,
        or taking longer than the act time limit, fails the episode as `agent_error`."""
        ...

    def act(self, obs: Observation) -> np.ndarray:
        """The action for one policy step: `[acceleration, steering]`, shape (2,), finite, each
        normalised to [-1, 1] (the environment clips values outside). `obs.road` is set only for
        "pixels+map" and "privileged" inputs, `obs.truth` only for "privileged". A wrong shape, a
        non-finite value, an exception or a step slower than the time limit (`--act-timeout`)
        ends the episode as `agent_error`; the run goes on."""
        ...
