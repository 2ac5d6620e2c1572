"""The modular contestant: detector -> tracker -> trajectory planner -> steering controller.

Every stage is an option:
- `detector=classical|learned|ground_truth` (`learned` needs `checkpoint=PATH` from
  `steerbench train-detector`);
- `tracker=kalman|ground_truth` (the oracle gives true positions and velocities: ceiling analysis);
- `lanes=map|pixels`: lane centre lines from the road network and the ego's localised pose (an
  HD-map prior), or from lane markings detected in the frames;
- `controller=pure_pursuit|stanley`.
Its inputs follow: any oracle makes it `privileged`; map lanes make it `pixels+map`; pixel lanes
with a pixel detector make it `pixels`, the same inputs as the end-to-end network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from steerbench.perception.classical import ClassicalDetector, newest
from steerbench.perception.tracker import EgoMotion, KalmanTracker, Track, TrackerOptions
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.planning.controllers import STEERING_RANGE, PurePursuit, Stanley
from steerbench.planning.planner import Manoeuvre, Trajectory, TrajectoryPlanner, frenet
from steerbench.sim.longitudinal import idm_acceleration
from steerbench.sim.types import EpisodeInfo, GroundTruth, Observation, VehicleState

from .base import AgentInfo
from .modular_lanes import LaneView, MapLanes, PixelLanes
from .modular_overlay import Snapshot, draw

STAGES = ("detect", "track", "plan", "control")
WHEELBASE_M = 5.0  # [m] of the ego's bicycle model (highway-env's vehicle length)


@dataclass(frozen=True)
class ModularOptions:
    detector: Literal["classical", "learned", "ground_truth"] = "classical"
    tracker: Literal["kalman", "ground_truth"] = "kalman"
    lanes: Literal["map", "pixels"] = "map"
    controller: Literal["pure_pursuit", "stanley"] = "pure_pursuit"
    checkpoint: str = ""  # weights of the learned detector (steerbench train-detector)
    cruise_speed: float = 30.0  # [m/s] desired speed, capped by each lane's limit when the map is known

    def __post_init__(self) -> None:
        if self.detector == "learned" and not self.checkpoint:
            raise ValueError("detector=learned needs checkpoint=PATH (from steerbench train-detector)")
        if self.cruise_speed <= 0:
            raise ValueError(f"cruise_speed must be > 0, got {self.cruise_speed}")

    @property
    def inputs(self) -> str:
        if "ground_truth" in (self.detector, self.tracker):
            return "privileged"
        return "pixels+map" if self.lanes == "map" else "pixels"


class ModularAgent:
    Options = ModularOptions
    info = AgentInfo("modular", "pixels+map", "detector -> tracker -> planner -> controller")

    def __init__(self, options: ModularOptions = ModularOptions()) -> None:
        self.o = options
        self.info = AgentInfo("modular", options.inputs,
                              f"detector={options.detector}, tracker={options.tracker}, lanes={options.lanes}, "
                              f"controller={options.controller}")
        self.controller = PurePursuit() if options.controller == "pure_pursuit" else Stanley()
        self.planner = TrajectoryPlanner()
        if options.detector == "learned":
            _learned(options.checkpoint, None)  # a missing or bad checkpoint fails now, in one line
        self._episode(0.2, None, False)

    def reset(self, episode: EpisodeInfo) -> None:
        cam = episode.camera
        geometry = FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering) if cam is not None else None
        self._episode(1.0 / episode.policy_hz, geometry, episode.mode == "full")

    def _episode(self, dt: float, geometry: FrameGeometry | None, full: bool) -> None:
        self.dt, self.geometry, self.full = dt, geometry, full
        self.tracker = KalmanTracker(TrackerOptions(dt=dt))
        self.detector = None
        if geometry is not None and self.o.detector == "classical":
            self.detector = ClassicalDetector(geometry)
        elif geometry is not None and self.o.detector == "learned":
            self.detector = _learned(self.o.checkpoint, geometry)  # the ego's pixel differs by scenario
        self.map_lanes = MapLanes()
        self.pixel_lanes = PixelLanes(geometry, dt) if geometry is not None and self.o.lanes == "pixels" else None
        self.last_pose: VehicleState | None = None
        self.last_steering = 0.0
        self.manoeuvre: tuple[int, Manoeuvre] | None = None  # (target lane id, manoeuvre)
        self.snapshot: Snapshot | None = None
        self.latency: dict[str, list[float]] = {stage: [] for stage in STAGES}
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
        return out

    def overlay(self) -> np.ndarray | None:
        """The last step drawn: frame, detections, tracks, lanes, candidates and the plan."""
        if self.snapshot is None or self.geometry is None:
            return None
        return draw(self.snapshot, self.geometry)

    def act(self, obs: Observation) -> np.ndarray:
        motion = self._ego_motion(obs)
        t0 = time.perf_counter()
        detections = self._detect(obs)
        t1 = time.perf_counter()
        tracks = self._track(obs, detections, motion)
        t2 = time.perf_counter()
        view = self._lanes(obs, motion)
        desired = min(self.o.cruise_speed, view.speed_limit or np.inf)
        candidates = self.planner.candidates(view.lanes, tracks, obs.speed, desired, self._ongoing(view))
        plan = self.planner.choose(candidates)
        self._remember(plan, view)
        t3 = time.perf_counter()
        steering = self.controller.steer(plan.points, VehicleState(0.0, 0.0, 0.0, obs.speed, WHEELBASE_M, 2.0))
        t4 = time.perf_counter()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.latency[stage].append(seconds * 1000.0)
        self.counts["detections"] += len(detections)
        self.counts["lane_changes_planned"] += int(plan.lane_offset != 0)
        self.snapshot = Snapshot(newest(obs.frames), detections, tracks, view.lanes, candidates, plan)
        self.last_steering = steering
        accel = self._accel(obs.speed, desired, plan, tracks) if self.full else 0.0
        return np.array([accel, steering])

    # -- stages -----------------------------------------------------------------------------
    def _detect(self, obs: Observation) -> list[Detection]:
        if self.o.tracker == "ground_truth":
            return []  # the oracle tracks need no detections
        if self.o.detector == "ground_truth":
            return _truth_detections(obs.truth)
        if self.detector is None:
            raise RuntimeError("a pixel detector needs the camera geometry in EpisodeInfo")
        return self.detector.detect(obs.frames)

    def _track(self, obs: Observation, detections: list[Detection], motion: EgoMotion | None) -> list[Track]:
        if self.o.tracker == "ground_truth":
            return _truth_tracks(obs.truth)
        return [t for t in self.tracker.update(detections, motion) if t.confirmed]

    def _lanes(self, obs: Observation, motion: EgoMotion | None) -> LaneView:
        if self.pixel_lanes is not None:
            return self.pixel_lanes.view(obs, None if motion is None else (motion.distance_m, motion.dheading))
        return self.map_lanes.view(obs)

    def _ego_motion(self, obs: Observation) -> EgoMotion | None:
        """From the localised pose when the map is known, else dead reckoning from the
        speedometer and the last steering command through the bicycle model."""
        if obs.road is None:
            if self.snapshot is None:  # the first step
                return None
            distance = obs.speed * self.dt
            beta = np.arctan(0.5 * np.tan(self.last_steering * STEERING_RANGE))
            return EgoMotion(distance, float(distance * 2 * np.sin(beta) / WHEELBASE_M))
        ego = obs.road.ego
        last, self.last_pose = self.last_pose, ego
        if last is None:
            return None
        d = ego.position - last.position
        return EgoMotion(float(np.hypot(*d)), float((ego.heading - last.heading + np.pi) % (2 * np.pi) - np.pi))

    def _ongoing(self, view: LaneView) -> Manoeuvre | None:
        """The manoeuvre under way, its target re-expressed relative to the ego's lane now."""
        if self.manoeuvre is None:
            return None
        target, m = self.manoeuvre
        return Manoeuvre(target - view.lane_id, m.start_offset_m, m.elapsed_s)

    def _remember(self, plan: Trajectory, view: LaneView) -> None:
        m = plan.manoeuvre
        done = m is None or m.elapsed_s + self.dt >= self.planner.p.change_s
        self.manoeuvre = None if done else (view.lane_id + m.lane_offset, m.advanced(self.dt))

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


