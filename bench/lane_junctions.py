"""Where a learned lane model fails at the junctions: on a dataset's frames, and in closed loop.

`frames`: every frame of a scenario's `--split` in a dataset (the training frames with `--split
train`: what the model could not even fit), predicted once per navigation command. Prints, per
true command: the frames, the share whose ego lane is more than 2 m off the label at 20 m, the
90th percentile of that error, and how far apart the outputs for the different commands lie at
20 m (median): near 0, the model ignores the command.

`episodes`: the modular agent with the learned detector and the learned lanes on `--episodes`
episodes, each step's lane-model output logged against the map's lane label. Prints the failures
by category, the median error at 10 m of the measured and of the fused ego lane (what the planner
gets), and at the roundabout how many failures came on the ring beyond the commanded exit (the
car missed its exit and went on round) and, per commanded exit and outcome, the share of the
steps at the exit's fork (the last on the ring segment before it and the 4 after) whose ego lane
was more than 2 m off at 10 m. `frames` also prints, per command, how many frames bending right
(the label 2.5 m or more right at 10 m: into an exit or a turn) are more than 2 m off at 10 m.

Usage:
  python bench/lane_junctions.py frames --data DATA --checkpoint LANES [--split train] [--scenario intersection]
  python bench/lane_junctions.py episodes --detector DETECTOR --checkpoint LANES [--scenario roundabout]
      [--split train-dev] [--first-episode 1000] [--episodes 30]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from steerbench.agents.modular import ModularAgent, ModularOptions
from steerbench.perception.classical import to_gray
from steerbench.perception.detector_data import camera_of, geometry_for, policy_hz_of
from steerbench.perception.lane_model import load_lane_model
from steerbench.perception.odometry import turned
from steerbench.perception.types import FrameGeometry
from steerbench.planning.lane_labels import LANE_S, LaneLabeller
from steerbench.sim.dataset import DatasetIndex, load_episode
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed

S = np.asarray(LANE_S, np.float64)
K10, K20 = int(np.argmin(abs(S - 10.0))), int(np.argmin(abs(S - 20.0)))
RING_AFTER_EXIT = {0: ("ex", "ee"), 1: ("nx", "ne"), 2: ("wx", "we")}  # highway-env's roundabout: exits 1, 2, 3
RING_BEFORE_EXIT = {0: ("se", "ex"), 1: ("ee", "nx"), 2: ("ne", "wx")}  # the ring segment that ends at each exit's fork
FORK_STEPS = 4  # steps after the last one on RING_BEFORE_EXIT that count as at the fork (with that one: 5)
BENDING_M = 2.5  # a frame at a bend: the label's ego lane 10 m ahead lies this far right of the ego or more
EGO = 1


def frames_report(data: str, checkpoint: str, split: str, scenario: str) -> None:
    model = load_lane_model(checkpoint, geometry_for(camera_of(data), scenario))
    n = max(model.commands, 1)
    dt = 1.0 / policy_hz_of(data)
    rows = [r for r in DatasetIndex(data).rows if r["split"] == split and r["scenario"] == scenario]
    per: dict[int, list] = {}
    bends: dict[int, list] = {}
    for row in rows:
        ep = load_episode(data, row)
        grey = np.stack([to_gray(f) for f in ep.frames])
        heading = turned(ep.speed, ep.executed[:, 1], dt) if model.odometry else None
        preds = [model.predict_batch(grey, np.full(len(grey), c), heading) for c in range(n)]
        for t in range(len(grey)):
            label, own = ep.lane_centres[t, EGO, K20], int(ep.command[t])
            outs = [p[t].centres[EGO, K20] for p in preds]
            if not (np.isfinite(label).all() and np.isfinite(outs[own]).all()):
                continue
            spread = max((float(np.hypot(*(o - outs[own]))) for o in outs if np.isfinite(o).all()), default=0.0)
            per.setdefault(own, []).append((float(np.hypot(*(outs[own] - label))), spread))
            near, guess = ep.lane_centres[t, EGO, K10], preds[own][t].centres[EGO, K10]
            if np.isfinite(near).all() and near[1] >= BENDING_M:
                bends.setdefault(own, []).append(float(np.hypot(*(guess - near))) if np.isfinite(guess).all() else 99.0)
    print(f"{scenario} {split}: ego lane at 20 m, per true command")
    for c, v in sorted(per.items()):
        err, spread = np.array(v).T
        print(f"  command {c}: {len(v)} frames; more than 2 m off {np.mean(err > 2):.0%}; "
              f"p90 {np.percentile(err, 90):.2f} m; commands' outputs apart (median) {np.median(spread):.2f} m")
    for c, v in sorted(bends.items()):
        print(f"  command {c}, frames bending right ({BENDING_M} m or more at 10 m): {len(v)}; more than 2 m off at "
              f"10 m {np.mean(np.array(v) > 2):.0%}")


class _Logged:
    """The lane model, each prediction logged against the map's label of the same step."""

    def __init__(self, env, inner) -> None:
        self.env, self.inner, self.log, self.agent, self.labeller = env, inner, [], None, None
        self.geometry, self.s, self.commands, self.odometry = inner.geometry, inner.s, inner.commands, inner.odometry

    def predict(self, frames, command=None, turned=None):
        p = self.inner.predict(frames, command, turned)
        road = self.env.road_prior()
        self.labeller = self.labeller or LaneLabeller()
        label = self.labeller(road)["lane_centres"][EGO].astype(np.float64)
        fused = self.agent.lanes.fused.get(0) if self.log else None  # after the last step's view
        if self.log and fused is not None:
            self.log[-1]["fused"] = float(np.hypot(*(fused[K10] - self.log[-1]["label"])))
        self.log.append({"edge": tuple(road.ego.lane_index[:2]), "label": label[K10], "command": command,
                         "measured": float(np.hypot(*(p.centres[EGO, K10] - label[K10]))) if p.valid[EGO] else np.nan})
        return p


