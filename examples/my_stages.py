"""Worked third-party stages for the modular agent: a detector and a planner.

Each is a plain class with its stage's method (`steerbench.agents.stages` has the contract):
the modular agent keeps every other stage and runs yours in its place. From the repository root,
with nothing installed:

    steerbench eval --agent mine=modular --agent-opt mine.detector=examples.my_stages:StricterDetector \\
        --agent-opt mine.detector.contrast=30 --agent-opt mine.planner=examples.my_stages:LaneKeepingPlanner \\
        --scenarios highway --episodes 5
    steerbench ceiling --detector examples.my_stages:StricterDetector --lanes map --scenarios highway --episodes 5

or register them as entry points in your package's pyproject.toml, and name them `stricter`,
`keep_lane`:

    [project.entry-points."steerbench.detectors"]
    stricter = "my_stages:StricterDetector"
    [project.entry-points."steerbench.planners"]
    keep_lane = "my_stages:LaneKeepingPlanner"

They are API examples, not better stages: the detector is the classical one with a stricter
darkness threshold and a floor on its boxes' score; the planner never changes lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.agents.stages import StageContext
from steerbench.perception.classical import ClassicalDetector, ClassicalOptions
from steerbench.perception.tracker import Track
from steerbench.perception.types import Detection
from steerbench.planning.planner import LaneView, Trajectory
from steerbench.sim.types import Observation


@dataclass(frozen=True)
class StricterOptions:
    contrast: int = 30  # [grey levels] darker than the road: an outline pixel (the classical detector: 18)
    min_score: float = 0.5  # boxes whose dark outline covers less of their border are dropped

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")


class StricterDetector:
    """The classical OpenCV detector with another threshold and a score floor."""

    Options = StricterOptions
    inputs = "pixels"  # it reads the frames only

    def __init__(self, options: StricterOptions = StricterOptions()) -> None:
        self.o = options
        self.inner: ClassicalDetector | None = None

    def reset(self, ctx: StageContext) -> None:
        # The camera (its size, scale and the ego's pixel) may differ by scenario: build per episode.
        self.inner = ClassicalDetector(ctx.geometry, ClassicalOptions(contrast=self.o.contrast))

    def detect(self, obs: Observation) -> list[Detection]:
        return [d for d in self.inner.detect(obs.frames) if d.score >= self.o.min_score]


@dataclass(frozen=True)
class LaneKeepingOptions:
    horizon_s: float = 4.0  # [s] of the plan
    step_s: float = 0.2  # [s] between its points
    min_reach_m: float = 20.0  # [m] the plan reaches at least this far, even when slow


class LaneKeepingPlanner:
    """The own lane's centre line ahead, driven at the current speed: no lane changes, ever."""

    Options = LaneKeepingOptions

    def __init__(self, options: LaneKeepingOptions = LaneKeepingOptions()) -> None:
        self.o = options

    def plan(self, obs: Observation, tracks: Sequence[Track], lanes: LaneView, desired_speed: float) -> Trajectory:
        own = next(lane.centre for lane in lanes.lanes if lane.offset == 0)
        times = np.arange(0.0, self.o.horizon_s + 1e-9, self.o.step_s)
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(own, axis=0), axis=1))])
        start = along[np.argmin(np.linalg.norm(own, axis=1))]  # the centre line's point nearest the ego
        reach = max(obs.speed * self.o.horizon_s, self.o.min_reach_m)
        s = start + times / self.o.horizon_s * reach
        points = np.stack([np.interp(s, along, own[:, 0]), np.interp(s, along, own[:, 1])], axis=1)
        return Trajectory(times, points, np.full(len(times), obs.speed), 0, "keep", 0.0, True)
