"""The modular pipeline's stages: what each is given and what it must return.

    detector -> tracker -> lane source -> planner -> controller

A stage is any class with the members of its Protocol below; there is no base class. The
built-in stages are registered implementations of these Protocols (`stage_registry`), and a
user's stage is found the same way: by a registered name, a `module:Class` path, or an entry
point of the stage's group (`steerbench.detectors`, `steerbench.trackers`, `steerbench.lanes`,
`steerbench.planners`, `steerbench.controllers`).

Optional members, used when present:
- `inputs`: the most the stage reads of an observation, "pixels" (the default), "pixels+map"
  (`obs.road`) or "privileged" (`obs.truth`). The modular agent's declared inputs are the most
  privileged of its stages', and the harness fills the observation accordingly.
- `Options`: a dataclass of the stage's options, as for agents; set with
  `--agent-opt LABEL.STAGE.KEY=VALUE`, and the constructor gets an instance of it.
- `reset(ctx)`: start an episode. One instance drives many episodes: clear per-episode state.
- a tracker's `uses_detections = False`: the detector is not run (an oracle tracker).
- a planner's `candidates`: the trajectories it considered last, drawn in `overlay()`.
- `stats()`: the episode's own numbers, {"section/name": value}, added to the agent's `stats()`
  (TensorBoard); each stage's latency is measured by the agent (`time/<stage>_ms_mean`, `_p95`).

Everything is in the ego frame: x ahead, y to the right, metres. A stage that raises, or
returns the wrong type or non-finite numbers, fails its episode as `agent_error` naming the
stage (`check_output`), and the run goes on; the act time limit (`--act-timeout`) covers the
whole pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Protocol, Sequence

import numpy as np

from steerbench.perception.tracker import EgoMotion, Track
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.planning.planner import Lane, LaneView, Trajectory
from steerbench.sim.types import Observation

KINDS: tuple[str, ...] = ("detector", "tracker", "lanes", "planner", "controller")
METHODS = {"detector": "detect", "tracker": "update", "lanes": "view", "planner": "plan", "controller": "steer"}


@dataclass(frozen=True)
class StageContext:
    """What every stage is told at an episode's start."""

    geometry: FrameGeometry | None  # the camera: frame size, px/m, the ego's pixel (None: no camera)
    dt: float  # [s] the policy period: time between two calls
    full: bool  # whether the agent also drives the throttle (`--mode full`)
    command_names: tuple[str, ...] = ()  # the scenario's navigation commands by index (EpisodeInfo's)


class Detector(Protocol):
    """Vehicles in the observation's frames."""

    def detect(self, obs: Observation) -> Sequence[Detection]: ...


class Tracker(Protocol):
    """Detections over time: the vehicles the planner should avoid, with velocities."""

    def update(self, obs: Observation, detections: Sequence[Detection], motion: EgoMotion | None) -> Sequence[Track]:
        """The confirmed tracks now; `motion`: how the ego moved since the last call (None at the first)."""
        ...


class LaneSource(Protocol):
    """Lane centre lines around the ego."""

    def view(self, obs: Observation, motion: EgoMotion | None, tracks: Sequence[Track]) -> LaneView:
        """The lanes (offset 0, the ego's own, must be among them), the ego lane's id and the speed limit;
        `tracks` (this step's, from the tracker) tell which way the traffic in a lane goes."""
        ...


class Planner(Protocol):
    """Where to drive over the next seconds."""

    def plan(self, obs: Observation, tracks: Sequence[Track], lanes: LaneView, desired_speed: float) -> Trajectory:
        """The trajectory to follow; `desired_speed` [m/s] is the cruise speed capped by the lane's limit."""
        ...


class Controller(Protocol):
    """Steering along the plan."""

    def steer(self, obs: Observation, plan: Trajectory) -> float:
        """Normalised steering in [-1, 1] (positive: to the right) to follow `plan` from the ego's pose."""
        ...


class StageFault(RuntimeError):
    """A stage raised or returned something the pipeline cannot use: the episode's `agent_error`."""


def _finite(a: Any, shape: tuple[int | None, ...]) -> bool:
    a = np.asarray(a)
    return (a.dtype.kind in "fiu" and a.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape))
            and bool(np.isfinite(a).all()))


def _items(value: Any, kind: type, fields: Sequence[tuple[str, tuple[int | None, ...]]]) -> str | None:
    if not isinstance(value, (list, tuple)):
        return f"a {type(value).__name__}, not a list of {kind.__name__}"
    for item in value:
        if not isinstance(item, kind):
            return f"a {type(item).__name__} among its {kind.__name__}s"
        for name, shape in fields:
            if not _finite(getattr(item, name), shape):
                return f"a {kind.__name__} whose {name} is not a finite array of shape {shape}"
    return None


def _lanes(view: Any) -> str | None:
    if not isinstance(view, LaneView):
        return f"a {type(view).__name__}, not a LaneView"
    problem = _items(view.lanes, Lane, [("centre", (None, 2))])
    if problem:
        return problem
    if any(len(lane.centre) < 2 for lane in view.lanes):
        return "a lane centre line of fewer than 2 points"
    if not any(lane.offset == 0 for lane in view.lanes):
        return "no lane of offset 0 (the ego's own)"
    limit = view.speed_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, Real) or not limit > 0
                              or not math.isfinite(limit)):
        return f"a speed limit of {limit!r}, neither None nor a positive number"
    return None


def _plan(plan: Any) -> str | None:
    if not isinstance(plan, Trajectory):
        return f"a {type(plan).__name__}, not a Trajectory"
    if not _finite(plan.points, (None, 2)) or len(plan.points) < 2:
        return "a Trajectory whose points are not a finite (N >= 2, 2) array"
    return None


def _steering(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return f"{value!r}, not a finite number"
    return None


_CHECKS = {
    "detector": lambda v: _items(v, Detection, [("center_m", (2,))]),
    "tracker": lambda v: _items(v, Track, [("position", (2,)), ("velocity", (2,))]),
    "lanes": _lanes,
    "planner": _plan,
    "controller": _steering,
}


def check_output(kind: str, name: str, value: Any) -> Any:
    """`value` if it is what a `kind` stage must return, else StageFault naming the stage `name`."""
    problem = _CHECKS[kind](value)
    if problem:
        raise StageFault(f"{kind} {name!r} returned {problem}")
    return value
