"""Misbehaving agents for the harness's error handling tests."""

import time

import numpy as np

from steerbench.agents.base import AgentInfo


class _Base:
    info = AgentInfo("test", "pixels")

    def __init__(self):
        self.steps = 0

    def reset(self, episode):
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        if self.steps >= 3:
            return self.misbehave()
        return np.zeros(2)


class RaisingAgent(_Base):
    def misbehave(self):
        raise RuntimeError("boom")


class NanAgent(_Base):
    def misbehave(self):
        return np.array([0.0, np.nan])


class WrongShapeAgent(_Base):
    def misbehave(self):
        return np.zeros(3)


class SlowAgent(_Base):
    def misbehave(self):
        time.sleep(30)
        return np.zeros(2)


class PeekingAgent(_Base):
    """Records what the harness handed over."""

    seen: list = []

    def act(self, obs):
        PeekingAgent.seen.append((obs.truth is None, obs.road is None, obs.frames.shape))
        return np.zeros(2)
