"""The privileged expert: the teacher of the learned agents and the human-level reference.

It reads ground truth, never pixels: it follows the scenario's route (exits and turns as the
command says) with a lane-following controller, and changes lane with MOBIL (Kesting et al.,
2007; the rule highway-env's traffic uses) when a lane is faster, or must change because its
lane ends or is blocked by an obstacle. In `full` mode it also drives the throttle with the same
IDM adaptive cruise the harness uses in `steering` mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steerbench.planning.lanes import STEERING_RANGE, LaneFollower, LaneFollowerParams, LaneTracker
from steerbench.planning.traffic import Neighbour, neighbours
from steerbench.sim.longitudinal import AdaptiveCruise, IDMParams, curvature_from_steering, idm_acceleration
from steerbench.sim.types import EpisodeInfo, GroundTruth, LaneIndex, Observation, VehicleState

from .base import AgentInfo


@dataclass(frozen=True)
class ExpertOptions:
    """The expert's options: MOBIL's lane-change rule and the lane follower's time constant. ValueError
    for `safe_braking` <= 0 or a negative `min_gap` or `cooldown`."""

    politeness: float = 0.1  # MOBIL: weight of the gains and losses of other drivers
    gain_threshold: float = 0.2  # [m/s2] MOBIL: acceleration advantage needed to change lane
    safe_braking: float = 3.0  # [m/s2] most braking a lane change may impose on the new follower
    min_gap: float = 4.0  # [m] bumper-to-bumper room needed ahead and behind in the new lane
    cooldown: float = 1.5  # [s] between two lane changes
    obstacle_lookahead: float = 70.0  # [m] a static obstacle this close ahead forces a change
    overtake_on_routes: bool = False  # discretionary changes on goal routes (ring lanes, turns)
    tau_lateral: float = 0.6  # [s] lateral-offset time constant of the lane follower
    # DAgger's labeller: another agent drives, so the expert's own lane choices never happen and
    # a chosen lane it never reaches would label every later state "full lock towards it". With
    # this set it follows the lane the ego is in and changes lane only when it must.
    follow_ego_lane: bool = False

    def __post_init__(self) -> None:
        if self.safe_braking <= 0 or self.min_gap < 0 or self.cooldown < 0:
            raise ValueError("safe_braking must be > 0, min_gap and cooldown >= 0")


class ExpertAgent:
    """The privileged expert (see the module docstring); its inputs are `privileged`."""

    Options = ExpertOptions
    info = AgentInfo("expert", "privileged", "route following + MOBIL lane changes from ground truth")

    def __init__(self, options: ExpertOptions = ExpertOptions()) -> None:
        self.o = options
        self.follower = LaneFollower(LaneFollowerParams(tau_lateral=options.tau_lateral))
        self.cruise = AdaptiveCruise()
        self.idm = IDMParams()
        self.tracker: LaneTracker | None = None
        self.full = False
        self.last_change = -np.inf

    def reset(self, episode: EpisodeInfo) -> None:
        """Forget the followed lane and the last lane change, and read the mode: the expert drives the
        throttle only in `full` mode."""
        self.tracker = None
        self.full = episode.mode == "full"
        self.last_change = -np.inf

    def act(self, obs: Observation) -> np.ndarray:
        """`[acceleration, steering]` from ground truth: at most one lane change per `cooldown` seconds;
        acceleration 0 unless the episode's mode is `full`. RuntimeError when the observation has no
        ground truth."""
        truth = obs.truth
        if truth is None:
            raise RuntimeError("the expert is privileged and got no ground truth")
        if self.tracker is None:
            self.tracker = LaneTracker(truth.network, truth.ego.lane_index, truth.route)
        self.tracker.update(truth.ego.position, truth.ego.lane_index)
        if self.o.follow_ego_lane and not truth.network.get_lane(truth.ego.lane_index).forbidden:
            self.tracker.lane = truth.ego.lane_index
        if truth.time - self.last_change >= self.o.cooldown:
            target = self._choose_lane(truth)
            if target != self.tracker.lane:
                self.tracker.lane = target
                self.last_change = truth.time
        lane = truth.network.get_lane(self.tracker.lane)
        steering = self.follower.steer(lane, truth.ego)
        accel = 0.0
        if self.full:
            curvature = curvature_from_steering(steering, truth.ego.length, STEERING_RANGE)
            accel = self.cruise.accel(truth.ego, truth.others, truth.speed_limit, curvature)
        return np.array([accel, steering])

    # -- lane choice ----------------------------------------------------------------------
    def _choose_lane(self, truth: GroundTruth) -> LaneIndex:
        current = self.tracker.lane
        net = truth.network
        mandatory = net.get_lane(current).forbidden or self._obstacle_ahead(truth, current)
        if not mandatory and self.o.follow_ego_lane:
            return current
        if truth.route and not mandatory and not self.o.overtake_on_routes:
            return current  # on a roundabout or junction, a late lane change misses the exit
        best, best_gain = current, -np.inf
        for side in self.tracker.side_lanes():
            gain = self._mobil_gain(truth, current, side, mandatory)
            if gain is not None and gain > best_gain:
                best, best_gain = side, gain
        if best != current and (mandatory or best_gain >= self.o.gain_threshold):
            return best
        return current

    def _obstacle_ahead(self, truth: GroundTruth, lane: LaneIndex) -> bool:
        statics = [o for o in truth.others if o.kind == "obstacle" or o.speed < 0.5]
        leader, _ = neighbours(truth.network, lane, truth.ego, statics)
        return leader is not None and leader.gap < self.o.obstacle_lookahead

    def _accel(self, v: VehicleState, leader: Neighbour | None, desired: float) -> float:
        if leader is None:
            return idm_acceleration(v.speed, desired, p=self.idm)
        closing = v.speed - leader.vehicle.speed
        return idm_acceleration(v.speed, desired, max(leader.gap, 0.1), closing, self.idm)

    def _mobil_gain(self, truth: GroundTruth, current: LaneIndex, side: LaneIndex, mandatory: bool) -> float | None:
        """MOBIL incentive of moving to `side`, or None when the change is unsafe."""
        ego, net, desired = truth.ego, truth.network, truth.speed_limit
        new_lead, new_follow = neighbours(net, side, ego, truth.others)
        if (new_lead and new_lead.gap < self.o.min_gap) or (new_follow and new_follow.gap < self.o.min_gap):
            return None
        if new_follow is not None:
            follow_after = self._follower_accel(new_follow, Neighbour(ego, new_follow.gap))
            if follow_after < -self.o.safe_braking:
                return None
        ego_after = self._accel(ego, new_lead, desired)
        if mandatory:
            return ego_after + 10.0  # any safe change beats staying
        old_lead, old_follow = neighbours(net, current, ego, truth.others)
        gain = ego_after - self._accel(ego, old_lead, desired)
        if new_follow is not None:
            follow_before = self._follower_accel(new_follow, _without_ego(new_follow, new_lead, ego))
            gain += self.o.politeness * (follow_after - follow_before)
        if old_follow is not None:
            old_before = self._follower_accel(old_follow, Neighbour(ego, old_follow.gap))
            old_after = self._follower_accel(old_follow, _without_ego(old_follow, old_lead, ego))
            gain += self.o.politeness * (old_after - old_before)
        return gain

    def _follower_accel(self, follower: Neighbour, leader: Neighbour | None) -> float:
        # Other drivers' desired speeds are unknown: take a little above their current one.
        v = follower.vehicle
        return self._accel(v, leader, v.speed + 1.0)


def _without_ego(follower: Neighbour, leader: Neighbour | None, ego: VehicleState) -> Neighbour | None:
    """The follower's leader, as it would be if the ego were not between them."""
    return None if leader is None else Neighbour(leader.vehicle, follower.gap + leader.gap + ego.length)
