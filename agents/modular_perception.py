"""The built-in detector and tracker stages of the modular agent (the contract: `stages`).

- `detector=classical`: OpenCV on the newest frame (`perception.classical`), its thresholds as
  options; `detector=learned`: the CNN of `steerbench train-detector` (`checkpoint=PATH`);
  `detector=ground_truth`: every nearby vehicle's true box (privileged: ceiling analysis).
- `tracker=kalman`: Kalman filters moved with the ego (`perception.tracker`), confirmed tracks
  only; `tracker=ground_truth`: true positions and velocities (privileged; the detector is then
  not run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.perception.classical import ClassicalDetector, ClassicalOptions
from steerbench.perception.tracker import EgoMotion, KalmanTracker, Track, TrackerOptions
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.sim.types import GroundTruth, Observation

from .stages import StageContext

NEAR_X_M = (-40.0, 80.0)  # [m] behind, ahead: the oracles report vehicles in this window
NEAR_Y_M = 30.0  # [m] to either side


def _no_camera(what: str) -> RuntimeError:
    return RuntimeError(f"{what} needs the camera geometry in EpisodeInfo")


class ClassicalStage:
    """The classical OpenCV detector."""

    Options = ClassicalOptions
    inputs = "pixels"

    def __init__(self, options: ClassicalOptions = ClassicalOptions()) -> None:
        self.o = options
        self.detector: ClassicalDetector | None = None

    def reset(self, ctx: StageContext) -> None:
        self.detector = ClassicalDetector(ctx.geometry, self.o) if ctx.geometry is not None else None

    def detect(self, obs: Observation) -> list[Detection]:
        if self.detector is None:
            raise _no_camera("detector=classical")
        return self.detector.detect(obs.frames)


@dataclass(frozen=True)
class LearnedOptions:
    checkpoint: str = ""  # weights from steerbench train-detector
    score_threshold: float | None = None  # None: the checkpoint's operating point

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("detector=learned needs checkpoint=PATH (from steerbench train-detector)")


class LearnedStage:
    """The learned CenterNet-style detector (`perception.learned`); torch is imported only when one is built."""

    Options = LearnedOptions
    inputs = "pixels"

    def __init__(self, options: LearnedOptions) -> None:
        self.o = options
        self.detector = self._load(None)  # a missing or bad checkpoint fails now, in one line
        self.ready = False

    def _load(self, geometry: FrameGeometry | None):
        from steerbench.perception.learned import LearnedDetector

        return LearnedDetector(self.o.checkpoint, geometry, self.o.score_threshold)

    def reset(self, ctx: StageContext) -> None:
        self.ready = ctx.geometry is not None
        if self.ready and self.detector.geometry != ctx.geometry:  # the ego's pixel differs by scenario
            self.detector = self._load(ctx.geometry)

    def detect(self, obs: Observation) -> list[Detection]:
        if not self.ready:
            raise _no_camera("detector=learned")
        return self.detector.detect(obs.frames)


class TruthDetector:
    """The oracle detector: every nearby vehicle's true box."""

    inputs = "privileged"

    def detect(self, obs: Observation) -> list[Detection]:
        truth = _truth(obs, "detector=ground_truth")
        ego, out = truth.ego, []
        for v in truth.others:
            x, y = ego.to_local(v.position)[0]
            if _near(x, y):
                heading = float((v.heading - ego.heading + np.pi) % (2 * np.pi) - np.pi)
                out.append(Detection(np.zeros((4, 2)), np.array([x, y]), v.length, v.width, heading, 1.0))
        return out


class KalmanStage:
    """Kalman filters in the ego frame (`perception.tracker`): the confirmed tracks."""

    Options = TrackerOptions
    inputs = "pixels"

    def __init__(self, options: TrackerOptions = TrackerOptions()) -> None:
        self.o = options
        self.tracker = KalmanTracker(options)

    def reset(self, ctx: StageContext) -> None:
        self.tracker = KalmanTracker(self.o, ctx.dt)

    def update(self, obs: Observation, detections: Sequence[Detection], motion: EgoMotion | None) -> list[Track]:
        return [t for t in self.tracker.update(detections, motion) if t.confirmed]


class TruthTracker:
    """The oracle tracker: every nearby vehicle with its true position and velocity, ego frame."""

    inputs = "privileged"
    uses_detections = False

    def update(self, obs: Observation, detections: Sequence[Detection], motion: EgoMotion | None) -> list[Track]:
        truth = _truth(obs, "tracker=ground_truth")
        ego, out = truth.ego, []
        for i, v in enumerate(truth.others):
            pos, ahead = ego.to_local(np.stack([v.position, v.position + v.velocity]))
            if _near(*pos):
                heading = float((v.heading - ego.heading + np.pi) % (2 * np.pi) - np.pi)
                out.append(Track(i, pos, ahead - pos, v.length, v.width, heading, 1, 0, True))
        return out


def _truth(obs: Observation, what: str) -> GroundTruth:
    if obs.truth is None:
        raise RuntimeError(f"{what} needs privileged inputs")
    return obs.truth


def _near(x: float, y: float) -> bool:
    return NEAR_X_M[0] < x < NEAR_X_M[1] and abs(y) < NEAR_Y_M
