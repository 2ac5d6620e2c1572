"""Per-step cost of each agent, and of each modular stage, as a fraction of one env step.

Method. The privileged expert drives `SteerEnv(scenario, split)` (full-length episodes with lane
changes); at every step every agent under test gets the observation its inputs allow (the
harness's own `EpisodeRunner._observation`, not timed) and its `act` is timed, in a rotating
order, and `env.step` is timed too, so the agents and the env alternate step by step under the
same load. Only the expert's action is applied (the others run in shadow mode, open loop), so all
of them see the same states. Agent
fraction = median `act` time / median `env.step` time (means as context). Modular stages come
from the agent's own `stats()` (`time/<stage>_ms_mean`, means per episode, weighted by steps),
divided by the mean env step. torch runs with one thread, as in eval workers.

Agents: expert, lane_keeper, modular (classical detector, map lanes), modular with the learned
detector when `--detector-checkpoint` is given (and with learned lanes too, pixels only, when
`--lanes-checkpoint` is also given; with `--lanes-refine` also that agent with the marking check,
`lanes.refine`), and e2e M: `--checkpoint` or else a randomly
initialised PilotNet M saved in a temp dir in train-e2e's best.pt format (its cost does not
depend on the weights).

Targets (project issue): e2e M < 0.25 and the whole modular agent < 0.75 of an env step;
expert and lane_keeper are reported without a target.
Usage: python bench/agent_cost.py [--episodes 3] [--steps 200] [--checkpoint best.pt]
       [--detector-checkpoint best.pt [--lanes-checkpoint best.pt [--lanes-refine]]] [--fast-sim] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch

from steerbench.agents.pilotnet import NetConfig, PilotNet
from steerbench.agents.registry import AgentSpec, resolve
from steerbench.sim.env import SteerEnv
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask, episode_info
from steerbench.sim.scenarios import episode_seed

# fraction of one env step
TARGETS = {"e2e-M": 0.25, "modular": 0.75, "modular-learned": 0.75, "modular-learned-learned": 0.75}


def random_checkpoint(path: Path, env: SteerEnv) -> Path:
    """A PilotNet M with random weights, saved like train-e2e's best.pt."""
    c = env.camera_config
    cfg = NetConfig(size="M", stack=c.stack, channels=3 if c.color else 1, height=c.height, width=c.width)
    torch.manual_seed(0)
    torch.save({"model": PilotNet(cfg).state_dict(), "config": cfg.as_dict(), "epoch": 0}, path)
    return path


def agents(checkpoint: Path, detector: str | None, lanes: str | None = None,
           refine: bool = False) -> dict[str, AgentSpec]:
    specs = {
        "expert": AgentSpec("expert", resolve("expert")),
        "lane_keeper": AgentSpec("lane_keeper", resolve("lane_keeper")),
        "modular": AgentSpec("modular", resolve("modular")),
        "e2e-M": AgentSpec("e2e-M", resolve("e2e"), (("checkpoint", str(checkpoint)),)),
    }
    if detector:
        specs["modular-learned"] = AgentSpec("modular-learned", resolve("modular"),
                                             (("detector", "learned"), ("checkpoint", detector)))
    if detector and lanes:  # pixels only: the learned detector and the learned lanes
        specs["modular-learned-learned"] = AgentSpec(
            "modular-learned-learned", resolve("modular"),
            (("detector", "learned"), ("checkpoint", detector), ("lanes", "learned"), ("lanes.checkpoint", lanes)))
        if refine:
            specs["modular-learned-learned-refine"] = AgentSpec(
                "modular-learned-learned-refine", resolve("modular"),
                (*specs["modular-learned-learned"].options, ("lanes.refine", "true")))
    return specs