def episodes_report(detector: str, checkpoint: str, scenario: str, split: str, first: int, episodes: int) -> None:
    runner, settings = EpisodeRunner(), EnvSettings(fast=True)
    env = runner.env(scenario, split, settings)
    cam = env.camera_config
    model = load_lane_model(checkpoint, FrameGeometry(cam.width, cam.height, cam.scaling, cam.centering))
    failures, past_exit, errors = Counter(), 0, {"measured": [], "fused": []}
    forks: dict[tuple[int, bool], list[float]] = {}  # (command, failed) -> share of fork steps > 2 m off
    try:
        for i in range(first, first + episodes):
            logged = _Logged(env, model)

            def build(logged=logged):
                agent = ModularAgent(ModularOptions(detector="learned", checkpoint=detector, lanes="learned",
                                                    stage_options=(("lanes.checkpoint", checkpoint),)))
                agent.lanes.model, logged.agent = logged, agent
                return agent

            m = runner.run(EpisodeTask(f"lanes-{i}", build, "pixels", scenario, split, i, episode_seed(split, i),
                                       settings)).metrics
            failures[m["failure"]] += 1
            for key in errors:
                errors[key] += [s[key] for s in logged.log if np.isfinite(s.get(key, np.nan))]
            command = logged.log[0]["command"] if logged.log else None
            if m["failure"] != "none" and scenario == "roundabout" and command in RING_AFTER_EXIT:
                past_exit += RING_AFTER_EXIT[command] in {s["edge"] for s in logged.log}
            if scenario == "roundabout" and command in RING_BEFORE_EXIT:
                forks.setdefault((command, m["failure"] != "none"), []).append(_at_fork(logged.log, command))
    finally:
        runner.close()
    print(f"{scenario} {split} {first}-{first + episodes - 1}: {dict(failures)}")
    print("  ego lane at 10 m, median error: " + ", ".join(f"{k} {np.median(v):.2f} m" for k, v in errors.items()))
    if scenario == "roundabout":
        print(f"  failures on the ring beyond the commanded exit: {past_exit} of {episodes - failures['none']}")
        _fork_report(forks)


def _at_fork(log: list[dict], command: int) -> float:
    """The share of the steps at the commanded exit's fork whose measured ego lane is more than 2 m
    off at 10 m (NaN when the episode ended before the fork)."""
    on = [k for k, s in enumerate(log) if s["edge"] == RING_BEFORE_EXIT[command]]
    window = [s["measured"] for s in log[on[-1]:on[-1] + FORK_STEPS + 1]] if on else []
    window = [e for e in window if np.isfinite(e)]
    return float(np.mean(np.array(window) > 2.0)) if window else float("nan")


def _fork_report(forks: dict[tuple[int, bool], list[float]]) -> None:
    for (command, failed), shares in sorted(forks.items()):
        reached = [x for x in shares if np.isfinite(x)]
        share = f"{np.mean(reached):.0%}" if reached else "-"
        print(f"  exit {command + 1}, {'failed' if failed else 'succeeded'}: {len(shares)} episodes, "
              f"{len(reached)} reached the fork; at it, steps with the ego lane more than 2 m off at 10 m: {share}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("frames")
    f.add_argument("--data", required=True)
    f.add_argument("--split", default="train")
    e = sub.add_parser("episodes")
    e.add_argument("--detector", required=True)
    e.add_argument("--split", default="train-dev")
    e.add_argument("--first-episode", type=int, default=1000)
    e.add_argument("--episodes", type=int, default=30)
    for q, default in ((f, "intersection"), (e, "roundabout")):
        q.add_argument("--checkpoint", required=True)
        q.add_argument("--scenario", default=default)
    a = p.parse_args()
    if a.mode == "frames":
        frames_report(a.data, a.checkpoint, a.split, a.scenario)
    else:
        episodes_report(a.detector, a.checkpoint, a.scenario, a.split, a.first_episode, a.episodes)


if __name__ == "__main__":
    main()
