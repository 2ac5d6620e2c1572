"""Where an environment step's time goes, per scenario (cProfile, env.step only).

The privileged expert drives (lane changes, turns, interactions); only `SteerEnv.step` runs
under the profiler, so the agent's own time is not counted. For each scenario it prints the
mean step time, the share of named hot spots (cumulative time, which nest: a neighbour search
inside IDM/MOBIL counts in both; "road/graphics.py display" also matches stock `LaneGraphics.display`,
whose cumulative time RoadGraphics.display includes), and the top functions by cumulative and by self time.
Usage: python bench/profile_env.py [--scenarios all] [--split test] [--steps 150] [--top 15] [--fast]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from steerbench.agents.expert import ExpertAgent
from steerbench.sim.env import SteerEnv
from steerbench.sim.scenarios import episode_seed, parse_scenarios
from steerbench.sim.types import EpisodeInfo, Observation

# label -> (file suffix, function name) of the stock function and of its fast-core counterpart;
# the larger cumulative time counts (the fast one wraps or replaces the stock one).
HOT_SPOTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("simulation: highway-env step", (("common/abstract.py", "step"),)),
    ("  road.act: decisions of all vehicles", (("road/road.py", "act"), ("sim/fastcore.py", "act"))),
    ("    neighbour_vehicles", (("road/road.py", "neighbour_vehicles"), ("sim/fastcore.py", "neighbour_vehicles"))),
    ("    IDM acceleration", (("vehicle/behavior.py", "acceleration"),)),
    ("    MOBIL change_lane_policy", (("vehicle/behavior.py", "change_lane_policy"),)),
    ("    steering_control", (("vehicle/controller.py", "steering_control"),)),
    ("  right of way: enforce_road_rules", (("road/regulation.py", "enforce_road_rules"),)),
    ("  road.step: motion + collisions", (("road/road.py", "step"), ("sim/fastcore.py", "step"))),
    ("    Vehicle.step (kinematics)", (("vehicle/kinematics.py", "step"),)),
    ("    get_closest_lane_index", (("sim/fastroad.py", "get_closest_lane_index"),
                                    ("sim/fastcore.py", "get_closest_lane_index"))),
    ("    handle_collisions", (("vehicle/objects.py", "handle_collisions"),)),
    ("  close_objects_to", (("road/road.py", "close_objects_to"),)),
    ("rendering: camera", (("sim/camera.py", "render"),)),
    ("  lane markings", (("road/graphics.py", "display"), ("sim/fastdraw.py", "draw_road"))),
    ("  vehicles", (("road/graphics.py", "display_traffic"),)),
    ("harness: cruise control", (("sim/env.py", "_cruise_command"),)),
    ("harness: step record", (("sim/env.py", "_record"),)),
    ("harness: ground truth", (("sim/env.py", "_build_truth"),)),
)


def _cumulative(stats: pstats.Stats, places: tuple[tuple[str, str], ...]) -> float:
    """Largest cumulative time among functions matching (file suffix, name)."""
    return max((
        row[3] for (path, _line, func), row in stats.stats.items()  # type: ignore[attr-defined]
        for suffix, name in places if func == name and path.endswith(suffix)
    ), default=0.0)


def profile_scenario(scenario: str, split: str, steps: int, fast: bool) -> tuple[pstats.Stats, float, float]:
    """Profile `steps` env steps driven by the expert; (stats, wall ms per step, mean vehicles)."""
    env = SteerEnv(scenario, split, fast=fast)
    agent = ExpertAgent()
    profiler = cProfile.Profile()
    done, n, index, vehicles, wall = True, 0, 0, 0, 0.0
    while n < steps:
        if done:
            obs, _ = env.reset(seed=episode_seed(split, index))
            agent.reset(EpisodeInfo(scenario, split, episode_seed(split, index), index, env.policy_hz,
                                    env.mode, env.command, env.spec_.commands, env.max_steps, env.camera_config))
            index += 1
        view = Observation(obs["frames"], float(obs["speed"][0]), int(obs["command"]),
                           env.road_prior(), env.ground_truth())
        action = agent.act(view)
        start = time.perf_counter()
        profiler.enable()
        obs, _, term, trunc, _ = env.step(action)
        profiler.disable()
        wall += time.perf_counter() - start
        vehicles += len(env.core.road.vehicles)
        done, n = term or trunc, n + 1
    env.close()
    return pstats.Stats(profiler), 1000 * wall / steps, vehicles / steps


def report(scenario: str, split: str, stats: pstats.Stats, ms: float, vehicles: float, steps: int, top: int) -> None:
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n=== {scenario}/{split}: {ms:.1f} ms per step under the profiler, {vehicles:.1f} vehicles on average ===")
    for label, places in HOT_SPOTS:
        t = _cumulative(stats, places)
        if t:
            print(f"  {label:40s} {1000 * t / steps:7.2f} ms/step {100 * t / total:5.1f} %")
    for key in ("cumulative", "tottime"):
        print(f"--- top {top} by {key} ---")
        stats.sort_stats(key).print_stats(top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default="all")
    p.add_argument("--split", default="test", help="test: the denser distribution")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--fast", action="store_true", help="profile the fast simulation core instead of stock")
    args = p.parse_args()
    for spec in parse_scenarios(args.scenarios):
        stats, ms, vehicles = profile_scenario(spec.name, args.split, args.steps, args.fast)
        report(spec.name, args.split, stats, ms, vehicles, args.steps, args.top)


if __name__ == "__main__":
    main()
