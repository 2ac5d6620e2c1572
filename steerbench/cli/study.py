"""The study's subcommands of `steerbench`: compare, scale, errors (parsers and handlers)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from steerbench.sim.scenarios import check_split, parse_scenarios

from steerbench import cli
from steerbench.study.models import EVAL_INDEX


def register(sub) -> None:
    _compare_parser(sub)
    _scale_parser(sub)
    _errors_parser(sub)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0, got {text!r}")
    return seeds


def _budget_args(p: argparse.ArgumentParser, train_episodes: int = 20, e2e_epochs: int = 8,
                 detector_epochs: int = 8) -> None:
    g = p.add_argument_group("training budget (only for models missing from --models)")
    g.add_argument("--train-episodes", type=cli._positive(int), default=train_episodes,
                   help="expert episodes per scenario (scale: at least; more until the largest N is there)")
    g.add_argument("--heldout-episodes", type=cli._positive(int), default=4,
                   help="train-dev and dev episodes per scenario")
    g.add_argument("--e2e-epochs", type=cli._positive(int), default=e2e_epochs,
                   help="epochs per network (scale: the least; early stopping on train-dev)")
    g.add_argument("--detector-frames", type=cli._positive(int), default=3000, help="learned detector's train frames")
    g.add_argument("--detector-epochs", type=cli._positive(int), default=detector_epochs,
                   help="learned detector's epochs (scale: the least)")


def _budget(args: argparse.Namespace, scenarios: tuple[str, ...], frames: int = 0):
    from steerbench.study.models import Budget

    return Budget(scenarios=scenarios, train_episodes=args.train_episodes, heldout_episodes=args.heldout_episodes,
                  e2e_epochs=args.e2e_epochs, detector_frames=args.detector_frames,
                  detector_epochs=args.detector_epochs, frames=frames, workers=args.workers,
                  progress=not args.no_progress, backend=cli._backend(args))


def _compare_parser(sub) -> None:
    from steerbench.study.contestants import lineup

    p = sub.add_parser("compare", help="modular vs end-to-end: every contestant on both splits, one report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--contestants", default=",".join(lineup()),
                   help="comma-separated built-in contestants (see docs/study.md)")
    p.add_argument("--agent", action="append", default=[], metavar="[LABEL=]AGENT",
                   help="also evaluate your own agent (registry name, entry point or module:Class)")
    p.add_argument("--agent-opt", action="append", default=[], metavar="LABEL.KEY=VALUE", help="its options")
    cli._add_episode_args(p, split=False)
    cli._add_backend_args(p)
    p.set_defaults(seed=EVAL_INDEX)  # evaluation episodes past the ones the models are trained on
    p.add_argument("--splits", default="train,test", help="comma-separated splits to evaluate")
    p.add_argument("--train-seeds", type=_seeds, default=(0, 1, 2), help="training seeds of each learned contestant")
    p.add_argument("--models", type=Path, default=None, help="models directory to reuse and extend (default LOGDIR/models)")
    p.add_argument("--logdir", type=Path, default=Path("runs/compare"), help="run directory (resumed if it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _budget_args(p)
    p.set_defaults(handler=cmd_compare)


def _splits(text: str) -> tuple[str, ...]:
    splits = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for s in splits:
        check_split(s)
    if not splits:
        raise cli.UsageError("--splits names no split")
    return splits


def cmd_compare(args: argparse.Namespace) -> int:
    from steerbench.study.compare import CompareConfig, run_compare
    from steerbench.study.contestants import select, user_contestant

    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    names = [n.strip() for n in args.contestants.split(",") if n.strip()]
    contestants = select(names) + [user_contestant(s) for s in cli.parse_agents(args.agent, args.agent_opt)]
    if not contestants:
        raise cli.UsageError("nothing to compare: --contestants is empty and no --agent given")
    names = [c.name for c in contestants]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash:
        raise cli.UsageError(f"contestant name {clash!r} given twice; label your agent, e.g. --agent my-{clash}={clash}")
    budget = _budget(args, scenarios)
    cfg = CompareConfig(contestants=tuple(contestants), scenarios=scenarios, budget=budget,
                        splits=_splits(args.splits), episodes=args.episodes, seed=args.seed,
                        train_seeds=args.train_seeds, workers=args.workers, logdir=args.logdir, models=args.models,
                        env=cli._env_settings(args), progress=not args.no_progress,
                        command=shlex.join(["steerbench", *sys.argv[1:]]), backend=budget.backend)
    out = run_compare(cfg)
    from steerbench.study.report import timings_table

    print()
    print(timings_table(out.timings))
    print(f"\nreport: {out.report}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame counts, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive frame counts, got {text!r}")
    return sizes


def _nets(text: str) -> tuple[str, ...]:
    nets = tuple(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if any(n not in ("S", "M", "L") for n in nets):
        raise argparse.ArgumentTypeError(f"expected sizes among S,M,L, got {text!r}")
    return nets


def _scale_parser(sub) -> None:
    p = sub.add_parser("scale", help="Ng's curve: driving score vs training frames, e2e S/M/L and the modular agent",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--frames", type=_sizes, default=(300, 1000, 3000, 10000),
                   help="dataset sizes N (train frames), e.g. 1000,3000,10000,30000 on a GPU")
    p.add_argument("--nets", type=_nets, default=("S", "M", "L"), help="end-to-end network sizes")
    p.add_argument("--no-detector", action="store_true", help="leave out the modular agent's learned detector")
    p.add_argument("--samples", type=cli._non_negative_int, default=30000,
                   help="training samples per model: small N gets more epochs (0: --e2e-epochs / --detector-epochs)")
    cli._add_episode_args(p)
    cli._add_backend_args(p)
    p.set_defaults(scenarios="highway,racetrack", seed=EVAL_INDEX)  # evaluation past the training episodes
    p.add_argument("--train-seeds", type=_seeds, default=(0,), help="training seeds of each model")
    p.add_argument("--models", type=Path, default=None, help="models directory to reuse and extend (default LOGDIR/models)")
    p.add_argument("--logdir", type=Path, default=Path("runs/scale"), help="run directory (resumed if it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _budget_args(p, train_episodes=1, e2e_epochs=3, detector_epochs=3)
    p.set_defaults(handler=cmd_scale)


def cmd_scale(args: argparse.Namespace) -> int:
    import dataclasses

    from steerbench.study.scale import ScaleConfig, findings, run_scale, scale_table
    from steerbench.study.report import timings_table

    check_split(args.split)
    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    budget = dataclasses.replace(_budget(args, scenarios), samples=args.samples)
    cfg = ScaleConfig(frames=args.frames, scenarios=scenarios, budget=budget, nets=args.nets,
                      detector=not args.no_detector, split=args.split, episodes=args.episodes, seed=args.seed,
                      train_seeds=args.train_seeds, workers=args.workers, logdir=args.logdir, models=args.models,
                      env=cli._env_settings(args), progress=not args.no_progress,
                      command=shlex.join(["steerbench", *sys.argv[1:]]), backend=budget.backend)
    out = run_scale(cfg)
    print()
    print(scale_table(out, cfg.frames, markdown=False))
    print("\n".join(["", *findings(out), ""]))
    print(timings_table(out.timings))
    print(f"\ntable: {out.run_dir / 'scale.md'}   figure: {out.run_dir / 'figures' / 'scaling.png'}   "
          f"TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def _errors_parser(sub) -> None:
    p = sub.add_parser("errors", help="error analysis: failed episodes by category, costliest first, with clips",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", type=Path, help="a run directory of steerbench eval, compare or diagnose")
    p.add_argument("--top", type=cli._positive(int), default=3, help="categories per agent that get clips")
    p.add_argument("--clips", type=cli._non_negative_int, default=2, help="clips per category")
    p.add_argument("--clip-frames", type=cli._positive(int), default=8, help="frames before the end of each clip")
    p.add_argument("--workers", type=cli._positive(int), default=1, help="parallel processes for the replays")
    cli._add_backend_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_errors)


def cmd_errors(args: argparse.Namespace) -> int:
    from steerbench.study.failures import ErrorsConfig, errors_table
    from steerbench.study.replay import run_errors

    out = run_errors(ErrorsConfig(args.run, top=args.top, clips=args.clips, clip_frames=args.clip_frames,
                                  workers=args.workers, progress=not args.no_progress, backend=cli._backend(args)))
    print(errors_table(out, markdown=False))
    print(f"\ntable: {args.run / 'errors.md'}   TensorBoard: tensorboard --logdir {args.run / 'tb' / 'errors'}")
    return 0