def _learned(checkpoint: str, geometry: FrameGeometry | None):
    from steerbench.perception.learned import LearnedDetector  # imports torch: only when asked for

    return LearnedDetector(checkpoint, geometry)


def _truth_detections(truth: GroundTruth | None) -> list[Detection]:
    if truth is None:
        raise RuntimeError("detector=ground_truth needs privileged inputs")
    ego = truth.ego
    out = []
    for v in truth.others:
        x, y = ego.to_local(v.position)[0]
        if -40.0 < x < 80.0 and abs(y) < 30.0:
            out.append(
                Detection(
                    np.zeros((4, 2)),
                    np.array([x, y]),
                    v.length,
                    v.width,
                    float((v.heading - ego.heading + np.pi) % (2 * np.pi) - np.pi),
                    1.0,
                )
            )
    return out


def _truth_tracks(truth: GroundTruth | None) -> list[Track]:
    """The oracle tracker: every nearby vehicle with its true position and velocity, ego frame."""
    if truth is None:
        raise RuntimeError("tracker=ground_truth needs privileged inputs")
    ego, out = truth.ego, []
    for i, v in enumerate(truth.others):
        pos, ahead = ego.to_local(np.stack([v.position, v.position + v.velocity]))
        if -40.0 < pos[0] < 80.0 and abs(pos[1]) < 30.0:
            heading = float((v.heading - ego.heading + np.pi) % (2 * np.pi) - np.pi)
            out.append(Track(i, pos, ahead - pos, v.length, v.width, heading, 1, 0, True))
    return out
