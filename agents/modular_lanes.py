"""The built-in lane sources of the modular agent: the map prior (`lanes=map`) or pixels (`lanes=pixels`).

Both give the planner centre lines in the ego frame (offset 0 = the ego's lane, -1 left, +1
right) and an integer id of the ego's lane, counted left to right, so that a lane change under
way can be followed across the moment the ego crosses into its target lane (`LaneView`; the
contract: `stages.LaneSource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.perception.lane_types import PixelLaneOptions
from steerbench.perception.lanes import LaneEstimate, PixelLaneDetector
from steerbench.perception.tracker import EgoMotion, Track
from steerbench.planning.lanes import LaneTracker, centre_line
from steerbench.planning.planner import Lane, LaneView
from steerbench.sim.types import Observation, RoadPrior, VehicleState

from .stages import StageContext

LOOKAHEAD_M = 100.0  # [m] of lane centre line handed to the planner
BEHIND_M = 5.0  # [m] of it behind the ego
HOLD_S = 1.0  # [s] pixel lanes lost for longer than this are replaced by a straight lane ahead


@dataclass(frozen=True)
class MapLaneOptions:
    """`bridge`: where a segment's next lane starts away from its end, follow both lanes to where
    they cross instead of a chord across the gap (planning/lanes.centre_line). On by default: the
    chord cuts the roundabout's exits into the verge (docs/planning.md, "Map lanes across a gap")."""

    bridge: bool = True


class MapLanes:
    """The road network's lane centre lines, from the ego's localised pose (an HD-map prior)."""

    Options = MapLaneOptions
    inputs = "pixels+map"

    def __init__(self, options: MapLaneOptions = MapLaneOptions()) -> None:
        self.options = options
        self.tracker: LaneTracker | None = None

    def reset(self, ctx: StageContext | None = None) -> None:
        self.tracker = None

    def view(self, obs: Observation, motion: EgoMotion | None = None, tracks: Sequence[Track] = ()) -> LaneView:
        road = obs.road
        if road is None:
            raise RuntimeError("lanes=map needs the map prior (inputs pixels+map)")
        lane = self._follow(road)
        net, ego = road.network, road.ego
        bridge = self.options.bridge
        lanes = [Lane(0, centre_line(net, lane.lane, lane.route, ego, BEHIND_M, LOOKAHEAD_M, bridge=bridge))]
        for side in lane.side_lanes():
            offset = int(np.sign(side[2] - lane.lane[2]))
            lanes.append(Lane(offset, centre_line(net, side, lane.route, ego, BEHIND_M, LOOKAHEAD_M, bridge=bridge)))
        limit = getattr(net.get_lane(lane.lane), "speed_limit", None)
        return LaneView(lanes, int(lane.lane[2]), float(limit) if limit else None)

    def _follow(self, road: RoadPrior) -> LaneTracker:
        if self.tracker is None:
            self.tracker = LaneTracker(road.network, road.ego.lane_index, road.route)
        if road.ego.lane_index[:2] == self.tracker.lane[:2]:
            self.tracker.lane = road.ego.lane_index  # a lane change happened: plan from the new lane
        self.tracker.update(road.ego.position, road.ego.lane_index)
        return self.tracker


class PixelLanes:
    """Lane markings detected in the newest frame (perception.lanes). While the markings are
    lost, the last lanes are carried along by the ego's motion for up to HOLD_S, then a
    straight lane ahead is assumed. Its options are the marking detector's thresholds."""

    Options = PixelLaneOptions
    inputs = "pixels"

    def __init__(self, options: PixelLaneOptions = PixelLaneOptions()) -> None:
        self.o = options
        self.reset(StageContext(None, 0.2, False))

    def reset(self, ctx: StageContext) -> None:
        self.detector = PixelLaneDetector(ctx.geometry, self.o) if ctx.geometry is not None else None
        self.dt = ctx.dt
        self.last: LaneEstimate | None = None
        self.held: list[Lane] = []
        self.lost_s = 0.0
        self.lane_id = 0

    def view(self, obs: Observation, motion: EgoMotion | None, tracks: Sequence[Track] = ()) -> LaneView:
        if self.detector is None:
            raise RuntimeError("lanes=pixels needs the camera geometry in EpisodeInfo")
        est = self.detector.detect(obs.frames, prior=self.last)
        if est.valid:
            self._count_crossing(est)
            self.last, self.lost_s = est, 0.0
            self.held = [Lane(o, pts) for o, pts in est.centre_lines(BEHIND_M, 2.0)]
        else:
            self.lost_s += self.dt
            self.held = self._carried(motion) if self.lost_s <= HOLD_S and self.held else [_straight()]
        if not any(lane.offset == 0 for lane in self.held):
            self.held = [_straight(), *self.held]
        return LaneView(self.held, self.lane_id, None)

    def _count_crossing(self, est: LaneEstimate) -> None:
        """A jump of the offset by more than half a lane is the ego crossing into the next lane."""
        if self.last is None:
            return
        jump = est.offset_m - self.last.offset_m
        half = 0.5 * (est.width_m or 4.0)
        if jump > half:
            self.lane_id -= 1  # was on its lane's left edge, now on the right edge of the lane to the left
        elif jump < -half:
            self.lane_id += 1

    def _carried(self, motion: EgoMotion | None) -> list[Lane]:
        if motion is None:
            return self.held
        distance, dheading = motion.distance_m, motion.dheading
        pose = VehicleState(distance * np.cos(dheading / 2), distance * np.sin(dheading / 2), dheading, 0.0, 5.0, 2.0)
        return [Lane(lane.offset, pose.to_local(lane.centre)) for lane in self.held]


def _straight() -> Lane:
    return Lane(0, np.stack([np.arange(-BEHIND_M, LOOKAHEAD_M, 5.0), np.zeros(21)], axis=1))