def measure(env: SteerEnv, built: dict[str, Any], scenario: str, split: str, episodes: int,
            steps: int) -> tuple[list[float], dict[str, list[float]], dict[str, dict[str, float]]]:
    """Per-step env and act times [s], and each agent's stats() weighted over its episodes."""
    settings = EnvSettings(policy_hz=env.policy_hz)
    env_t: list[float] = []
    act_t: dict[str, list[float]] = defaultdict(list)
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    names = list(built)
    for i in range(episodes):
        task = EpisodeTask("bench", None, "privileged", scenario, split, i, episode_seed(split, i), settings)
        obs, _ = env.reset(seed=task.seed)
        info = episode_info(env, task)
        for agent in built.values():
            agent.reset(info)
        n, done = 0, False
        while not done and n < steps:
            actions = {}
            for name in names[n % len(names):] + names[:n % len(names)]:  # a rotating order
                agent = built[name]
                o = EpisodeRunner._observation(env, obs, agent.info.inputs)  # harness work: not timed
                t0 = time.perf_counter()
                actions[name] = agent.act(o)
                act_t[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            obs, _, term, trunc, _ = env.step(actions["expert"])
            env_t.append(time.perf_counter() - t0)
            done, n = term or trunc, n + 1
        for name, agent in built.items():
            for key, value in (agent.stats() if hasattr(agent, "stats") else {}).items():
                if key.startswith("time/") and key.endswith("_ms_mean"):
                    stats[name][key[5:-8]] += value * n
    return env_t, act_t, stats


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="highway")
    p.add_argument("--split", default="train")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=200, help="most policy steps per episode")
    p.add_argument("--checkpoint", default="", help="an e2e M best.pt (default: random weights)")
    p.add_argument("--detector-checkpoint", default="", help="also the modular agent with this learned detector")
    p.add_argument("--lanes-checkpoint", default="",
                   help="with --detector-checkpoint, also the pixels-only agent with this learned lane model")
    p.add_argument("--lanes-refine", action="store_true",
                   help="with --lanes-checkpoint, also that agent with the marking check (lanes.refine)")
    p.add_argument("--fast-sim", action="store_true", help="the fast simulation core (a cheaper env step)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    a = p.parse_args(argv)
    if a.quick:
        a.episodes, a.steps = 1, 25
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in eval workers (OMP_NUM_THREADS=1)
    env = SteerEnv(a.scenario, a.split, fast=a.fast_sim)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(a.checkpoint) if a.checkpoint else random_checkpoint(Path(tmp) / "best.pt", env)
            built = {name: spec() for name, spec in agents(ckpt, a.detector_checkpoint, a.lanes_checkpoint,
                                                                   a.lanes_refine).items()}
            env_t, act_t, stats = measure(env, built, a.scenario, a.split, a.episodes, a.steps)
    finally:
        env.close()
        torch.set_num_threads(threads)
    env_med, env_mean = statistics.median(env_t), statistics.fmean(env_t)
    print(f"{a.scenario}/{a.split}{' fast-sim' if a.fast_sim else ''}: {len(env_t)} steps, env.step median "
          f"{1000 * env_med:.2f} ms, mean {1000 * env_mean:.2f} ms; e2e checkpoint: "
          f"{a.checkpoint or 'random PilotNet M'}")
    print("| agent / stage | act ms (median) | act ms (mean) | fraction (median) | fraction (mean) | target |")
    print("|---|---|---|---|---|---|")
    ratios = {}
    for name, times in act_t.items():
        med, mean = statistics.median(times), statistics.fmean(times)
        ratios[f"agent_cost_{name}"] = med / env_med
        print(f"| {name} | {1000 * med:.2f} | {1000 * mean:.2f} | {med / env_med:.3f} | {mean / env_mean:.3f} | "
              f"{'< ' + str(TARGETS[name]) if name in TARGETS else '-'} |")
        for stage, total_ms in stats.get(name, {}).items():
            ms = total_ms / len(times)
            print(f"| {name}: {stage} (stats) | - | {ms:.2f} | - | {ms / (1000 * env_mean):.3f} | - |")
    for name, target in TARGETS.items():
        if f"agent_cost_{name}" in ratios:
            r = ratios[f"agent_cost_{name}"]
            print(f"RATIO agent_cost_{name} = {r:.3f} (median act / median env.step; target < {target}: "
                  f"{'met' if r < target else 'NOT met'})")
    for name in ("expert", "lane_keeper"):
        print(f"RATIO agent_cost_{name} = {ratios[f'agent_cost_{name}']:.3f} (median act / median env.step; no target)")
    return ratios


if __name__ == "__main__":
    main()
