"""The study's commands: `compare`, `scale`, `ceiling`, `diagnose` and `errors`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from steerbench.sim.scenarios import check_split, parse_scenarios
from steerbench.study.models import EVAL_INDEX

from . import common

# The networks' learning rates under scale's step budget: the best train-dev L1 of a sweep per size
# at N = 3,000 (docs/study.md, "Learning rates"); S's next rate up, 1e-2, diverged.
SCALE_LRS = (("S", 6e-3), ("M", 3e-3), ("L", 2e-3))


def register(sub) -> None:
    """Add `compare`, `scale`, `ceiling`, `diagnose` and `errors`."""
    _compare_parser(sub)
    _scale_parser(sub)
    _ceiling_parser(sub)
    _diagnose_parser(sub)
    _errors_parser(sub)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0, got {text!r}")
    return seeds


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame counts, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive frame counts, got {text!r}")
    return sizes


def _splits(text: str) -> tuple[str, ...]:
    splits = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for s in splits:
        check_split(s)
    if not splits:
        raise common.UsageError("--splits names no split")
    return splits


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(s.name for s in parse_scenarios(args.scenarios))


def _lane_dagger_scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    """--lane-dagger-scenarios's names (empty: the budget's scenarios)."""
    if args.lane_dagger_scenarios is None:
        return ()
    return tuple(s.name for s in parse_scenarios(args.lane_dagger_scenarios))


def _command_line() -> str:
    return shlex.join(["steerbench", *sys.argv[1:]])


def _study_parents(logdir: str, **episodes) -> list[argparse.ArgumentParser]:
    return [common.episode_flags(**episodes), common.workers_flag(), common.env_flags(), common.backend_flags(),
            common.logdir_flag(Path(logdir)), common.progress_flag()]


# the lane model's budget: compare's is the README's measured one; scale's the least per point (it
# grows with N). DAgger rounds stay opt-in: on the test split they did not hold (README, issue 15)
LANE_SMALL = {"frames": 3000, "epochs": 10, "dagger_rounds": 0, "dagger_episodes": 20, "dagger_critical": 1.0,
              "dagger_repeat": 1}
LANE_RECIPE = {**LANE_SMALL, "frames": 20000, "epochs": 30}


def _models_args(p: argparse.ArgumentParser, seeds: tuple[int, ...], train_episodes: int = 20, e2e_epochs: int = 8,
                 detector_epochs: int = 8, lanes: dict = LANE_SMALL, channels_last: bool = False) -> None:
    p.add_argument("--train-seeds", type=_seeds, default=seeds, help="training seeds of each learned contestant")
    p.add_argument("--models", type=Path, default=None,
                   help="models directory to reuse and extend (default LOGDIR/models)")
    g = p.add_argument_group("training budget (only for models missing from --models)")
    g.add_argument("--train-episodes", type=common.positive(int), default=train_episodes,
                   help="expert episodes per scenario (scale: at least; more until the largest N is there)")
    g.add_argument("--heldout-episodes", type=common.positive(int), default=4,
                   help="train-dev and dev episodes per scenario")
    g.add_argument("--e2e-epochs", type=common.positive(int), default=e2e_epochs,
                   help="epochs per network (scale: the least; early stopping on train-dev)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=channels_last,
                   help="the networks train in channels-last memory layout, faster on the CPU and another model "
                        "than without it (train-e2e --channels-last)")
    g.add_argument("--detector-frames", type=common.positive(int), default=3000, help="learned detector's train frames")
    g.add_argument("--detector-epochs", type=common.positive(int), default=detector_epochs,
                   help="learned detector's epochs (scale: the least)")
    g.add_argument("--lane-frames", type=common.positive(int), default=lanes["frames"],
                   help="learned lane model's train frames")
    g.add_argument("--lane-epochs", type=common.positive(int), default=lanes["epochs"],
                   help="learned lane model's epochs (scale: the least; early stopping on train-dev)")
    g.add_argument("--lane-viewpoint", type=common.fraction, default=0.5,
                   help="share of the lane model's frames seen from a displaced ego (train-lanes --viewpoint)")
    g.add_argument("--lane-extra-data", type=Path, action="append", default=[], metavar="DIR",
                   help="another dataset (other road layouts) whose train frames the lane model also trains on "
                        "(train-lanes --extra-data; repeatable)")
    g.add_argument("--lane-named-commands", action="store_true",
                   help="the lane model's commands by name across scenarios (train-lanes --named-commands)")
    g.add_argument("--lane-dagger-rounds", type=common.non_negative_int, default=lanes["dagger_rounds"],
                   help="DAgger rounds of the lane model on the modular agent's rollouts (train-lanes --dagger-rounds)")
    g.add_argument("--lane-dagger-episodes", type=common.positive(int), default=lanes["dagger_episodes"],
                   help="its rollouts per scenario and round")
    g.add_argument("--lane-dagger-scenarios", default=None,
                   help="where it rolls out: comma-separated scenario names (default: the contest's scenarios)")
    g.add_argument("--lane-dagger-critical", type=common.share, default=lanes["dagger_critical"], metavar="SHARE",
                   help="share of each rollout's steps kept, where the lane model errs most "
                        "(train-lanes --dagger-critical)")
    g.add_argument("--lane-dagger-repeat", type=common.positive(int), default=lanes["dagger_repeat"], metavar="K",
                   help="times each kept step is taken (train-lanes --dagger-repeat)")


def _budget(args: argparse.Namespace, scenarios: tuple[str, ...], frames: int = 0):
    from steerbench.study.models import Budget

    return Budget(scenarios=scenarios, train_episodes=args.train_episodes, heldout_episodes=args.heldout_episodes,
                  e2e_epochs=args.e2e_epochs, channels_last=args.channels_last, detector_frames=args.detector_frames,
                  detector_epochs=args.detector_epochs, lane_frames=args.lane_frames, lane_epochs=args.lane_epochs,
                  lane_viewpoint=args.lane_viewpoint, lane_dagger_rounds=args.lane_dagger_rounds,
                  lane_dagger_episodes=args.lane_dagger_episodes,
                  lane_dagger_scenarios=_lane_dagger_scenarios(args),
                  lane_dagger_critical=args.lane_dagger_critical, lane_dagger_repeat=args.lane_dagger_repeat,
                  lane_extra_data=common.datasets("--lane-extra-data", args.lane_extra_data),
                  lane_named_commands=args.lane_named_commands, frames=frames, workers=args.workers,
                  progress=not args.no_progress, backend=common.backend(args))


# -- compare ---------------------------------------------------------------------------------
def _compare_parser(sub) -> None:
    from steerbench.study.contestants import lineup

    # the first episode: evaluation past the ones the models are trained on
    p = common.command(sub, "compare", cmd_compare,
                       "modular vs end-to-end: every contestant on both splits, one report",
                       parents=_study_parents("runs/compare", split=False, first=EVAL_INDEX))
    p.add_argument("--contestants", default=",".join(lineup()),
                   help="comma-separated built-in contestants (see docs/study.md)")
    p.add_argument("--agent", action="append", default=[], metavar="[LABEL=]AGENT",
                   help="also evaluate your own agent (registry name, entry point or module:Class)")
    p.add_argument("--agent-opt", action="append", default=[], metavar="LABEL.KEY=VALUE", help="its options")
    p.add_argument("--splits", default="train,test", help="comma-separated splits to evaluate")
    p.add_argument("--stress", default="", metavar="CONDITION,...",
                   help="also evaluate these stress conditions on the test split (dense, curves, dark, noisy; "
                        "docs/scenarios.md), each in LOGDIR/stress-<name>/")
    _models_args(p, seeds=(0, 1, 2), lanes=LANE_RECIPE)


def cmd_compare(args: argparse.Namespace) -> int:
    """`steerbench compare`: the contestants (built-in and --agent) on the --splits, into one report."""
    from steerbench.sim.stress import parse_conditions
    from steerbench.study.compare import CompareConfig, run_compare
    from steerbench.study.contestants import select, user_contestant
    from steerbench.study.report import timings_table

    scenarios = _scenarios(args)
    stress, splits = parse_conditions(args.stress), _splits(args.splits)
    if stress and "test" not in splits:
        raise common.UsageError("--stress evaluates against the test split: add test to --splits")
    names = [n.strip() for n in args.contestants.split(",") if n.strip()]
    contestants = select(names) + [user_contestant(s) for s in common.parse_agents(args.agent, args.agent_opt)]
    if not contestants:
        raise common.UsageError("nothing to compare: --contestants is empty and no --agent given")
    names = [c.name for c in contestants]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash:
        raise common.UsageError(f"contestant name {clash!r} given twice; label your agent, "
                                f"e.g. --agent my-{clash}={clash}")
    budget = _budget(args, scenarios)
    cfg = CompareConfig(contestants=tuple(contestants), scenarios=scenarios, budget=budget,
                        splits=splits, episodes=args.episodes, seed=args.first_episode,
                        train_seeds=args.train_seeds, workers=args.workers, logdir=args.logdir, models=args.models,
                        env=common.env_settings(args), progress=not args.no_progress,
                        command=_command_line(), backend=budget.backend, stress=stress)
    out = run_compare(cfg)
    print()
    print(timings_table(out.timings))
    print(f"\nreport: {out.report}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


# -- scale -----------------------------------------------------------------------------------
def _scale_parser(sub) -> None:
    p = common.command(sub, "scale", cmd_scale,
                       "Ng's curve: driving score vs training frames, e2e S/M/L (and DA-RB) against the modular "
                       "agent with map lanes and the pixels-only one",
                       parents=_study_parents("runs/scale", first=EVAL_INDEX))
    p.add_argument("--frames", type=_sizes, default=(300, 1000, 3000, 10000),
                   help="dataset sizes N (train frames), e.g. 300,1000,3000,10000,30000,100000")
    p.add_argument("--nets", type=common.net_sizes, default=("S", "M", "L"), help="end-to-end network sizes")
    p.add_argument("--dagger-nets", type=_nets_or_none, default=("M",),
                   help="networks that also get a DA-RB curve ('none': no DAgger curve)")
    p.add_argument("--no-detector", action="store_true", help="leave out the modular agent with map lanes")
    p.add_argument("--no-pixels", action="store_true", help="leave out the pixels-only modular agent")
    g = p.add_argument_group("the networks' step budget (docs/study.md)")
    g.add_argument("--passes", type=common.positive(float), default=20.0,
                   help="step budget: max(--min-steps, passes x N / 64) updates, early stopping on train-dev")
    g.add_argument("--min-steps", type=common.positive(int), default=2000, help="the least step budget at any N")
    g.add_argument("--schedule", choices=("constant", "cosine"), default="cosine", help="learning-rate schedule")
    g.add_argument("--lr", type=_rates, default=",".join(f"{k}={v:g}" for k, v in SCALE_LRS), metavar="SIZE=RATE,...",
                   help="learning rate per network size, e.g. M=1e-3; a size not given keeps its default "
                        "(a steerbench tune sweep: docs/study.md)")
    g.add_argument("--viewpoint", type=common.fraction, default=0.0,
                   help="share of samples seen from a displaced ego (train-e2e --viewpoint; 0: off)")
    g.add_argument("--dagger-rounds", type=common.positive(int), default=2, help="DA-RB rounds")
    g.add_argument("--dagger-episodes", type=common.positive(int), default=10,
                   help="DA-RB student rollouts per scenario and round")
    p.add_argument("--samples", type=common.non_negative_int, default=30000,
                   help="the learned detector's and lane model's samples: small N gets more epochs")
    _models_args(p, seeds=(0, 1, 2), train_episodes=1, e2e_epochs=3, detector_epochs=3, channels_last=True)


def _nets_or_none(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else common.net_sizes(text)


def scale_rates(given: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    """`scale`'s learning rate per network size: SCALE_LRS, with the sizes `given` replaced."""
    return tuple({**dict(SCALE_LRS), **dict(given)}.items())


