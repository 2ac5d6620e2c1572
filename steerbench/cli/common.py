"""What every `steerbench` command shares: the parser class, argument types, the common flags
(as argparse parents) and the objects built from them (environment settings, backend, agents).

The flags' meanings are the same in every command: `--first-episode` is the index of the first
episode (docs/metrics.md: which episodes are for what), `--seed` a seed of weights and shuffling.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.backends import KINDS, Backend, probe_address, require_ray
from steerbench.sim.episodes import EVAL_START, collection_start
from steerbench.sim.errors import SteerbenchError
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenario_options import parse_options
from steerbench.sim.scenarios import parse_scenarios
from steerbench.sim.types import SPLITS, CameraConfig

LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")
# names of a run directory's own parts and of the study's TensorBoard runs (tb/ceiling, tb/diagnosis, tb/scale)
RESERVED_LABELS = ("tb", "media", "study", "errors", "models", "figures", "ceiling", "diagnosis", "scale")
Handler = Callable[[argparse.Namespace], int]


class UsageError(SteerbenchError, ValueError):
    """Flags that cannot go together, found after parsing."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        """Print `message` with a pointer to --help on one line, and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command(sub, name: str, handler: Handler, help: str, parents: Sequence[argparse.ArgumentParser] = ()) -> Parser:
    """A subcommand whose parsed arguments go to `handler`, with the shared flags of `parents`."""
    p = sub.add_parser(name, help=help, parents=list(parents), formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(handler=handler)
    return p


# -- argument types --------------------------------------------------------------------------
def number(kind, minimum: float, strict: bool):
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


def positive(kind):
    """argparse type: a `kind` number > 0."""
    return number(kind, 0, strict=True)


non_negative_int = number(int, 0, strict=False)
non_negative_float = number(float, 0, strict=False)


def fraction(text: str) -> float:
    """argparse type: a share in [0, 1]."""
    value = number(float, 0.0, strict=False)(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def share(text: str) -> float:
    """argparse type: a share in (0, 1]."""
    value = positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be <= 1, got {text}")
    return value


def datasets(flag: str, paths) -> tuple[str, ...]:
    """`paths` as strings, each the directory of a `steerbench collect` dataset (it has
    index.jsonl); UsageError naming `flag` otherwise (checked when the command runs, before any work)."""
    for path in paths:
        if not (Path(path) / "index.jsonl").is_file():
            raise UsageError(f"{flag} {path} is not a steerbench dataset (no index.jsonl; steerbench collect)")
    return tuple(str(p) for p in paths)


def frame_size(text: str) -> tuple[int, int]:
    """argparse type: `WIDTHxHEIGHT`, each at least 16 -> (width, height)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or int(m[1]) < 16 or int(m[2]) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got {text!r}")
    return int(m[1]), int(m[2])


def net_sizes(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated network sizes among S, M and L (any case, duplicates dropped)."""
    nets = tuple(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not nets or any(n not in ("S", "M", "L") for n in nets):
        raise argparse.ArgumentTypeError(f"expected sizes among S,M,L, got {text!r}")
    return nets


# -- shared flags, as argparse parents -------------------------------------------------------
def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def progress_flag() -> argparse.ArgumentParser:
    """A parent parser with `--no-progress`."""
    p = _parent()
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def workers_flag(help: str = "parallel worker processes") -> argparse.ArgumentParser:
    """A parent parser with `--workers N` (N >= 1)."""
    p = _parent()
    p.add_argument("--workers", type=positive(int), default=1, help=help)
    return p


def logdir_flag(default: Path | None, help: str = "run directory (resumed if it exists)") -> argparse.ArgumentParser:
    """A parent parser with `--logdir`, required when `default` is None."""
    p = _parent()
    if default is None:
        p.add_argument("--logdir", type=Path, required=True, help=help)
    else:
        p.add_argument("--logdir", type=Path, default=default, help=help)
    return p


def address_flag() -> argparse.ArgumentParser:
    """A parent parser with `--address`, a running Ray cluster."""
    p = _parent()
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="a running Ray cluster ('auto', HOST:6379 or ray://HOST:10001); default: start a local "
                        "Ray instance")
    return p


def backend_flags() -> argparse.ArgumentParser:
    """A parent parser with `--backend process|ray` and `--address`."""
    p = argparse.ArgumentParser(add_help=False, parents=[address_flag()])
    p.add_argument("--backend", choices=KINDS, default="process",
                   help="process: worker processes here; ray: Ray actors, one per CPU of the cluster unless "
                        "--workers N > 1 (pip install 'steerbench[ray]'; docs/ray.md); --address applies to ray")
    return p


def agent_flags(many: bool = True) -> argparse.ArgumentParser:
    """A parent parser with `--agent [LABEL=]AGENT` (required, repeatable) and `--agent-opt LABEL.KEY=VALUE`."""
    p = _parent()
    p.add_argument("--agent", action="append", required=True, metavar="[LABEL=]AGENT",
                   help="registry name, entry point or module:Class" + ("; repeat for several agents" if many else ""))
    p.add_argument("--agent-opt", action="append", default=[], metavar="LABEL.KEY=VALUE",
                   help="set an option of one agent, e.g. expert.politeness=0.3")
    return p


class _Deprecated(argparse.Action):
    """The old spelling of a flag: still works, with a one-line notice."""

    def __init__(self, *args, replacement: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"steerbench: {option_string} is deprecated here; use {self.replacement} (the index of the first "
              "episode; --seed now always means a weight seed)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def episode_flags(split: bool = True, first: int | None = EVAL_START, scenarios: str = "all",
                  episodes: int = 10) -> argparse.ArgumentParser:
    """Which episodes: scenarios, split, how many, the first index (None: per split, for collect)."""
    p = _parent()
    p.add_argument("--scenarios", default=scenarios, help="comma-separated scenario names, or 'all'")
    if split:
        p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--episodes", type=positive(int), default=episodes, help="episodes per scenario")
    # collect's default depends on --split ("%(default).0s" keeps the help formatter from printing None)
    per_split = f"{collection_start('train')} on train, train-dev and dev, {collection_start('test')} on test"
    p.add_argument("--first-episode", type=non_negative_int, default=first, metavar="INDEX",
                   help="index of the first episode (docs/metrics.md: which episodes are for what)"
                        + ("" if first is not None else f"%(default).0s (default: {per_split})"))
    p.add_argument("--seed", type=non_negative_int, dest="first_episode", action=_Deprecated,
                   replacement="--first-episode", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def env_flags() -> argparse.ArgumentParser:
    """The environment settings (camera, rates, mode, simulation core)."""
    p = _parent()
    p.add_argument("--mode", choices=("steering", "full"), default="steering",
                   help="steering: shared cruise control drives the throttle; full: the agent does")
    p.add_argument("--frame-size", type=frame_size, default=(128, 64), metavar="WxH")
    p.add_argument("--scaling", type=positive(float), default=1.75, help="camera scale [px/m]")
    p.add_argument("--stack", type=positive(int), default=4, help="frames per observation")
    p.add_argument("--color", action="store_true", help="RGB frames instead of grayscale")
    p.add_argument("--policy-hz", type=positive(int), default=5)
    p.add_argument("--sim-hz", type=positive(int), default=10)
    p.add_argument("--fast-sim", action="store_true",
                   help="the fast simulation core: identical results, 2-4x faster dense scenarios (docs/simcore.md)")
    p.add_argument("--scenario-opt", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="override a scenario's parameter in every split, e.g. highway.lanes_count=5 "
                        "(steerbench scenarios --options lists them; docs/scenarios.md)")
    return p


# -- what the flags build --------------------------------------------------------------------
def backend(args: argparse.Namespace) -> Backend:
    """The backend asked for; with Ray, checked to be installed and, given an address, to have
    something listening there, now (not after hours of training)."""
    chosen = Backend(args.backend, args.address)
    if chosen.kind == "ray":
        require_ray()
        probe_address(chosen.address)
    return chosen


def env_settings(args: argparse.Namespace) -> EnvSettings:
    """The EnvSettings of the env flags; UsageError when --policy-hz is below 5 or does not divide
    --sim-hz."""
    if args.sim_hz % args.policy_hz or args.policy_hz < 5:
        raise UsageError("--policy-hz must be at least 5 and divide --sim-hz")
    camera = CameraConfig(width=args.frame_size[0], height=args.frame_size[1], scaling=args.scaling,
                          stack=args.stack, color=args.color)
    names = [s.name for s in parse_scenarios(args.scenarios)]
    return EnvSettings(mode=args.mode, camera=camera, policy_hz=args.policy_hz, sim_hz=args.sim_hz,
                       scenario_options=parse_options(args.scenario_opt, names), fast=getattr(args, "fast_sim", False))


def label_of(agent_arg: str) -> str:
    """The label an `--agent` argument gets: LABEL= if given, else the class or registry name."""
    label, sep, spec = agent_arg.partition("=")
    if sep:
        return label
    return agent_arg.rsplit(":", 1)[1] if ":" in agent_arg else agent_arg


def parse_agents(agent_args: Sequence[str], opt_args: Sequence[str]) -> tuple[AgentSpec, ...]:
    """`--agent` and `--agent-opt` arguments as agent specs, labels checked to be distinct."""
    pairs = []
    for arg in agent_args:
        label, sep, spec = arg.partition("=")
        if not sep:
            label, spec = label_of(arg), arg
        if not LABEL.match(label) or label in RESERVED_LABELS:
            raise UsageError(f"bad agent label {label!r}: use letters, digits, '_', '-', '.' "
                             f"(not {', '.join(RESERVED_LABELS)})")
        pairs.append((label, resolve(spec)))
    labels = [label for label, _ in pairs]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise UsageError(f"agent label {dupes[0]!r} given twice; name them, e.g. --agent {dupes[0]}2={dupes[0]}")
    options = _options(labels, opt_args)
    return tuple(AgentSpec(label, target, tuple(options[label])) for label, target in pairs)


def _options(labels: list[str], opt_args: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    options: dict[str, list[tuple[str, str]]] = {label: [] for label in labels}
    for opt in opt_args:
        name, sep, value = opt.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+\.[A-Za-z_]\w*", name):
            raise UsageError(f"malformed --agent-opt {opt!r}: expected LABEL.KEY=VALUE")
        # Labels may hold dots and keys may name a part (LABEL.STAGE.KEY): the longest label wins.
        label = max((lab for lab in labels if name.startswith(lab + ".")), key=len, default=None)
        if label is None:
            raise UsageError(f"--agent-opt {opt!r} names agent {name.rsplit('.', 1)[0]!r}, which is not among "
                             f"--agent ({', '.join(labels)})")
        key = name[len(label) + 1:]
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?", key):
            raise UsageError(f"malformed --agent-opt {opt!r}: expected LABEL.KEY=VALUE or LABEL.STAGE.KEY=VALUE")
        options[label].append((key, value))
    return options
