"""The built-in planner and controller stages of the modular agent (the contract: `stages`).

- `planner=candidates`: the candidate planner of `planning.planner` (its `PlannerParams` as
  options), which this stage gives a memory: the lane change under way is handed back to the
  next plan, its target re-expressed relative to the ego's lane of the moment.
- `controller=pure_pursuit` or `stanley` (`planning.controllers`), their parameters as options.
"""

from __future__ import annotations

from typing import Sequence

from steerbench.perception.tracker import Track
from steerbench.planning.controllers import PurePursuit, PurePursuitParams, Stanley, StanleyParams
from steerbench.planning.planner import LaneView, Manoeuvre, PlannerParams, Trajectory, TrajectoryPlanner
from steerbench.sim.types import Observation, VehicleState

from .stages import StageContext

WHEELBASE_M = 5.0  # [m] of the ego's bicycle model (highway-env's vehicle length)
EGO_WIDTH_M = 2.0  # [m]


def ego_state(speed: float) -> VehicleState:
    """The ego in its own frame: at the origin, heading along x."""
    return VehicleState(0.0, 0.0, 0.0, speed, WHEELBASE_M, EGO_WIDTH_M)


class CandidatePlanner:
    """Candidates along the lanes, prediction, rejection, scoring (`planning.planner`)."""

    Options = PlannerParams
    inputs = "pixels"

    def __init__(self, params: PlannerParams = PlannerParams()) -> None:
        self.planner = TrajectoryPlanner(params)
        self.reset(StageContext(None, 0.2, False))

    def reset(self, ctx: StageContext) -> None:
        self.dt = ctx.dt
        self.manoeuvre: tuple[int, Manoeuvre] | None = None  # (target lane id, manoeuvre)
        self.candidates: list[Trajectory] = []

    def plan(self, obs: Observation, tracks: Sequence[Track], lanes: LaneView, desired_speed: float) -> Trajectory:
        self.candidates = self.planner.candidates(lanes.lanes, tracks, obs.speed, desired_speed, self._ongoing(lanes))
        plan = self.planner.choose(self.candidates)
        self._remember(plan, lanes)
        return plan

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


class PurePursuitStage:
    """Pure pursuit along the plan's points (Coulter, 1992)."""

    Options = PurePursuitParams
    inputs = "pixels"

    def __init__(self, params: PurePursuitParams = PurePursuitParams()) -> None:
        self.controller = PurePursuit(params)

    def steer(self, obs: Observation, plan: Trajectory) -> float:
        return self.controller.steer(plan.points, ego_state(obs.speed))


class StanleyStage:
    """Stanley's heading and cross-track law along the plan's points (Thrun et al., 2006)."""

    Options = StanleyParams
    inputs = "pixels"

    def __init__(self, params: StanleyParams = StanleyParams()) -> None:
        self.controller = Stanley(params)

    def steer(self, obs: Observation, plan: Trajectory) -> float:
        return self.controller.steer(plan.points, ego_state(obs.speed))
