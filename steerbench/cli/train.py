"""The training commands: `train-e2e` (behaviour cloning, optionally DAgger), `train-detector` and `train-lanes`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from steerbench.sim.scenarios import parse_scenarios

from . import common


def register(sub) -> None:
    """Add `train-e2e`, `train-detector` and `train-lanes`."""
    _train_e2e_parser(sub)
    d = common.command(sub, "train-detector", cmd_train_detector,
                       "collect labelled frames and train the learned vehicle detector",
                       parents=[common.logdir_flag(None), common.workers_flag("parallel collection processes"),
                                common.backend_flags(), common.progress_flag()])
    d.add_argument("--frames", type=common.positive(int), required=True,
                   help="train frames (equal shares per scenario)")
    d.add_argument("--scenarios", default="highway,racetrack", help="comma-separated scenario names, or 'all'")
    d.add_argument("--data", type=Path, default=None,
                   help="dataset directory (collected or resumed); default LOGDIR/data")
    d.add_argument("--epochs", type=common.positive(int), default=10, help="most epochs to train")
    d.add_argument("--seed", type=common.non_negative_int, default=0, help="seeds weights, shuffling and augmentation")
    d.add_argument("--eval-frames", type=common.positive(int), default=600,
                   help="held-out frames per split (train-dev, dev)")
    _train_lanes_parser(sub)


def _train_lanes_parser(sub) -> None:
    t = common.command(sub, "train-lanes", cmd_train_lanes,
                       "train the learned lane model on a dataset's lane labels",
                       parents=[common.logdir_flag(None), common.progress_flag()])
    t.add_argument("--data", type=Path, required=True,
                   help="dataset directory from steerbench collect (train, train-dev and optionally dev episodes)")
    t.add_argument("--scenarios", default=None,
                   help="comma-separated scenario names, or 'all' (default: those with train episodes in --data)")
    t.add_argument("--frames", type=common.positive(int), default=None,
                   help="train frames, equal shares per scenario (default: every train frame)")
    t.add_argument("--extra-data", type=Path, action="append", default=[], metavar="DIR",
                   help="another dataset whose every train frame of the scenarios is trained on too, on top of "
                        "--frames: other road layouts, collected with --scenario-opt (repeatable; "
                        "docs/perception.md); held-out frames come from --data only")
    t.add_argument("--eval-frames", type=common.positive(int), default=600,
                   help="held-out frames per split (train-dev, dev), at most")
    t.add_argument("--epochs", type=common.positive(int), default=10, help="most epochs to train")
    t.add_argument("--batch", type=common.positive(int), default=32)
    t.add_argument("--lr", type=common.positive(float), default=2e-3)
    t.add_argument("--seed", type=common.non_negative_int, default=0, help="seeds weights, shuffling and augmentation")
    t.add_argument("--patience", type=common.positive(int), default=None,
                   help="epochs without train-dev improvement (default: LaneTrainConfig's, 10)")
    t.add_argument("--viewpoint", type=common.fraction, default=0.0,
                   help="share of train frames seen from a displaced ego (up to 1.5 m and --viewpoint-rotate) with "
                        "the lane labels moved with it: the model learns where the lane is when the ego is off its "
                        "centre (0: off; docs/perception.md)")
    t.add_argument("--viewpoint-rotate", type=common.non_negative_float, default=None, metavar="DEG",
                   help="the displaced ego's largest turn, at most 45 (default: perception/lane_displace.py's, 10)")
    t.add_argument("--branched", action=argparse.BooleanOptionalAction, default=True,
                   help="one fully connected head per navigation command, picked by the command (the default); "
                        "--no-branched: one head, which the command's one-hot joins (docs/perception.md)")
    t.add_argument("--named-commands", action="store_true",
                   help="navigation commands by name across scenarios, one head each: without it highway's "
                        "'follow' shares the first head with the roundabout's first exit (docs/perception.md)")
    t.add_argument("--odometry", action="store_true",
                   help="the ego's heading since the episode began, dead-reckoned from its speed and steering, as "
                        "an input: which roundabout exit is commanded depends on how far round the car has come")
    g = t.add_argument_group("DAgger (the modular agent's own rollouts, lane-labelled by the map; docs/perception.md)")
    g.add_argument("--dagger-rounds", type=common.non_negative_int, default=0,
                   help="rounds after the first model: roll the modular agent out with the last model, add the "
                        "rollouts to the run's own copy of the data, train afresh on both")
    g.add_argument("--dagger-episodes", type=common.positive(int), default=20,
                   help="rollouts per scenario and round")
    g.add_argument("--dagger-scenarios", default=None,
                   help="where to roll out (default: the scenarios the model trains on)")
    g.add_argument("--dagger-critical", type=common.share, default=1.0, metavar="SHARE",
                   help="keep of each rollout only this share of its steps, where the last model errs most (1: all)")
    g.add_argument("--dagger-repeat", type=common.positive(int), default=1, metavar="K",
                   help="take each kept rollout step K times")
    g.add_argument("--workers", type=common.positive(int), default=1, help="parallel processes for the rollouts")


def _train_e2e_parser(sub) -> None:
    t = common.command(sub, "train-e2e", cmd_train_e2e, "train the end-to-end network by imitation of a dataset",
                       parents=[common.logdir_flag(None), common.workers_flag("parallel processes for rollouts"),
                                common.backend_flags(), common.progress_flag()])
    t.add_argument("--data", type=Path, required=True, help="dataset directory from steerbench collect")
    t.add_argument("--size", choices=("S", "M", "L"), default="M")
    t.add_argument("--epochs", type=common.positive(int), default=10)
    t.add_argument("--batch", type=common.positive(int), default=64)
    t.add_argument("--lr", type=common.positive(float), default=1e-3)
    t.add_argument("--seed", type=common.non_negative_int, default=0, help="seeds weights and shuffling")
    t.add_argument("--patience", type=common.positive(int), default=3, help="epochs without train-dev improvement")
    t.add_argument("--full", action="store_true", help="also predict acceleration (for --mode full)")
    b = t.add_argument_group("step budget (instead of --epochs; docs/e2e.md)")
    b.add_argument("--steps", type=common.non_negative_int, default=0,
                   help="train for at most this many updates (0: by --epochs)")
    b.add_argument("--eval-every", type=common.non_negative_int, default=0,
                   help="updates between train-dev measurements (0: one pass over the data, 50-1000)")
    b.add_argument("--patience-steps", type=common.non_negative_int, default=0,
                   help="updates without train-dev improvement before stopping (0: 5 measurements or a fifth "
                        "of --steps, whichever is more)")
    b.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over the budget: constant, or warm-up then cosine decay to 5%%")
    t.add_argument("--viewpoint", type=common.fraction, default=0.0,
                   help="share of samples seen from a displaced ego (up to 1 m, 5 deg) with the steering label "
                        "corrected back to the path, PilotNet's augmentation (0: off; docs/e2e.md)")
    t.add_argument("--viewpoint-recover", type=common.positive(float), default=2.0, metavar="SECONDS",
                   help="the corrected label's horizon: back on the recorded path this far ahead")
    t.add_argument("--channels-last", action="store_true",
                   help="train in torch's channels-last memory layout: faster on the CPU (bench/train_layout.py), "
                        "rounds otherwise, so another model than without it")
    g = t.add_argument_group("DAgger (after behaviour cloning; docs/e2e.md)")
    g.add_argument("--dagger-rounds", type=common.non_negative_int, default=0,
                   help="DAgger rounds after behaviour cloning (student rollouts labelled by the expert)")
    g.add_argument("--dagger-episodes", type=common.positive(int), default=10,
                   help="student rollouts per scenario and round")
    g.add_argument("--dagger-eval-episodes", type=common.positive(int), default=5,
                   help="closed-loop episodes per scenario after each round")
    g.add_argument("--dagger-scenarios", default=None,
                   help="where to roll out (default: the dataset's train scenarios)")
    g.add_argument("--dagger-buffer", type=common.non_negative_int, default=None, metavar="FRAMES",
                   help="DA-RB: a replay buffer of at most FRAMES rollout frames, those where the student errs "
                        "most (default 0: no bound, plain DAgger); the base data always stays")
    g.add_argument("--dagger-critical", type=common.share, default=None, metavar="SHARE",
                   help="DA-RB: keep this share of each rollout's states, where the student errs most "
                        "(default 1: all)")


def cmd_train_e2e(args: argparse.Namespace) -> int:
    """`steerbench train-e2e`: behaviour cloning, then DAgger rounds when asked for."""
    from steerbench.agents.e2e_train import TrainConfig, train

    cfg = TrainConfig(data=str(args.data), logdir=str(args.logdir), size=args.size, epochs=args.epochs,
                      batch=args.batch, lr=args.lr, seed=args.seed, patience=args.patience,
                      outputs=2 if args.full else 1, steps=args.steps, eval_every=args.eval_every,
                      patience_steps=args.patience_steps, schedule=args.schedule, viewpoint=args.viewpoint,
                      viewpoint_recover_s=args.viewpoint_recover, channels_last=args.channels_last,
                      progress=not args.no_progress)
    if args.dagger_rounds:
        return _dagger(args, cfg)
    if args.dagger_buffer is not None or args.dagger_critical is not None:
        raise common.UsageError("--dagger-buffer and --dagger-critical need --dagger-rounds")
    state = train(cfg)
    for h in state["history"]:
        at = f"step {h['step']}" if "step" in h else f"epoch {h['epoch']}"
        print(f"{at}: train L1 {h['train_l1']:.4f}, train-dev L1 {h['train_dev_l1']:.4f}")
    print(f"best train-dev L1 {state['best']:.4f}; checkpoint {args.logdir / 'checkpoints' / 'best.pt'}")
    return 0


def _dagger(args: argparse.Namespace, train_cfg) -> int:
    from steerbench.harness.collect import dataset_settings
    from steerbench.harness.dagger import DaggerConfig, run_dagger

    env, scenarios = dataset_settings(args.data)
    if args.dagger_scenarios:
        scenarios = tuple(s.name for s in parse_scenarios(args.dagger_scenarios))
    if not scenarios:
        raise common.UsageError(f"{args.data} has no train episodes to take DAgger's scenarios from; "
                                "give --dagger-scenarios")
    history = run_dagger(DaggerConfig(
        train=train_cfg, rounds=args.dagger_rounds, scenarios=scenarios, episodes=args.dagger_episodes,
        eval_episodes=args.dagger_eval_episodes, workers=args.workers, env=env, progress=not args.no_progress,
        backend=common.backend(args),
        buffer=args.dagger_buffer or 0, critical=1.0 if args.dagger_critical is None else args.dagger_critical,
    ))
    for h in history:
        scores = ", ".join(f"{s} {h[s]['driving_score']:.2f}" for s in scenarios if s in h)
        held = (f"; buffer {h['buffer']['frames']} rollout frames, base share {h['buffer']['base_share']:.2f}"
                if "buffer" in h else "")
        print(f"round {h['round']}: driving score {scores}; checkpoint {h['checkpoint']}{held}")
    print(f"per-round scores: {args.logdir / 'dagger.json'}   TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def cmd_train_detector(args: argparse.Namespace) -> int:
    """`steerbench train-detector`: collect the labelled frames that are missing, then train the detector."""
    from steerbench.harness.collect import CollectConfig, collect
    from steerbench.perception.learned_train import DetectorTrainConfig, prepare_data, results_table, train_detector

    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    data = args.data or args.logdir / "data"
    (teacher,) = common.parse_agents(["expert"], [])
    backend = common.backend(args)

    def collect_episodes(scenario: str, split: str, episodes: int, missing: int) -> None:
        collect(CollectConfig(teacher=teacher, scenarios=(scenario,), split=split, episodes=episodes,
                              workers=min(args.workers, missing), out=data, progress=not args.no_progress,
                              backend=backend))

    cfg = DetectorTrainConfig(data=str(data), logdir=str(args.logdir), scenarios=scenarios, frames=args.frames,
                              eval_frames=args.eval_frames, epochs=args.epochs, seed=args.seed,
                              progress=not args.no_progress)
    prepare_data(cfg, collect_episodes)
    metrics = train_detector(cfg)
    print(results_table(metrics))
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; operating score threshold "
          f"{metrics['score_threshold']:g}; matching: perception/metrics.py (Hungarian, centres within 2 m)")
    print(f"checkpoint: {metrics['checkpoint']}   metrics: {args.logdir / 'metrics.json'}   "
          f"TensorBoard: tensorboard --logdir {args.logdir / 'tb'}")
    return 0


def cmd_train_lanes(args: argparse.Namespace) -> int:
    """`steerbench train-lanes`: train the lane model on a dataset (or resume), print held-out quality."""
    from steerbench.perception.lane_train import LaneTrainConfig, results_table, train_lanes

    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios)) if args.scenarios else ()
    cfg = LaneTrainConfig(data=str(args.data), logdir=str(args.logdir), scenarios=scenarios, frames=args.frames,
                          eval_frames=args.eval_frames, epochs=args.epochs, batch=args.batch, lr=args.lr,
                          seed=args.seed, viewpoint=args.viewpoint,
                          branched=args.branched, odometry=args.odometry,
                          extra_data=common.datasets("--extra-data", args.extra_data),
                          named_commands=args.named_commands, progress=not args.no_progress)
    given = {k: getattr(args, k) for k in ("viewpoint_rotate", "patience") if getattr(args, k) is not None}
    cfg = dataclasses.replace(cfg, **given)  # the rest: the config's defaults (the CLI does not import torch)
    if args.dagger_rounds:
        return _lane_dagger(args, cfg)
    metrics = train_lanes(cfg)
    print(results_table(metrics))
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; {metrics['parameters']} parameters; "
          "lateral error of the ego lane's centre at arc lengths 5/10/20 m [m], heading at the ego [deg]; "
          "the last column: at 10 m with the ego 1.5 m off its lane's centre, to either side")
    print(f"checkpoint: {metrics['checkpoint']}   metrics: {args.logdir / 'metrics.json'}   "
          f"TensorBoard: tensorboard --logdir {args.logdir / 'tb'}")
    return 0


def _lane_dagger(args: argparse.Namespace, train_cfg) -> int:
    from steerbench.harness.lane_dagger import LaneDaggerConfig, run_lane_dagger
    from steerbench.perception.lane_train import results_table

    scenarios = tuple(s.name for s in parse_scenarios(args.dagger_scenarios)) if args.dagger_scenarios else ()
    history = run_lane_dagger(LaneDaggerConfig(train=train_cfg, rounds=args.dagger_rounds, scenarios=scenarios,
                                               episodes=args.dagger_episodes, workers=args.workers,
                                               progress=not args.no_progress, critical=args.dagger_critical,
                                               repeat=args.dagger_repeat))
    for h in history:
        rollouts = ", ".join(f"{s} {n}" for s, n in h["rollout_frames"].items()) or "none"
        print(f"round {h['round']}: {h['train_frames']} train frames (rollout frames: {rollouts}); "
              f"checkpoint {h['checkpoint']}")
    print(results_table({"splits": history[-1]["held_out"]}))
    print(f"the model: {history[-1]['checkpoint']}   per round: {args.logdir / 'lane_dagger.json'}")
    return 0
