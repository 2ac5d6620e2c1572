"""The modular contestant: detector -> tracker -> lane source -> planner -> controller.

Every stage is pluggable (the contract: `stages`; finding them: `stage_registry`). Built in:
- `detector=classical|learned|ground_truth` (`learned` needs `checkpoint=PATH` from
  `steerbench train-detector`);
- `tracker=kalman|ground_truth` (the oracle gives true positions and velocities: ceiling analysis);
- `lanes=map|pixels`: lane centre lines from the road network and the ego's localised pose (an
  HD-map prior), or from lane markings detected in the frames;
- `planner=candidates`; `controller=pure_pursuit|stanley`.
Any of them may instead be a `module:Class` or an entry point's name, and each stage's own
options are set as `STAGE.KEY=VALUE` (`--agent-opt modular.detector.contrast=24`). Its inputs
follow from its stages: the most privileged any of them declares. With the built-ins: any oracle
makes it `privileged`; map lanes make it `pixels+map`; pixel lanes with a pixel detector make it
`pixels`, the same inputs as the end-to-end network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from steerbench.perception.classical import newest
from steerbench.perception.odometry import step_turn
from steerbench.perception.tracker import EgoMotion, Track
from steerbench.perception.types import FrameGeometry
from steerbench.planning.planner import Trajectory, frenet
from steerbench.sim.longitudinal import idm_acceleration
from steerbench.sim.types import EpisodeInfo, Observation, VehicleState

from .base import AgentInfo
from .modular_overlay import Snapshot, draw
from .modular_planning import WHEELBASE_M
from .registry import load_object, options_class
from .stage_registry import StageSpec, declared_inputs, describe_stages, most_privileged, resolve_stage, stage_spec
from .stages import KINDS, StageContext, StageFault, check_output

TIMED = {"detector": "detect", "tracker": "track", "lanes": "lanes", "planner": "plan", "controller": "control"}


@dataclass(frozen=True)
class ModularOptions:
    """The stage of each kind, by name or `module:Class`, and the stages' own options."""

    NESTED: ClassVar[str] = "stage_options"  # where `STAGE.KEY=VALUE` options go (registry.build_options)
    detector: str = "classical"
    tracker: str = "kalman"
    lanes: str = "map"
    planner: str = "candidates"
    controller: str = "pure_pursuit"
    checkpoint: str = ""  # the learned detector's weights: shorthand for detector.checkpoint
    cruise_speed: float = 30.0  # [m/s] desired speed, capped by each lane's limit when the map is known
    stage_options: tuple[tuple[str, str], ...] = ()  # (STAGE.KEY, VALUE) pairs

    def __post_init__(self) -> None:
        if self.cruise_speed <= 0:
            raise ValueError(f"cruise_speed must be > 0, got {self.cruise_speed}")
        self.stages()  # an unknown stage or a bad stage option fails now, in one line

    def stages(self) -> dict[str, StageSpec]:
        """The spec of each stage, its options checked (AgentError)."""
        own: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
        for key, value in self.stage_options:
            kind, _, name = key.partition(".")
            if kind not in own:
                raise ValueError(f"option {key!r} names no stage (stages: {', '.join(KINDS)})")
            own[kind].append((name, value))
        if self.checkpoint and not any(k == "checkpoint" for k, _ in own["detector"]):
            opts = options_class(load_object(resolve_stage("detector", self.detector), what="detector"))
            if opts is not None and "checkpoint" in opts.__dataclass_fields__:
                own["detector"].append(("checkpoint", self.checkpoint))
        return {kind: stage_spec(kind, getattr(self, kind), own[kind]) for kind in KINDS}


