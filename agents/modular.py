"""The modular contestant: detector -> tracker -> trajectory planner -> steering controller.

Every stage is an option: `detector=classical|ground_truth`, `controller=pure_pursuit|stanley`;
lanes come from the map (`lanes=map`, an HD-map prior: lane centre lines and the ego's localised
pose). With the classical detector the agent uses pixels and the map ("pixels+map"); with the
ground-truth detector it is privileged (the oracle of the ceiling analysis).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from steerbench.perception.classical import ClassicalDetector
from steerbench.perception.tracker import EgoMotion, KalmanTracker, TrackerOptions
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.planning.controllers import PurePursuit, Stanley
from steerbench.planning.lanes import LaneTracker
from steerbench.planning.planner import Lane, Manoeuvre, Trajectory, TrajectoryPlanner
from steerbench.sim.longitudinal import idm_acceleration
from steerbench.sim.types import EpisodeInfo, GroundTruth, Observation, RoadPrior, VehicleState

from .base import AgentInfo

STAGES = ("detect", "track", "plan", "control")
LOOKAHEAD_M = 100.0  # [m] of lane centre line handed to the planner
BEHIND_M = 5.0  # [m] of it behind the ego


@dataclass(frozen=True)
class ModularOptions:
    detector: Literal["classical", "ground_truth"] = "classical"
    lanes: Literal["map"] = "map"  # pixel lane detection is still to come
    controller: Literal["pure_pursuit", "stanley"] = "pure_pursuit"
    cruise_speed: float = 30.0  # [m/s] desired speed, capped by each lane's limit


class ModularAgent:
    Options = ModularOptions
    info = AgentInfo("modular", "pixels+map", "detector -> tracker -> planner -> controller")

    def __init__(self, options: ModularOptions = ModularOptions()) -> None:
        self.o = options
        privileged = options.detector == "ground_truth"
        self.info = AgentInfo("modular", "privileged" if privileged else "pixels+map",
                              f"detector={options.detector}, lanes={options.lanes}, controller={options.controller}")
        self.controller = PurePursuit() if options.controller == "pure_pursuit" else Stanley()
        self.planner = TrajectoryPlanner()
        self.tracker = KalmanTracker()
        self.detector: ClassicalDetector | None = None
        self.lane: LaneTracker | None = None
        self.full = False
        self.last_pose: VehicleState | None = None
        self.manoeuvre: tuple[int, Manoeuvre] | None = None  # (target lane id, manoeuvre)
        self.last_plan: Trajectory | None = None
        self.dt = 0.2  # [s] policy period, set per episode
        self._clear_stats()

    def reset(self, episode: EpisodeInfo) -> None:
        self.tracker = KalmanTracker(TrackerOptions(dt=1.0 / episode.policy_hz))
        cam = episode.camera
        if cam is not None:
            self.detector = ClassicalDetector(FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering))
        self.lane, self.last_pose = None, None
        self.manoeuvre, self.last_plan = None, None
        self.dt = 1.0 / episode.policy_hz
        self.full = episode.mode == "full"
        self._clear_stats()

    def _clear_stats(self) -> None:
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

    def act(self, obs: Observation) -> np.ndarray:
        road = obs.road
        if road is None:
            raise RuntimeError("the modular agent needs the map (inputs pixels+map)")
        if self.lane is None:
            self.lane = LaneTracker(road.network, road.ego.lane_index, road.route)
        if road.ego.lane_index[:2] == self.lane.lane[:2]:
            self.lane.lane = road.ego.lane_index  # a lane change happened: plan from the new lane
        self.lane.update(road.ego.position, road.ego.lane_index)
        t0 = time.perf_counter()
        detections = self._detect(obs)
        t1 = time.perf_counter()
        tracks = self.tracker.update(detections, self._ego_motion(road.ego))
        confirmed = [t for t in tracks if t.confirmed]
        t2 = time.perf_counter()
        desired = self._desired_speed(road)
        plan = self.planner.plan(self._lanes(road), confirmed, obs.speed, desired, self._ongoing())
        self._remember(plan)
        t3 = time.perf_counter()
        ego_here = VehicleState(0.0, 0.0, 0.0, obs.speed, road.ego.length, road.ego.width)
        steering = self.controller.steer(plan.points, ego_here)
        t4 = time.perf_counter()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.latency[stage].append(seconds * 1000.0)
        self.counts["detections"] += len(detections)
        self.counts["lane_changes_planned"] += int(plan.lane_offset != 0)
        accel = self._accel(obs.speed, desired, plan, confirmed) if self.full else 0.0
        return np.array([accel, steering])

    # -- stages -----------------------------------------------------------------------------
    def _detect(self, obs: Observation) -> list[Detection]:
        if self.o.detector == "ground_truth":
            return _truth_detections(obs.truth)
        if self.detector is None:
            raise RuntimeError("the classical detector needs the camera geometry in EpisodeInfo")
        return self.detector.detect(obs.frames)

    def _ego_motion(self, ego: VehicleState) -> EgoMotion | None:
        last, self.last_pose = self.last_pose, ego
        if last is None:
            return None
        d = ego.position - last.position
        return EgoMotion(float(np.hypot(*d)), float((ego.heading - last.heading + np.pi) % (2 * np.pi) - np.pi))

    def _ongoing(self) -> Manoeuvre | None:
        """The manoeuvre under way, its target re-expressed relative to the ego's lane now."""
        if self.manoeuvre is None:
            return None
        target, m = self.manoeuvre
        return Manoeuvre(target - self.lane.lane[2], m.start_offset_m, m.elapsed_s)

    def _remember(self, plan: Trajectory) -> None:
        m = plan.manoeuvre
        done = m is None or m.elapsed_s + self.dt >= self.planner.p.change_s
        self.manoeuvre = None if done else (self.lane.lane[2] + m.lane_offset, m.advanced(self.dt))
        self.last_plan = plan

    def _desired_speed(self, road: RoadPrior) -> float:
        limit = getattr(road.network.get_lane(self.lane.lane), "speed_limit", None) or np.inf
        return float(min(self.o.cruise_speed, limit))

    def _lanes(self, road: RoadPrior) -> list[Lane]:
        """Centre lines of the tracked lane and its drivable neighbours, in the ego frame."""
        net, ego = road.network, road.ego
        out = [Lane(0, _centre_line(net, self.lane.lane, self.lane.route, ego))]
        for side in self.lane.side_lanes():
            offset = side[2] - self.lane.lane[2]
            out.append(Lane(int(np.sign(offset)), _centre_line(net, side, self.lane.route, ego)))
        return out

    @staticmethod
    def _accel(speed: float, desired: float, plan, tracks) -> float:
        lead = [t for t in tracks if t.position[0] > 0 and abs(t.position[1] - plan.points[-1, 1]) < 2.0]
        if not lead:
            return idm_acceleration(speed, desired) / 5.0
        t = min(lead, key=lambda t: t.position[0])
        gap = t.position[0] - (5.0 + t.length) / 2
        return idm_acceleration(speed, desired, max(gap, 0.1), speed - t.velocity[0]) / 5.0


