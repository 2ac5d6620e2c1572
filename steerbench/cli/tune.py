"""`steerbench tune`: the Ray Tune sweep of the end-to-end network (steerbench/study/tune.py, docs/tune.md)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from steerbench.agents.errors import TrainingError

from . import common


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(dict.fromkeys(float(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _counts(text: str) -> tuple[int, ...]:
    """Positive integers; for --frames, 'all' is the whole train split (0)."""
    try:
        values = tuple(dict.fromkeys(0 if s.strip() == "all" else int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def register(sub) -> None:
    """Add `tune`."""
    p = common.command(sub, "tune", cmd_tune,
                       "sweep the end-to-end network's hyper-parameters and data size on Ray Tune",
                       parents=[common.logdir_flag(Path("runs/tune"), "sweep directory (resumed if it exists)"),
                                common.address_flag(), common.progress_flag()])
    p.add_argument("--data", type=Path, required=True, help="dataset directory from steerbench collect")
    p.add_argument("--sizes", type=common.net_sizes, default=("S", "M"), help="network sizes")
    p.add_argument("--lrs", type=_floats, default=(3e-4, 1e-3, 3e-3), help="Adam learning rates")
    p.add_argument("--batches", type=_counts, default=(64,), help="batch sizes")
    p.add_argument("--frames", type=_counts, default=(0,), help="train frames per trial, e.g. 1000,3000,all")
    p.add_argument("--epochs", type=common.positive(int), default=10, help="most epochs per trial")
    p.add_argument("--patience", type=common.positive(int), default=3, help="epochs without train-dev improvement")
    b = p.add_argument_group("step budget (instead of --epochs, as steerbench scale trains; docs/e2e.md)")
    b.add_argument("--steps", type=common.non_negative_int, default=0,
                   help="train each trial for at most this many updates (0: by --epochs)")
    b.add_argument("--eval-every", type=common.non_negative_int, default=0,
                   help="updates between train-dev measurements (0: one pass over the data, 50-1000)")
    b.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over the budget: constant, or warm-up then cosine decay to 5%%")
    b.add_argument("--channels-last", action="store_true",
                   help="train in channels-last memory layout, as steerbench scale does (train-e2e --channels-last)")
    p.add_argument("--viewpoint", type=common.fraction, default=0.0,
                   help="share of samples seen from a displaced ego (train-e2e --viewpoint; 0: off): the rates "
                        "that train with it are lower (docs/e2e.md)")
    p.add_argument("--seed", type=common.non_negative_int, default=0, help="seeds weights and shuffling")
    p.add_argument("--no-asha", action="store_true", help="train every trial to the end (no ASHA early stopping)")
    p.add_argument("--cpus-per-trial", type=common.positive(float), default=1.0)
    p.add_argument("--gpus-per-trial", type=common.non_negative_float, default=0.0)


def cmd_tune(args: argparse.Namespace) -> int:
    """`steerbench tune`: run the sweep and write its outputs; TrainingError when every trial failed."""
    from steerbench.study.tune import SweepConfig, run_sweep, sweep_table, write_outputs

    if 0 in args.batches:
        raise common.UsageError("--batches must be positive")
    cfg = SweepConfig(data=args.data, logdir=args.logdir, sizes=args.sizes, lrs=args.lrs, batches=args.batches,
                      frames=args.frames, epochs=args.epochs, patience=args.patience, steps=args.steps,
                      eval_every=args.eval_every, schedule=args.schedule, channels_last=args.channels_last,
                      viewpoint=args.viewpoint, seed=args.seed,
                      asha=not args.no_asha, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                      address=args.address, progress=not args.no_progress)
    outcomes = run_sweep(cfg)
    write_outputs(cfg, outcomes, shlex.join(["steerbench", *sys.argv[1:]]))
    print(sweep_table(outcomes, markdown=False))
    print(f"\ntable: {args.logdir / 'tune.md'}   TensorBoard: tensorboard --logdir {args.logdir}")
    failed = [o for o in outcomes if o.error]
    if failed and len(failed) == len(outcomes):
        raise TrainingError(f"every trial failed; the first: {failed[0].error}")
    if failed:
        print(f"steerbench: {len(failed)} of {len(outcomes)} trials failed (see the error column)", file=sys.stderr)
    return 0