class ModularAgent:
    """The modular pipeline (module docstring): one stage of each kind, called in order every step."""

    Options = ModularOptions
    info = AgentInfo("modular", "pixels+map", "detector -> tracker -> lane source -> planner -> controller")

    def __init__(self, options: ModularOptions = ModularOptions()) -> None:
        self.o = options
        self.specs = options.stages()
        stage = {kind: spec() for kind, spec in self.specs.items()}
        self.detector, self.tracker, self.lanes, self.planner, self.controller = (stage[k] for k in KINDS)
        inputs = most_privileged(declared_inputs(stage[k], self.specs[k].what) for k in KINDS)
        self.info = AgentInfo("modular", inputs, ", ".join(f"{k}={getattr(options, k)}" for k in KINDS))
        self._episode(StageContext(None, 0.2, False))

    @staticmethod
    def help_lines() -> list[str]:
        """Extra lines for `steerbench agents`: the stages to choose from and their options."""
        return describe_stages()

    def reset(self, episode: EpisodeInfo) -> None:
        cam = episode.camera
        geometry = FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering) if cam is not None else None
        self._episode(StageContext(geometry, 1.0 / episode.policy_hz, episode.mode == "full",
                                   tuple(episode.command_names)))

    def _episode(self, ctx: StageContext) -> None:
        self.ctx = ctx
        for kind in KINDS:
            reset = getattr(getattr(self, kind), "reset", None)
            if callable(reset):
                self._run(kind, reset, ctx, check=False)
        self.last_pose: VehicleState | None = None
        self.last_steering = 0.0
        self.snapshot: Snapshot | None = None
        self.latency: dict[str, list[float]] = {name: [] for name in TIMED.values()}
        self.counts = {"detections": 0, "lane_changes_planned": 0}

    def stats(self) -> dict[str, float]:
        """Per-episode diagnostics for TensorBoard: stage latency (mean, p95) and counts."""
        out = {}
        for stage, ms in self.latency.items():
            if ms:
                out[f"time/{stage}_ms_mean"] = float(np.mean(ms))
                out[f"time/{stage}_ms_p95"] = float(np.percentile(ms, 95))
        steps = max(len(self.latency["detect"]), 1)
        out["perception/detections_per_step"] = self.counts["detections"] / steps
        out["planning/lane_change_plans_per_step"] = self.counts["lane_changes_planned"] / steps
        for kind in KINDS:  # a stage's own numbers (its `stats()`, optional)
            own = getattr(getattr(self, kind), "stats", None)
            if callable(own):
                out.update({k: float(v) for k, v in own().items()})
        return out

    def overlay(self) -> np.ndarray | None:
        """The last step drawn: frame, detections, tracks, lanes, candidates and the plan."""
        if self.snapshot is None or self.ctx.geometry is None:
            return None
        return draw(self.snapshot, self.ctx.geometry)

    def act(self, obs: Observation) -> np.ndarray:
        motion = self._ego_motion(obs)
        clock = [time.perf_counter()]

        def timed(kind: str, method: Callable, *args: Any) -> Any:
            out = self._run(kind, method, *args)
            clock.append(time.perf_counter())
            self.latency[TIMED[kind]].append((clock[-1] - clock[-2]) * 1000.0)
            return out

        uses_detections = getattr(self.tracker, "uses_detections", True)  # an oracle tracker needs none
        detections = timed("detector", self.detector.detect, obs) if uses_detections else timed("detector", list)
        tracks = timed("tracker", self.tracker.update, obs, detections, motion)
        view = timed("lanes", self.lanes.view, obs, motion, tracks)
        desired = min(self.o.cruise_speed, view.speed_limit or np.inf)
        plan = timed("planner", self.planner.plan, obs, tracks, view, desired)
        steering = float(timed("controller", self.controller.steer, obs, plan))
        self.counts["detections"] += len(detections)
        self.counts["lane_changes_planned"] += int(plan.lane_offset != 0)
        candidates = getattr(self.planner, "candidates", None) or [plan]
        self.snapshot = Snapshot(newest(obs.frames), detections, tracks, view.lanes, candidates, plan)
        self.last_steering = steering
        accel = self._accel(obs.speed, desired, plan, tracks) if self.ctx.full else 0.0
        return np.array([accel, steering])

    # -- stages -----------------------------------------------------------------------------
    def _run(self, kind: str, method: Callable, *args: Any, check: bool = True) -> Any:
        """A stage's call; what it raises or returns wrong is a StageFault naming the stage."""
        name = self.specs[kind].name
        try:
            out = method(*args)
        except StageFault:
            raise
        except Exception as exc:  # noqa: BLE001 - a stage's fault is the episode's agent_error
            raise StageFault(f"{kind} {name!r} raised {type(exc).__name__}: {exc}") from exc
        return check_output(kind, name, out) if check else out

    def _ego_motion(self, obs: Observation) -> EgoMotion | None:
        """From the localised pose when the map is known, else dead reckoning from the
        speedometer and the last steering command through the bicycle model."""
        if obs.road is None:
            if self.snapshot is None:  # the first step
                return None
            dt = self.ctx.dt
            return EgoMotion(obs.speed * dt, step_turn(obs.speed, self.last_steering, dt, WHEELBASE_M))
        ego = obs.road.ego
        last, self.last_pose = self.last_pose, ego
        if last is None:
            return None
        d = ego.position - last.position
        return EgoMotion(float(np.hypot(*d)), float((ego.heading - last.heading + np.pi) % (2 * np.pi) - np.pi))

    @staticmethod
    def _accel(speed: float, desired: float, plan: Trajectory, tracks: list[Track]) -> float:
        """IDM on the nearest vehicle along the plan (Frenet: in a curve, ego-frame y would miss it)."""
        s0 = frenet(plan.points)[0]
        ahead = [(s - s0, t) for t in tracks for s, d, _ in [frenet(plan.points, t.position)]
                 if s > s0 and abs(d) < 2.0]
        if not ahead:
            return idm_acceleration(speed, desired) / 5.0
        distance, t = min(ahead, key=lambda a: a[0])
        gap = distance - (WHEELBASE_M + t.length) / 2
        return idm_acceleration(speed, desired, max(gap, 0.1), speed - float(np.linalg.norm(t.velocity))) / 5.0
