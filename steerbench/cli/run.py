"""The harness's commands: `scenarios`, `agents`, `eval` and `collect`."""

from __future__ import annotations

import argparse
from pathlib import Path

from steerbench.agents.registry import AgentError, describe_options, known_agents, load_object
from steerbench.sim.episodes import collection_start
from steerbench.sim.registration import env_id
from steerbench.sim.scenario_options import parameters
from steerbench.sim.scenarios import (
    SUITE,
    UnknownScenarioError,
    check_split,
    get_scenario,
    parse_scenarios,
    scenario_entry_points,
)

from . import common


def register(sub) -> None:
    """Add `scenarios`, `agents`, `eval` and `collect`."""
    s = common.command(sub, "scenarios", cmd_scenarios, "list the scenario suite and its train/test differences")
    s.add_argument("--options", action="store_true", help="also each scenario's parameters for --scenario-opt")
    common.command(sub, "agents", cmd_agents, "list registered agents, their inputs and options")
    e = common.command(sub, "eval", cmd_eval, "evaluate agents on paired episodes", parents=[
        common.agent_flags(), common.episode_flags(), common.workers_flag(), common.env_flags(),
        common.backend_flags(), common.logdir_flag(Path("runs/eval")), common.progress_flag()])
    e.add_argument("--act-timeout", type=common.positive(float), default=10.0, help="seconds allowed per act() call")
    e.add_argument("--strips", type=common.non_negative_int, default=1,
                   help="episodes per agent x scenario with a frame strip")
    c = common.command(sub, "collect", cmd_collect,
                       "record a dataset of teacher rollouts (frames, actions, boxes, lanes)",
                       parents=[common.episode_flags(first=None), common.workers_flag(), common.env_flags(),
                                common.backend_flags(), common.progress_flag()])
    c.add_argument("--teacher", default="expert", metavar="AGENT", help="registry name, entry point or module:Class")
    c.add_argument("--teacher-opt", action="append", default=[], metavar="KEY=VALUE", help="an option of the teacher")
    c.add_argument("--out", type=Path, required=True, help="dataset directory (resumed if it exists)")
    c.add_argument("--noise", type=common.non_negative_float, default=0.0,
                   help="sd of steering noise added to the executed action; labels stay clean")
    c.add_argument("--noise-fraction", type=common.non_negative_float, default=0.5, help="share of episodes with noise")


def cmd_scenarios(args: argparse.Namespace) -> int:
    for s in SUITE.values():
        _describe(s, env_id(s.name), args.options)
    installed = scenario_entry_points()
    if installed:
        print("\ninstalled (entry points of group steerbench.scenarios):")
    for name, target in installed.items():
        try:
            _describe(get_scenario(name), f"{env_id(name)}; {target}", args.options)
        except UnknownScenarioError as exc:
            print(f"{name}  {target}  (cannot load: {exc})")
    print("\nsplits: train and train-dev draw from the train distribution, dev and test from the test one;")
    print("seeds never overlap between splits. Your own: --scenarios module:function (docs/scenarios.md).")
    return 0


def _describe(s, where: str, options: bool = False) -> None:
    print(f"{s.name}  ({where})")
    print(f"  {s.summary}")
    print(f"  commands: {', '.join(f'{i}={c}' for i, c in enumerate(s.commands))}")
    print(f"  train: {s.train.notes}; look: {s.train.look.describe()}")
    print(f"  test:  {s.test.notes}; look: {s.test.look.describe()}")
    if options:
        print("  --scenario-opt (train values; the test split's own settings may differ):")
        for key, value in sorted(parameters(s).items()):
            print(f"    {s.name}.{key}={value}")


def cmd_agents(args: argparse.Namespace) -> int:
    """`steerbench agents`: print every known agent with its inputs, description and options."""
    for name, target in known_agents().items():
        try:
            cls = load_object(target)
            info = getattr(cls, "info", None)
            inputs = getattr(info, "inputs", "?")
            print(f"{name} [{inputs}]  {target}")
            if info is not None and info.description:
                print(f"  {info.description}")
            for opt, kind, default in describe_options(cls):
                print(f"  --agent-opt {name}.{opt}=<{kind}>  (default {default})")
            more = getattr(cls, "help_lines", None)  # an agent with parts (the modular one's stages)
            for line in more() if callable(more) else ():
                print(f"  {line}")
        except AgentError as exc:
            print(f"{name}  {target}  (cannot load: {exc})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`steerbench eval`: run the evaluation, then print its summary and paired differences."""
    from steerbench.harness.evaluate import EvalConfig, run_eval  # heavy imports only when evaluating
    from steerbench.harness.summary import comparison_table, summary_table

    check_split(args.split)
    cfg = EvalConfig(
        agents=common.parse_agents(args.agent, args.agent_opt), scenarios=_scenarios(args), split=args.split,
        episodes=args.episodes, seed=args.first_episode, workers=args.workers, logdir=args.logdir,
        env=common.env_settings(args), act_timeout_s=args.act_timeout, strip_episodes=args.strips,
        progress=not args.no_progress, backend=common.backend(args),
    )
    out = run_eval(cfg)
    print()
    print(summary_table(out.groups))
    if out.comparisons:
        print()
        print(comparison_table(out.comparisons))
    print(f"\n{out.ran} episodes run, {len(out.rows) - out.ran} reused from {out.run_dir / 'results.jsonl'}")
    print(f"summary: {out.run_dir / 'summary.md'}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """`steerbench collect`: record the dataset, then print its episodes and frames per scenario/split."""
    from steerbench.harness.collect import CollectConfig, collect

    label = common.label_of(args.teacher)
    (teacher,) = common.parse_agents([args.teacher], [f"{label}.{o}" for o in args.teacher_opt])
    first = collection_start(args.split) if args.first_episode is None else args.first_episode
    cfg = CollectConfig(
        teacher=teacher, scenarios=_scenarios(args), split=args.split, episodes=args.episodes, seed=first,
        workers=args.workers, out=args.out, env=common.env_settings(args), noise_std=args.noise,
        noise_fraction=args.noise_fraction, progress=not args.no_progress, backend=common.backend(args),
    )
    manifest = collect(cfg)
    for key in sorted(manifest["frames"]):
        print(f"{key}: {manifest['episodes'][key]} episodes, {manifest['frames'][key]} frames")
    print(f"dataset: {args.out} ({manifest['total_frames']} frames; format in docs/dataset.md)")
    return 0


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(s.name for s in parse_scenarios(args.scenarios))
