"""The `steerbench` command: scenarios, agents, eval, collect, train-e2e, train-detector, ceiling, diagnose;
the study's compare, scale and errors are in cli_study, the Ray Tune sweep in cli_tune."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentError, AgentSpec, describe_options, known_agents, load_object, resolve
from steerbench.sim.dataset import DatasetError
from steerbench.sim.episodes import EVAL_START, collection_start
from steerbench.sim.registration import env_id
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenarios import SUITE, UnknownScenarioError, check_split, parse_scenarios
from steerbench.sim.types import SPLITS, CameraConfig

from steerbench.harness.backends import KINDS, Backend, BackendError, probe_address, require_ray
from steerbench.harness.results import CorruptResultsError
from steerbench.harness.rundir import RunDirError

LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")
RESERVED_LABELS = ("tb", "media", "study", "errors", "models", "figures")  # names of a run directory's own parts


class UsageError(ValueError):
    pass


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that worker pools are shut down on the way out
    (the default action would kill only this process and leave its pool workers running)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


USER_ERRORS = (AgentError, UnknownScenarioError, RunDirError, CorruptResultsError, DatasetError, TrainingError,
               UsageError, BackendError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, minimum: float, strict: bool):
    """argparse type: a `kind` number above `minimum` (or at least it, when not `strict`)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
        return value

    return parse


def _positive(kind):
    return _number(kind, 0, strict=True)


_non_negative_int = _number(int, 0, strict=False)
_non_negative_float = _number(float, 0, strict=False)


