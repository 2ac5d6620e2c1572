"""Accuracy of pixel lane detection per scenario and split, against the road network.

Drives `--episodes` episodes per scenario and split (seeds 0...) for `--steps` policy steps with
a privileged lane follower whose target weaves across the lane (+-`--weave` of the lane width,
8 s period), so that the ego is off-centre and at an angle to its lane, and runs
`PixelLaneDetector` on every frame. Prints, over the frames: the share with a valid estimate;
over those, the median and 95th percentile of the absolute error in lateral offset (against
`lane.local_coordinates(ego)[1]`), in heading (against ego heading - lane heading) and in the ego
lane centre line's lateral position 15 m ahead (against the map's centre line, where the
estimate's range reaches that far); neighbour lanes offered where the road has none (per 100
frames) and true neighbours missed (share); the detection's CPU time per frame.

`--fix-render` measures the detector alone, on frames without two renderer artefacts (patched
here at run time, sim/ untouched): solid lines of curved lanes drawn stripe by stripe instead of
as one chord per lane (highway-env's CONTINUOUS_LINE), and the camera rotating about the ego's
pixel centre, so that the ego sits at its nominal pixel at every heading.
Usage: python bench/pixel_lanes.py [--episodes 3] [--steps 60] [--weave 0.25] [--fix-render]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from highway_env.road.lane import LineType, StraightLane

from steerbench.perception.lanes import LaneEstimate, PixelLaneDetector
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lanes import LaneFollower, LaneTracker, centre_line
from steerbench.sim.camera import Camera
from steerbench.sim.env import SteerEnv, vehicle_state
from steerbench.sim.scenarios import SUITE

AHEAD_M = 15.0  # [m] where the centre line is compared


@dataclass(frozen=True)
class Sample:
    estimate: LaneEstimate
    offset: float  # [m] true lateral offset, lane.local_coordinates(ego)[1]
    heading: float  # [rad] true ego heading - lane heading
    centre_y: float  # [m] the map centre line's y at AHEAD_M (ego frame); nan where it has none
    neighbours: set  # the offsets (-1, +1) of the lanes beside the ego's on its road
    ms: float  # CPU time of the detection


def truth(env: SteerEnv) -> tuple[float, float, float, set]:
    ego, net = env.core.vehicle, env.core.road.network
    lane = net.get_lane(ego.lane_index)
    s, lateral = lane.local_coordinates(ego.position)
    heading = (ego.heading - lane.heading_at(s) + np.pi) % (2 * np.pi) - np.pi
    line = map_centre(env)
    turn = np.flatnonzero(np.diff(line[:, 0]) <= 0)  # on a curve it turns back beyond 90 degrees
    line = line[: turn[0] + 1] if len(turn) else line
    centre_y = float(np.interp(AHEAD_M, line[:, 0], line[:, 1], left=np.nan, right=np.nan)) if len(line) > 1 else np.nan
    a, b, i = ego.lane_index
    n = len(net.graph[a][b])
    return float(lateral), float(heading), centre_y, {o for o in (-1, 1) if 0 <= i + o < n}


def map_centre(env, ahead_m: float = 40.0, step_m: float = 1.0) -> np.ndarray:
    """The ego lane's centre line from abreast of the ego to `ahead_m` along the route, ego frame."""
    ego = env.core.vehicle
    return centre_line(
        env.core.road.network, ego.lane_index, env.route_lanes(), vehicle_state(ego), 0.0, ahead_m, step_m
    )


def fix_render(env: SteerEnv) -> None:
    """Curved lanes' solid lines drawn as CONTINUOUS (stripe by stripe, following the curve)."""
    for lane in env.core.road.network.lanes_list():
        if type(lane) is not StraightLane:
            lane.line_types = tuple(
                LineType.CONTINUOUS if t == LineType.CONTINUOUS_LINE else t for t in lane.line_types
            )


