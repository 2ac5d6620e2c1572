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
car missed its exit and went on round).

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
EGO = 1


def frames_report(data: str, checkpoint: str, split: str, scenario: str) -> None:
    model = load_lane_model(checkpoint, geometry_for(camera_of(data), scenario))
    n = max(model.commands, 1)
    dt = 1.0 / policy_hz_of(data)
    rows = [r for r in DatasetIndex(data).rows if r["split"] == split and r["scenario"] == scenario]
    per: dict[int, list] = {}
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
    print(f"{scenario} {split}: ego lane at 20 m, per true command")
    for c, v in sorted(per.items()):
        err, spread = np.array(v).T
        print(f"  command {c}: {len(v)} frames; more than 2 m off {np.mean(err > 2):.0%}; "
              f"p90 {np.percentile(err, 90):.2f} m; commands' outputs apart (median) {np.median(spread):.2f} m")


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
    finally:
        runner.close()
    print(f"{scenario} {split} {first}-{first + episodes - 1}: {dict(failures)}")
    print("  ego lane at 10 m, median error: " + ", ".join(f"{k} {np.median(v):.2f} m" for k, v in errors.items()))
    if scenario == "roundabout":
        print(f"  failures on the ring beyond the commanded exit: {past_exit} of {episodes - failures['none']}")


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