def _truth_detections(truth: GroundTruth | None) -> list[Detection]:
    if truth is None:
        raise RuntimeError("detector=ground_truth needs privileged inputs")
    ego = truth.ego
    out = []
    for v in truth.others:
        x, y = ego.to_local(v.position)[0]
        if -40.0 < x < 80.0 and abs(y) < 30.0:
            out.append(Detection(np.zeros((4, 2)), np.array([x, y]), v.length, v.width,
                                 float((v.heading - ego.heading + np.pi) % (2 * np.pi) - np.pi), 1.0))
    return out


def _centre_line(net, lane_index, route, ego: VehicleState, step: float = 2.0) -> np.ndarray:
    """LOOKAHEAD_M of centre line from BEHIND_M behind the ego, across segment ends, ego frame."""
    lane = net.get_lane(lane_index)
    s = lane.local_coordinates(ego.position)[0] - BEHIND_M
    remaining = LOOKAHEAD_M + BEHIND_M
    pts: list[np.ndarray] = []
    tracker = LaneTracker(net, lane_index, route)
    for _ in range(6):
        stop = min(lane.length, s + remaining)
        pts += [lane.position(si, 0.0) for si in np.arange(max(s, 0.0), stop, step)]
        remaining -= stop - s
        nxt = net.next_lane(tracker.lane, route=tracker.remaining_route(), position=lane.position(lane.length, 0.0))
        if remaining <= 0 or nxt == tracker.lane:
            break
        tracker.lane, lane = nxt, net.get_lane(nxt)
        # Joined segments may overlap by a little: go on from abreast of the last point, never
        # back (a backwards step would flip the polyline's tangent and the sign of offsets).
        s = lane.local_coordinates(pts[-1])[0] + step if pts else 0.0
    if len(pts) < 2:
        pts = [lane.position(0, 0), lane.position(lane.length, 0)]
    return ego.to_local(np.array(pts))