def _rates(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        size, _, rate = part.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = float("nan")
        if size not in ("S", "M", "L") or not value > 0:
            raise argparse.ArgumentTypeError(f"expected SIZE=RATE with SIZE one of S, M, L and RATE > 0, got {part!r}")
        out.append((size, value))
    return tuple(out)


def cmd_scale(args: argparse.Namespace) -> int:
    """`steerbench scale`: the data-scaling curves."""
    import dataclasses

    from steerbench.sim.composition import Composition
    from steerbench.study.report import timings_table
    from steerbench.study.scale import ScaleConfig, findings, run_scale, scale_table

    check_split(args.split)
    scenarios = _scenarios(args)
    budget = dataclasses.replace(_budget(args, scenarios), samples=args.samples, passes=args.passes,
                                 min_steps=args.min_steps, schedule=args.schedule, lrs=scale_rates(args.lr),
                                 viewpoint=args.viewpoint, composition=Composition(),
                                 dagger_rounds=args.dagger_rounds, dagger_episodes=args.dagger_episodes)
    cfg = ScaleConfig(frames=args.frames, scenarios=scenarios, budget=budget, nets=args.nets,
                      dagger=args.dagger_nets, detector=not args.no_detector, pixels=not args.no_pixels,
                      split=args.split, episodes=args.episodes,
                      seed=args.first_episode, train_seeds=args.train_seeds, workers=args.workers,
                      logdir=args.logdir, models=args.models, env=common.env_settings(args),
                      progress=not args.no_progress, command=_command_line(), backend=budget.backend)
    out = run_scale(cfg)
    print()
    print(scale_table(out, cfg.frames, markdown=False))
    print("\n".join(["", *findings(out), ""]))
    print(timings_table(out.timings))
    print(f"\ntable: {out.run_dir / 'scale.md'}   figure: {out.run_dir / 'figures' / 'scaling.png'}   "
          f"TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


# -- ceiling and diagnose --------------------------------------------------------------------
def _ceiling_parser(sub) -> None:
    g = common.command(sub, "ceiling", cmd_ceiling,
                       "ceiling analysis: the modular agent with each stage replaced by its oracle",
                       parents=_study_parents("runs/ceiling"))
    stage = "a built-in name, module:Class or an entry point's name (steerbench agents lists them)"
    g.add_argument("--detector", default="classical", help=f"the pipeline's detector: {stage}")
    g.add_argument("--checkpoint", default="", help="weights of the learned detector (steerbench train-detector)")
    g.add_argument("--tracker", default="kalman", help="the pipeline's tracker")
    g.add_argument("--lanes", default="pixels", help="the pipeline's lane source")
    g.add_argument("--planner", default="candidates", help="the pipeline's planner (kept in every row)")
    g.add_argument("--controller", default="pure_pursuit", help="the pipeline's controller (kept in every row)")
    g.add_argument("--stage-opt", action="append", default=[], metavar="STAGE.KEY=VALUE",
                   help="an option of one of the pipeline's stages, e.g. detector.contrast=24 (repeatable)")


def _pipeline(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The modular agent's options of `ceiling`'s flags: each stage, the checkpoint, each --stage-opt."""
    out = [(k, getattr(args, k)) for k in ("detector", "tracker", "lanes", "planner", "controller")]
    out += [("checkpoint", args.checkpoint)] if args.checkpoint else []
    for opt in args.stage_opt:
        key, sep, value = opt.partition("=")
        if not sep or key.count(".") != 1:
            raise common.UsageError(f"malformed --stage-opt {opt!r}: expected STAGE.KEY=VALUE")
        out.append((key, value))
    return tuple(out)


def cmd_ceiling(args: argparse.Namespace) -> int:
    """`steerbench ceiling`: the ceiling analysis of the modular pipeline."""
    from steerbench.study.ceiling import CeilingConfig, ceiling_table, run_ceiling

    check_split(args.split)
    if args.detector == "learned" and not args.checkpoint:
        raise common.UsageError("--detector learned needs --checkpoint PATH (from steerbench train-detector)")
    cfg = CeilingConfig(
        scenarios=_scenarios(args), split=args.split, episodes=args.episodes, seed=args.first_episode,
        workers=args.workers, logdir=args.logdir, env=common.env_settings(args), stages=_pipeline(args),
        progress=not args.no_progress, backend=common.backend(args),
    )
    out = run_ceiling(cfg)
    print()
    print(ceiling_table(out.rows))
    print(f"\ntable: {out.run_dir / 'ceiling.md'}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def _diagnose_parser(sub) -> None:
    episodes = common.episode_flags(split=False, scenarios="highway,racetrack")
    n = common.command(sub, "diagnose", cmd_diagnose,
                       "Ng's table: avoidable bias, variance, data mismatch of a learned agent",
                       parents=[common.agent_flags(many=False), episodes, common.workers_flag(), common.backend_flags(),
                                common.logdir_flag(Path("runs/diagnose")), common.progress_flag()])
    n.add_argument("--data", type=Path, default=None,
                   help="its training dataset: environment settings, and the open-loop steering error per split")
    n.add_argument("--offline-frames", type=common.positive(int), default=2000,
                   help="open-loop frames per split, at most")


def cmd_diagnose(args: argparse.Namespace) -> int:
    """`steerbench diagnose`: Ng's bias / variance / mismatch table of one agent."""
    from steerbench.harness.collect import dataset_settings
    from steerbench.sim.runner import EnvSettings
    from steerbench.study.diagnose import DiagnoseConfig, diagnosis_tables, log_diagnosis, run_diagnose

    if len(args.agent) != 1:
        raise common.UsageError("diagnose takes one --agent")
    (agent,) = common.parse_agents(args.agent, args.agent_opt)
    if agent.label == "expert":
        raise common.UsageError("diagnose compares an agent with the expert; give it another label "
                                "(--agent NAME=expert)")
    env = dataset_settings(args.data)[0] if args.data else EnvSettings()
    cfg = DiagnoseConfig(agent=agent, scenarios=_scenarios(args), episodes=args.episodes, seed=args.first_episode,
                         workers=args.workers, logdir=args.logdir, env=env, data=args.data,
                         offline_frames=args.offline_frames, progress=not args.no_progress,
                         backend=common.backend(args))
    diag = run_diagnose(cfg)
    print()
    print(diagnosis_tables(diag))
    log_diagnosis(args.logdir, diag, [diagnosis_tables(diag, markdown=True)])
    print(f"\ntables: {args.logdir / 'diagnosis.md'}   TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


# -- errors ----------------------------------------------------------------------------------
def _errors_parser(sub) -> None:
    p = common.command(sub, "errors", cmd_errors,
                       "error analysis: failed episodes by category, costliest first, with clips",
                       parents=[common.workers_flag("parallel processes for the replays"), common.backend_flags(),
                                common.progress_flag()])
    p.add_argument("run", type=Path, help="a run directory of steerbench eval, compare or diagnose")
    p.add_argument("--top", type=common.positive(int), default=3, help="categories per agent that get clips")
    p.add_argument("--clips", type=common.non_negative_int, default=2, help="clips per category")
    p.add_argument("--clip-frames", type=common.positive(int), default=8, help="frames before the end of each clip")


def cmd_errors(args: argparse.Namespace) -> int:
    """`steerbench errors RUN`: the error analysis of a run directory, with replayed clips."""
    from steerbench.study.failures import ErrorsConfig, errors_table
    from steerbench.study.replay import run_errors

    out = run_errors(ErrorsConfig(args.run, top=args.top, clips=args.clips, clip_frames=args.clip_frames,
                                  workers=args.workers, progress=not args.no_progress, backend=common.backend(args)))
    print(errors_table(out, markdown=False))
    print(f"\ntable: {args.run / 'errors.md'}   TensorBoard: tensorboard --logdir {args.run / 'tb' / 'errors'}")
    return 0
