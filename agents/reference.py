"""Reference agents that bracket the suite: `idle` (no steering) and `lane_keeper`.

They show whether a scenario discriminates: an expert that cannot beat a car that holds its
start lane, or one that does not steer at all, is not being tested on anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steerbench.planning.lanes import LaneFollower, LaneFollowerParams, LaneTracker
from steerbench.sim.types import EpisodeInfo, Observation

from .base import AgentInfo


@dataclass(frozen=True)
class IdleOptions:
    """The idle agent has nothing to tune."""


class IdleAgent:
    """Zero steering; the harness's cruise control still drives the throttle."""

    Options = IdleOptions
    info = AgentInfo("idle", "pixels", "zero steering, zero acceleration")

    def __init__(self, options: IdleOptions = IdleOptions()) -> None:
        self.options = options

    def reset(self, episode: EpisodeInfo) -> None:
        """Nothing to reset."""
        pass

    def act(self, obs: Observation) -> np.ndarray:
        """Always `[0, 0]`."""
        return np.zeros(2)


@dataclass(frozen=True)
class LaneKeeperOptions:
    """The lane keeper's only option."""

    tau_lateral: float = 0.6  # [s] lateral-offset time constant of the lane follower


class LaneKeeperAgent:
    """Privileged: follows its start lane (and its natural continuation), never changes lane."""

    Options = LaneKeeperOptions
    info = AgentInfo("lane_keeper", "privileged", "keeps its start lane, no lane changes, no route")

    def __init__(self, options: LaneKeeperOptions = LaneKeeperOptions()) -> None:
        self.follower = LaneFollower(LaneFollowerParams(tau_lateral=options.tau_lateral))
        self.tracker: LaneTracker | None = None

    def reset(self, episode: EpisodeInfo) -> None:
        """Forget the lane: the next `act` follows the lane the ego is in then."""
        self.tracker = None

    def act(self, obs: Observation) -> np.ndarray:
        """Steering onto the followed lane's centre line, from ground truth; acceleration is always 0 (in
        `full` mode too)."""
        truth = obs.truth
        if self.tracker is None:
            self.tracker = LaneTracker(truth.network, truth.ego.lane_index)
        lane = self.tracker.update(truth.ego.position, truth.ego.lane_index)
        return np.array([0.0, self.follower.steer(truth.network.get_lane(lane), truth.ego)])
