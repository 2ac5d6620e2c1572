"""A worked third-party agent: steer towards the middle of the road seen in the frames.

It is a plain class (no base class to inherit): an `info`, an `Options` dataclass, `reset` and
`act`. Use it without installing anything:

    steerbench eval --agent examples.my_agent:RoadCentreAgent --scenarios highway --episodes 5

(run from the repository root, or put examples/ on PYTHONPATH and write `my_agent:RoadCentreAgent`),
or register it as an entry point in your package's pyproject.toml:

    [project.entry-points."steerbench.agents"]
    road_centre = "my_agent:RoadCentreAgent"

It is an API example, not a good driver: it looks at a band of the newest frame ahead of the
ego, finds the road's outer edges (the brightest marking pixels) and steers to keep the ego at
the road's middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steerbench.agents.base import AgentInfo
from steerbench.sim.types import EpisodeInfo, Observation


@dataclass(frozen=True)
class RoadCentreOptions:
    gain: float = 0.08  # steering per pixel of offset from the road's middle
    lookahead: float = 0.2  # fraction of the frame width ahead of the ego to look at
    marking_level: int = 200  # grey level above which a pixel counts as a lane marking

    def __post_init__(self) -> None:
        if not 0 < self.lookahead < 0.7:
            raise ValueError("lookahead must be in (0, 0.7)")


class RoadCentreAgent:
    Options = RoadCentreOptions
    info = AgentInfo("road_centre", "pixels", "keeps to the middle of the markings it sees")

    def __init__(self, options: RoadCentreOptions = RoadCentreOptions()) -> None:
        self.o = options
        self.ego_row: float | None = None

    def reset(self, episode: EpisodeInfo) -> None:
        self.ego_row = None

    def act(self, obs: Observation) -> np.ndarray:
        frame = obs.frames[-1]
        if frame.ndim == 3:
            frame = frame.mean(axis=2)
        h, w = frame.shape
        if self.ego_row is None:
            self.ego_row = h / 2  # the camera keeps the ego at mid-height
        col = int(w * (0.3 + self.o.lookahead))
        rows = np.flatnonzero(frame[:, col] >= self.o.marking_level)
        if len(rows) < 2:
            return np.zeros(2)
        middle = (rows.min() + rows.max()) / 2
        steer = self.o.gain * (middle - self.ego_row)  # markings below the ego: steer right (+)
        return np.array([0.0, float(np.clip(steer, -1.0, 1.0))])
