"""Misbehaving and declaring pipeline stages for the modular agent's plug-in tests: each works
for two steps, then misbehaves, like agents_for_tests' agents."""

import time

import numpy as np

from steerbench.agents.modular_perception import ClassicalStage, KalmanStage
from steerbench.agents.modular_planning import CandidatePlanner, PurePursuitStage
from steerbench.perception.tracker import Track


class _Counting:
    def reset(self, ctx):
        self.calls = 0
        super().reset(ctx)

    def _misbehaving(self) -> bool:
        self.calls = getattr(self, "calls", 0) + 1
        return self.calls >= 3


class RaisingDetector(_Counting, ClassicalStage):
    def detect(self, obs):
        if self._misbehaving():
            raise RuntimeError("boom")
        return super().detect(obs)


class SlowDetector(_Counting, ClassicalStage):
    def detect(self, obs):
        if self._misbehaving():
            time.sleep(2.0)
        return super().detect(obs)


class NanTracker(_Counting, KalmanStage):
    def update(self, obs, detections, motion):
        if self._misbehaving():
            return [Track(0, np.array([np.nan, 0.0]), np.zeros(2), 5.0, 2.0, 0.0, 3, 0, True)]
        return super().update(obs, detections, motion)


class NonePlanner(_Counting, CandidatePlanner):
    def plan(self, obs, tracks, lanes, desired_speed):
        if self._misbehaving():
            return None
        return super().plan(obs, tracks, lanes, desired_speed)


class StringController(PurePursuitStage):
    def reset(self, ctx):
        self.calls = 0

    def steer(self, obs, plan):
        self.calls += 1
        return "left" if self.calls >= 3 else super().steer(obs, plan)


class PeekingPlanner(CandidatePlanner):
    """Declares privileged inputs and checks, every step, that the observation carries them."""

    inputs = "privileged"
    seen: list = []

    def plan(self, obs, tracks, lanes, desired_speed):
        PeekingPlanner.seen.append(obs.truth is not None)
        return super().plan(obs, tracks, lanes, desired_speed)


class MapDetector(ClassicalStage):
    inputs = "pixels+map"


class UndeclaredLanes:
    """A lane source that declares nothing: a straight lane ahead."""

    def view(self, obs, motion, tracks):
        from steerbench.planning.planner import Lane, LaneView

        x = np.arange(-5.0, 100.0, 5.0)
        return LaneView([Lane(0, np.stack([x, np.zeros_like(x)], axis=1))], 0, None)


class LidarDetector(ClassicalStage):
    inputs = "lidar"
