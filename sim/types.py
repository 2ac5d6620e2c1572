"""Data that flows from the simulator to agents and metrics.

Everything here is a frozen dataclass: the harness builds it each step and nobody mutates it.
`Observation.truth` and `Observation.road` are filled only for agents that declare the matching
inputs, so a pixel agent cannot read privileged state by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

LaneIndex = tuple[str, str, int]
Mode = Literal["steering", "full"]
Inputs = Literal["pixels", "pixels+map", "privileged"]
INPUT_KINDS: tuple[str, ...] = ("pixels", "pixels+map", "privileged")
SPLITS: tuple[str, ...] = ("train", "train-dev", "dev", "test")


@dataclass(frozen=True)
class VehicleState:
    """A vehicle as the simulator knows it (world frame, metres, radians)."""

    x: float
    y: float
    heading: float  # [rad], 0 along +x, positive towards +y
    speed: float  # [m/s]
    length: float  # [m]
    width: float  # [m]
    lane_index: LaneIndex | None = None
    kind: str = "car"  # "car" or "obstacle" (a static object such as the ramp's barrier)
    yaw_rate: float = 0.0  # [rad/s], as a tracking radar would estimate it

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x, self.y])

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) world points -> this vehicle's frame (x ahead, y to its right)."""
        c, s = np.cos(self.heading), np.sin(self.heading)
        d = np.atleast_2d(points) - self.position
        return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)

    @property
    def velocity(self) -> np.ndarray:
        return self.speed * np.array([np.cos(self.heading), np.sin(self.heading)])


@dataclass(frozen=True)
class GroundTruth:
    """Privileged state: for the harness, experts, labels and metrics, never for a pixel agent.

    `network` is highway-env's live `RoadNetwork` (lane geometry and topology);
    `route` is the lane sequence the scenario wants the ego to follow (empty: follow the road).
    """

    time: float  # [s] since the episode start
    ego: VehicleState
    others: tuple[VehicleState, ...]
    network: Any
    route: tuple[LaneIndex, ...] = ()
    speed_limit: float = 30.0  # [m/s] cruise speed the scenario asks for


@dataclass(frozen=True)
class RoadPrior:
    """What an HD-map stack knows: lane geometry plus the ego's localised pose, no other cars."""

    network: Any
    ego: VehicleState
    route: tuple[LaneIndex, ...] = ()


@dataclass(frozen=True)
class Observation:
    """What an agent sees at one policy step."""

    frames: np.ndarray  # (stack, H, W) uint8, or (stack, H, W, 3) in colour; ego at a fixed pixel
    speed: float  # [m/s], as from a speedometer
    command: int  # scenario-defined navigation command, see ScenarioSpec.commands
    road: RoadPrior | None = None  # only for agents with inputs "pixels+map" or "privileged"
    truth: GroundTruth | None = None  # only for agents with inputs "privileged"


@dataclass(frozen=True)
class EpisodeInfo:
    """Given to `Agent.reset` before the first step of an episode."""

    scenario: str
    split: str
    seed: int
    index: int  # episode number within (scenario, split), the pairing key
    policy_hz: float
    mode: Mode
    command: int
    command_names: tuple[str, ...] = ()
    max_steps: int = 0
    camera: "CameraConfig | None" = None  # the frames' geometry (centering resolved)


@dataclass(frozen=True)
class CameraConfig:
    """Top-down camera around the ego. Defaults are justified in docs/scenarios.md."""

    width: int = 128  # [px] along the road
    height: int = 64  # [px] across the road
    scaling: float = 1.75  # [px/m]: a 5 x 2 m car is ~9 x 3.5 px; 51 m visible ahead
    stack: int = 4  # frames, newest last
    centering: tuple[float, float] | None = None  # ego's place (fraction of W, H); None: scenario's
    color: bool = False  # RGB frames (stack, H, W, 3) instead of grayscale (stack, H, W)


@dataclass(frozen=True)
class EpisodeReference:
    """What an episode is scored against, fixed from its seed at reset before any agent drives:
    every agent on the episode is scored on this one scale (docs/metrics.md)."""

    route_length_m: float  # goal scenarios: start to goal along the route; open roads: speed x time limit
    reference_speed_mps: float  # the traffic's pace at the start, capped by the ego's desired speed
    time_limit_s: float  # the scenario's duration


@dataclass(frozen=True)
class StepRecord:
    """One policy step as metrics see it (built from ground truth by the harness)."""

    time: float
    speed: float
    lateral_offset: float  # [m] to the centre of the lane the ego is on
    heading_error: float  # [rad] to that lane's heading
    lane_index: LaneIndex | None
    on_road: bool
    steering: float  # normalised [-1, 1] action actually applied
    ttc: float  # [s] time to collision with the vehicle ahead (inf when opening)
    progress: float  # [m] progress along the route during this step
    reward: float
    extra: dict = field(default_factory=dict)