def _frame_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m[1]) < 16 or int(m[2]) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got {text!r}")
    return int(m[1]), int(m[2])


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="steerbench", description="Modular vs end-to-end driving on highway-env.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("scenarios", help="list the scenario suite and its train/test differences")
    sub.add_parser("agents", help="list registered agents, their inputs and options")
    e = sub.add_parser("eval", help="evaluate agents on paired episodes",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("--agent", action="append", required=True, metavar="[LABEL=]AGENT",
                   help="registry name, entry point or module:Class; repeat for several agents")
    e.add_argument("--agent-opt", action="append", default=[], metavar="LABEL.KEY=VALUE",
                   help="set an option of one agent, e.g. expert.politeness=0.3")
    _add_episode_args(e)
    _add_backend_args(e)
    e.add_argument("--logdir", type=Path, default=Path("runs/eval"), help="run directory (resumed if it exists)")
    e.add_argument("--act-timeout", type=_positive(float), default=10.0, help="seconds allowed per act() call")
    e.add_argument("--strips", type=_non_negative_int, default=1, help="episodes per agent x scenario with a frame strip")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("collect", help="record a dataset of teacher rollouts (frames, actions, boxes)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--teacher", default="expert", metavar="AGENT", help="registry name, entry point or module:Class")
    c.add_argument("--teacher-opt", action="append", default=[], metavar="KEY=VALUE", help="an option of the teacher")
    _add_episode_args(c, first=None)
    _add_backend_args(c)
    c.add_argument("--out", type=Path, required=True, help="dataset directory (resumed if it exists)")
    c.add_argument("--noise", type=_non_negative_float, default=0.0,
                   help="sd of steering noise added to the executed action; labels stay clean")
    c.add_argument("--noise-fraction", type=_non_negative_float, default=0.5, help="share of episodes with noise")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    t = sub.add_parser("train-e2e", help="train the end-to-end network by imitation of a dataset",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", type=Path, required=True, help="dataset directory from steerbench collect")
    t.add_argument("--logdir", type=Path, required=True, help="run directory (resumed if it exists)")
    t.add_argument("--size", choices=("S", "M", "L"), default="M")
    t.add_argument("--epochs", type=_positive(int), default=10)
    t.add_argument("--batch", type=_positive(int), default=64)
    t.add_argument("--lr", type=_positive(float), default=1e-3)
    t.add_argument("--seed", type=_non_negative_int, default=0)
    t.add_argument("--patience", type=_positive(int), default=3, help="epochs without train-dev improvement")
    t.add_argument("--full", action="store_true", help="also predict acceleration (for --mode full)")
    t.add_argument("--dagger-rounds", type=_non_negative_int, default=0,
                   help="DAgger rounds after behaviour cloning (student rollouts labelled by the expert)")
    t.add_argument("--dagger-episodes", type=_positive(int), default=10, help="student rollouts per scenario and round")
    t.add_argument("--dagger-eval-episodes", type=_positive(int), default=5,
                   help="closed-loop episodes per scenario after each round")
    t.add_argument("--dagger-scenarios", default=None, help="where to roll out (default: the dataset's train scenarios)")
    t.add_argument("--workers", type=_positive(int), default=1, help="parallel processes for rollouts")
    _add_backend_args(t)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = sub.add_parser("train-detector", help="collect labelled frames and train the learned vehicle detector",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--frames", type=_positive(int), required=True, help="train frames (equal shares per scenario)")
    d.add_argument("--scenarios", default="highway,racetrack", help="comma-separated scenario names, or 'all'")
    d.add_argument("--logdir", type=Path, required=True, help="run directory (resumed if it exists)")
    d.add_argument("--data", type=Path, default=None, help="dataset directory (collected or resumed); default LOGDIR/data")
    d.add_argument("--epochs", type=_positive(int), default=10, help="most epochs to train")
    d.add_argument("--workers", type=_positive(int), default=1, help="parallel collection processes")
    _add_backend_args(d)
    d.add_argument("--seed", type=_non_negative_int, default=0, help="seeds weights, shuffling and augmentation")
    d.add_argument("--eval-frames", type=_positive(int), default=600, help="held-out frames per split (train-dev, dev)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    n = sub.add_parser("diagnose", help="Ng's table: avoidable bias, variance, data mismatch of a learned agent",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    n.add_argument("--agent", required=True, metavar="[LABEL=]AGENT", help="the agent to diagnose")
    n.add_argument("--agent-opt", action="append", default=[], metavar="LABEL.KEY=VALUE", help="an option of the agent")
    n.add_argument("--scenarios", default="highway,racetrack", help="comma-separated scenario names, or 'all'")
    n.add_argument("--episodes", type=_positive(int), default=10, help="episodes per scenario and split")
    n.add_argument("--seed", type=_non_negative_int, default=EVAL_START,
                   help="index of the first episode of every split (docs/metrics.md: which episodes are for what)")
    n.add_argument("--workers", type=_positive(int), default=1, help="parallel worker processes")
    _add_backend_args(n)
    n.add_argument("--data", type=Path, default=None,
                   help="its training dataset: environment settings, and the open-loop steering error per split")
    n.add_argument("--offline-frames", type=_positive(int), default=2000, help="open-loop frames per split, at most")
    n.add_argument("--logdir", type=Path, default=Path("runs/diagnose"), help="run directory (resumed if it exists)")
    n.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = sub.add_parser("ceiling", help="ceiling analysis: the modular agent with each stage replaced by its oracle",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_episode_args(g)
    _add_backend_args(g)
    g.add_argument("--detector", choices=("classical", "learned"), default="classical", help="the pipeline's detector")
    g.add_argument("--checkpoint", default="", help="weights of the learned detector (steerbench train-detector)")
    g.add_argument("--lanes", choices=("pixels", "map"), default="pixels", help="the pipeline's lane source")
    g.add_argument("--controller", choices=("pure_pursuit", "stanley"), default="pure_pursuit")
    g.add_argument("--logdir", type=Path, default=Path("runs/ceiling"), help="run directory (resumed if it exists)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    from steerbench.cli import study as cli_study, tune as cli_tune  # the study's commands (compare, scale, errors) and tune

    cli_study.register(sub)
    cli_tune.register(sub)
    return p


def _add_episode_args(p: argparse.ArgumentParser, split: bool = True, first: int | None = EVAL_START) -> None:
    """The episode flags; `first` is the default first index (None: per split, for collect)."""
    p.add_argument("--scenarios", default="all", help="comma-separated scenario names, or 'all'")
    if split:
        p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--episodes", type=_positive(int), default=10, help="episodes per scenario")
    # The defaults come from steerbench.sim.episodes: the evaluation range for commands that evaluate;
    # collect's depends on --split ("%(default).0s" keeps the help formatter from printing None).
    per_split = f"{collection_start('train')} on train, train-dev and dev, {collection_start('test')} on test"
    p.add_argument("--seed", type=_non_negative_int, default=first,
                   help="index of the first episode (docs/metrics.md: which episodes are for what)"
                        + ("" if first is not None else f"%(default).0s (default: {per_split})"))
    p.add_argument("--workers", type=_positive(int), default=1, help="parallel worker processes")
    p.add_argument("--mode", choices=("steering", "full"), default="steering",
                   help="steering: shared cruise control drives the throttle; full: the agent does")
    p.add_argument("--frame-size", type=_frame_size, default=(128, 64), metavar="WxH")
    p.add_argument("--scaling", type=_positive(float), default=1.75, help="camera scale [px/m]")
    p.add_argument("--stack", type=_positive(int), default=4, help="frames per observation")
    p.add_argument("--color", action="store_true", help="RGB frames instead of grayscale")
    p.add_argument("--policy-hz", type=_positive(int), default=5)
    p.add_argument("--sim-hz", type=_positive(int), default=10)
    p.add_argument("--fast-sim", action="store_true",
                   help="the fast simulation core: identical results, 2-4x faster dense scenarios (docs/simcore.md)")


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=KINDS, default="process",
                   help="process: worker processes here; ray: Ray actors, one per CPU of the cluster unless "
                        "--workers N > 1 (pip install 'steerbench[ray]'; docs/ray.md)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: a running cluster ('auto', HOST:6379 or ray://HOST:10001); "
                        "default: start a local Ray instance")


def _backend(args: argparse.Namespace) -> Backend:
    """The backend asked for; with Ray, checked to be installed and, given an address, to have
    something listening there, now (not after hours of training)."""
    backend = Backend(args.backend, args.address)
    if backend.kind == "ray":
        require_ray()
        probe_address(backend.address)
    return backend


def _env_settings(args: argparse.Namespace) -> EnvSettings:
    if args.sim_hz % args.policy_hz or args.policy_hz < 5:
        raise UsageError("--policy-hz must be at least 5 and divide --sim-hz")
    camera = CameraConfig(width=args.frame_size[0], height=args.frame_size[1], scaling=args.scaling,
                          stack=args.stack, color=args.color)
    return EnvSettings(mode=args.mode, camera=camera, policy_hz=args.policy_hz, sim_hz=args.sim_hz,
                       fast=getattr(args, "fast_sim", False))


def parse_agents(agent_args: Sequence[str], opt_args: Sequence[str]) -> tuple[AgentSpec, ...]:
    pairs = []
    for arg in agent_args:
        label, sep, spec = arg.partition("=")
        if not sep:
            label, spec = _label_of(arg), arg
        if not LABEL.match(label) or label in RESERVED_LABELS:
            raise UsageError(f"bad agent label {label!r}: use letters, digits, '_', '-', '.' (not {', '.join(RESERVED_LABELS)})")
        pairs.append((label, resolve(spec)))
    labels = [label for label, _ in pairs]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise UsageError(f"agent label {dupes[0]!r} given twice; name them, e.g. --agent {dupes[0]}2={dupes[0]}")
    options: dict[str, list[tuple[str, str]]] = {label: [] for label in labels}
    for opt in opt_args:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+?)\.([A-Za-z_]\w*)=(.*)", opt)
        if not m:
            raise UsageError(f"malformed --agent-opt {opt!r}: expected LABEL.KEY=VALUE")
        if m[1] not in options:
            raise UsageError(f"--agent-opt {opt!r} names agent {m[1]!r}, which is not among --agent ({', '.join(labels)})")
        options[m[1]].append((m[2], m[3]))
    return tuple(AgentSpec(label, target, tuple(options[label])) for label, target in pairs)


def cmd_scenarios() -> int:
    for s in SUITE.values():
        print(f"{s.name}  ({env_id(s.name)})")
        print(f"  {s.summary}")
        print(f"  commands: {', '.join(f'{i}={c}' for i, c in enumerate(s.commands))}")
        print(f"  train: {s.train.notes}; look: {s.train.look.describe()}")
        print(f"  test:  {s.test.notes}; look: {s.test.look.describe()}")
    print("\nsplits: train and train-dev draw from the train distribution, dev and test from the test one;")
    print("seeds never overlap between splits.")
    return 0


def cmd_agents() -> int:
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
        except AgentError as exc:
            print(f"{name}  {target}  (cannot load: {exc})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from steerbench.harness.evaluate import EvalConfig, run_eval  # heavy imports only when evaluating

    check_split(args.split)
    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    cfg = EvalConfig(
        agents=parse_agents(args.agent, args.agent_opt), scenarios=scenarios, split=args.split,
        episodes=args.episodes, seed=args.seed, workers=args.workers, logdir=args.logdir,
        env=_env_settings(args), act_timeout_s=args.act_timeout, strip_episodes=args.strips,
        progress=not args.no_progress, backend=_backend(args),
    )
    out = run_eval(cfg)
    from steerbench.harness.summary import comparison_table, summary_table

    print()
    print(summary_table(out.groups))
    if out.comparisons:
        print()
        print(comparison_table(out.comparisons))
    print(f"\n{out.ran} episodes run, {len(out.rows) - out.ran} reused from {out.run_dir / 'results.jsonl'}")
    print(f"summary: {out.run_dir / 'summary.md'}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from steerbench.harness.collect import CollectConfig, collect

    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    (teacher,) = parse_agents([args.teacher], [f"{_label_of(args.teacher)}.{o}" for o in args.teacher_opt])
    cfg = CollectConfig(
        teacher=teacher, scenarios=scenarios, split=args.split, episodes=args.episodes,
        seed=collection_start(args.split) if args.seed is None else args.seed,
        workers=args.workers, out=args.out, env=_env_settings(args), noise_std=args.noise,
        noise_fraction=args.noise_fraction, progress=not args.no_progress, backend=_backend(args),
    )
    manifest = collect(cfg)
    for key in sorted(manifest["frames"]):
        print(f"{key}: {manifest['episodes'][key]} episodes, {manifest['frames'][key]} frames")
    print(f"dataset: {args.out} ({manifest['total_frames']} frames; format in docs/dataset.md)")
    return 0


def cmd_train_e2e(args: argparse.Namespace) -> int:
    from steerbench.agents.e2e_train import TrainConfig, train

    cfg = TrainConfig(data=str(args.data), logdir=str(args.logdir), size=args.size, epochs=args.epochs,
                      batch=args.batch, lr=args.lr, seed=args.seed, patience=args.patience,
                      outputs=2 if args.full else 1, progress=not args.no_progress)
    if args.dagger_rounds:
        return _dagger(args, cfg)
    state = train(cfg)
    for h in state["history"]:
        print(f"epoch {h['epoch']}: train L1 {h['train_l1']:.4f}, train-dev L1 {h['train_dev_l1']:.4f}")
    print(f"best train-dev L1 {state['best']:.4f}; checkpoint {args.logdir / 'checkpoints' / 'best.pt'}")
    return 0


def _dagger(args: argparse.Namespace, train_cfg) -> int:
    from steerbench.harness.collect import dataset_settings
    from steerbench.harness.dagger import DaggerConfig, run_dagger

    env, scenarios = dataset_settings(args.data)
    if args.dagger_scenarios:
        scenarios = tuple(s.name for s in parse_scenarios(args.dagger_scenarios))
    if not scenarios:
        raise UsageError(f"{args.data} has no train episodes to take DAgger's scenarios from; give --dagger-scenarios")
    history = run_dagger(DaggerConfig(
        train=train_cfg, rounds=args.dagger_rounds, scenarios=scenarios, episodes=args.dagger_episodes,
        eval_episodes=args.dagger_eval_episodes, workers=args.workers, env=env, progress=not args.no_progress,
        backend=_backend(args),
    ))
    for h in history:
        scores = ", ".join(f"{s} {h[s]['driving_score']:.2f}" for s in scenarios if s in h)
        print(f"round {h['round']}: driving score {scores}; checkpoint {h['checkpoint']}")
    print(f"per-round scores: {args.logdir / 'dagger.json'}   TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def cmd_train_detector(args: argparse.Namespace) -> int:
    from steerbench.perception.learned import DetectorError
    from steerbench.perception.learned_train import DetectorTrainConfig, prepare_data, results_table, train_detector

    from steerbench.harness.collect import CollectConfig, collect

    scenarios = tuple(s.name for s in parse_scenarios(args.scenarios))
    data = args.data or args.logdir / "data"
    (teacher,) = parse_agents(["expert"], [])
    backend = _backend(args)

    def collect_episodes(scenario: str, split: str, episodes: int, missing: int) -> None:
        collect(CollectConfig(teacher=teacher, scenarios=(scenario,), split=split, episodes=episodes,
                              workers=min(args.workers, missing), out=data, progress=not args.no_progress,
                              backend=backend))

    try:
        cfg = DetectorTrainConfig(data=str(data), logdir=str(args.logdir), scenarios=scenarios, frames=args.frames,
                                  eval_frames=args.eval_frames, epochs=args.epochs, seed=args.seed,
                                  progress=not args.no_progress)
        prepare_data(cfg, collect_episodes)
        metrics = train_detector(cfg)
    except DetectorError as exc:
        raise TrainingError(str(exc)) from None
    print(results_table(metrics))
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; operating score threshold "
          f"{metrics['score_threshold']:g}; matching: perception/metrics.py (Hungarian, centres within 2 m)")
    print(f"checkpoint: {metrics['checkpoint']}   metrics: {args.logdir / 'metrics.json'}   "
          f"TensorBoard: tensorboard --logdir {args.logdir / 'tb'}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from steerbench.harness.collect import dataset_settings
    from steerbench.study.diagnose import DiagnoseConfig, diagnosis_tables, log_diagnosis, run_diagnose

    (agent,) = parse_agents([args.agent], args.agent_opt)
    if agent.label == "expert":
        raise UsageError("diagnose compares an agent with the expert; give it another label (--agent NAME=expert)")
    env = dataset_settings(args.data)[0] if args.data else EnvSettings()
    cfg = DiagnoseConfig(agent=agent, scenarios=tuple(s.name for s in parse_scenarios(args.scenarios)),
                         episodes=args.episodes, seed=args.seed, workers=args.workers,
                         logdir=args.logdir, env=env, data=args.data,
                         offline_frames=args.offline_frames, progress=not args.no_progress, backend=_backend(args))
    diag = run_diagnose(cfg)
    text = diagnosis_tables(diag)
    print()
    print(text)
    log_diagnosis(args.logdir, diag, [diagnosis_tables(diag, markdown=True)])
    print(f"\ntables: {args.logdir / 'diagnosis.md'}   TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def cmd_ceiling(args: argparse.Namespace) -> int:
    from steerbench.study.ceiling import CeilingConfig, ceiling_table, run_ceiling

    check_split(args.split)
    if args.detector == "learned" and not args.checkpoint:
        raise UsageError("--detector learned needs --checkpoint PATH (from steerbench train-detector)")
    cfg = CeilingConfig(
        scenarios=tuple(s.name for s in parse_scenarios(args.scenarios)), split=args.split, episodes=args.episodes,
        seed=args.seed, workers=args.workers, logdir=args.logdir, env=_env_settings(args),
        detector=args.detector,
        lanes=args.lanes, controller=args.controller, checkpoint=args.checkpoint, progress=not args.no_progress,
        backend=_backend(args),
    )
    out = run_ceiling(cfg)
    print()
    print(ceiling_table(out.rows))
    print(f"\ntable: {out.run_dir / 'ceiling.md'}   TensorBoard: tensorboard --logdir {out.run_dir}")
    return 0


def _label_of(agent_arg: str) -> str:
    label, sep, spec = agent_arg.partition("=")
    if sep:
        return label
    return agent_arg.rsplit(":", 1)[1] if ":" in agent_arg else agent_arg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.getcwd() not in sys.path:  # module:Class paths resolve from here, as with uvicorn
        sys.path.insert(0, os.getcwd())
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return _dispatch(args)
    except USER_ERRORS as exc:
        print(f"steerbench: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("steerbench: terminated; finished episodes are saved, re-run the command to resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("steerbench: interrupted; finished episodes are saved, re-run the command to resume", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "scenarios":
        return cmd_scenarios()
    if args.command == "agents":
        return cmd_agents()
    if args.command == "collect":
        return cmd_collect(args)
    if args.command == "train-e2e":
        return cmd_train_e2e(args)
    if args.command == "train-detector":
        return cmd_train_detector(args)
    if args.command == "ceiling":
        return cmd_ceiling(args)
    if args.command == "diagnose":
        return cmd_diagnose(args)
    if hasattr(args, "handler"):
        return args.handler(args)
    return cmd_eval(args)


if __name__ == "__main__":
    sys.exit(main())