def _affine_about_ego(self: Camera, pose) -> np.ndarray:
    """Camera._affine rotating about the ego's own pixel centre (canvas index canvas/2 - 0.5)."""
    ego = np.full(2, self.canvas / 2 - 0.5)
    c, si = np.cos(pose.heading), np.sin(pose.heading)
    rot = np.array([[c, si], [-si, c]])
    target = np.round([self.config.centering[0] * self.config.width, self.config.centering[1] * self.config.height])
    return np.hstack([rot, (target - 0.5 - rot @ ego)[:, None]])


def drive(env: SteerEnv, seed: int, steps: int, weave: float, fixed: bool):
    """Sample per step of one episode driven by a lane follower with a weaving target."""
    obs, _ = env.reset(seed=seed)
    if fixed:
        fix_render(env)
        obs["frames"] = env._capture()[None]  # the first frame again, with the fixed lines
    c = env.camera_config
    detector = PixelLaneDetector(FrameGeometry(c.width, c.height, c.scaling, c.centering))
    follower = LaneFollower()
    tracker = LaneTracker(env.core.road.network, env.core.vehicle.lane_index, env.route_lanes())
    for t in range(steps):
        t0 = time.thread_time()
        est = detector.detect(obs["frames"])
        ms = (time.thread_time() - t0) * 1000.0
        yield Sample(est, *truth(env), ms)
        ego = env.core.vehicle
        tracker.update(ego.position, ego.lane_index)
        lane = env.core.road.network.get_lane(tracker.lane)
        bias = weave * lane.width_at(0.0) * np.sin(2 * np.pi * t / (8.0 * env.policy_hz))
        obs, _, terminated, truncated, _ = env.step(np.array([0.0, follower.steer(lane, vehicle_state(ego), bias)]))
        if terminated or truncated:
            break


def centre_error(s: Sample) -> float:
    lane = s.estimate.lanes[0]
    if not (lane.x_range[0] <= AHEAD_M <= lane.x_range[1]) or np.isnan(s.centre_y):
        return np.nan
    return abs(float(lane.coef @ [1.0, AHEAD_M, AHEAD_M**2]) - s.centre_y)


def row(scenario: str, split: str, samples: list[Sample]) -> str:
    ok = [s for s in samples if s.estimate.valid]
    off = np.array([abs(s.estimate.offset_m - s.offset) for s in ok])
    head = np.degrees([abs(s.estimate.heading - s.heading) for s in ok])
    cen = np.array([centre_error(s) for s in ok])
    cen = cen[~np.isnan(cen)]
    offered = [({lane.offset for lane in s.estimate.lanes} & {-1, 1}, s.neighbours) for s in ok]
    false = sum(len(o - n) for o, n in offered) / max(len(ok), 1) * 100
    missed = sum(len(n - o) for o, n in offered) / max(sum(len(n) for _, n in offered), 1)
    ms = np.array([s.ms for s in samples])

    def q(a: np.ndarray) -> str:
        return f"{np.median(a):.2f} / {np.percentile(a, 95):.2f}" if len(a) else "-"

    return (
        f"| {scenario} | {split} | {len(samples)} | {len(ok) / max(len(samples), 1):.2f} | {q(off)} | {q(head)} | "
        f"{q(cen)} ({len(cen)}) | {false:.0f} / {missed:.2f} | {np.mean(ms):.1f} / {np.percentile(ms, 95):.1f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--weave", type=float, default=0.25)
    p.add_argument("--scenarios", default=",".join(SUITE))
    p.add_argument("--fix-render", action="store_true", help="patch two renderer artefacts (see above)")
    args = p.parse_args()
    if args.fix_render:
        Camera._affine = _affine_about_ego
    print(
        "| scenario | split | frames | valid | offset err m (median / p95) | heading err deg (median / p95) "
        f"| centre err at {AHEAD_M:g} m (median / p95, frames) | false lanes per 100 / missed share "
        "| CPU ms per frame (mean / p95) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for split in ("train", "test"):
        for scenario in args.scenarios.split(","):
            env = SteerEnv(scenario, split)
            samples = [
                s for seed in range(args.episodes) for s in drive(env, seed, args.steps, args.weave, args.fix_render)
            ]
            env.close()
            print(row(scenario, split, samples), flush=True)


if __name__ == "__main__":
    main()
