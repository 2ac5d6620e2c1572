"""Finding the modular pipeline's stages and building them with typed options.

A stage is named like an agent (`registry`): a built-in name (`classical`), a `module:Class` path,
or the name of an entry point in the stage's group of any installed package:

    [project.entry-points."steerbench.detectors"]
    my_detector = "my_package.detect:MyDetector"

Its options are the fields of its `Options` dataclass, converted from `KEY=VALUE` strings as an
agent's are; what a stage must provide is in `stages`.
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

from steerbench.sim.types import INPUT_KINDS

from .registry import AgentError, build_options, describe_options, load_object
from .stages import KINDS, METHODS

GROUPS = {kind: f"steerbench.{group}" for kind, group in zip(
    KINDS, ("detectors", "trackers", "lanes", "planners", "controllers"))}
_P, _L, _C = (f"steerbench.agents.modular_{m}" for m in ("perception", "lanes", "planning"))
BUILTIN: dict[str, dict[str, str]] = {
    "detector": {"classical": f"{_P}:ClassicalStage", "learned": f"{_P}:LearnedStage",
                 "ground_truth": f"{_P}:TruthDetector"},
    "tracker": {"kalman": f"{_P}:KalmanStage", "ground_truth": f"{_P}:TruthTracker"},
    "lanes": {"map": f"{_L}:MapLanes", "pixels": f"{_L}:PixelLanes",
              "learned": "steerbench.agents.modular_learned_lanes:LearnedLaneSource"},
    "planner": {"candidates": f"{_C}:CandidatePlanner"},
    "controller": {"pure_pursuit": f"{_C}:PurePursuitStage", "stanley": f"{_C}:StanleyStage"},
}


def known_stages(kind: str) -> dict[str, str]:
    """Name -> `module:Class` of every `kind` stage: built-ins first, then installed entry points."""
    installed = {ep.name: ep.value for ep in metadata.entry_points(group=GROUPS[kind])}
    return {**BUILTIN[kind], **{k: v for k, v in installed.items() if k not in BUILTIN[kind]}}


def resolve_stage(kind: str, name: str) -> str:
    """A `kind` stage's name, entry point or `module:Class` -> its `module:Class` (AgentError with a
    hint for an unknown name)."""
    if ":" in name:
        return name
    known = known_stages(kind)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AgentError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)}; or give module:Class)")


def declared_inputs(obj: Any, what: str) -> str:
    """A stage's (class or instance) declared `inputs`, "pixels" when it declares none."""
    inputs = getattr(obj, "inputs", "pixels")
    if inputs not in INPUT_KINDS:
        raise AgentError(f"{what} declares inputs {inputs!r}; use one of {', '.join(INPUT_KINDS)}")
    return inputs


def most_privileged(inputs: Iterable[str]) -> str:
    """The most privileged of some input kinds ("pixels" < "pixels+map" < "privileged")."""
    return max(inputs, key=INPUT_KINDS.index, default="pixels")


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline: its kind, the name it was given by, its class and its options."""

    kind: str
    name: str  # as given: a built-in or entry-point name, or module:Class
    target: str  # module:Class
    options: tuple[tuple[str, str], ...] = ()

    @property
    def what(self) -> str:
        return f"{self.kind} {self.name!r}"

    def load_class(self) -> Any:
        """The stage's class (AgentError when it cannot be loaded or lacks its stage's method)."""
        cls = load_object(self.target, what=self.kind)
        if not callable(getattr(cls, METHODS[self.kind], None)):
            raise AgentError(f"{self.what} ({self.target}) has no {METHODS[self.kind]}() method")
        return cls

    def __call__(self) -> Any:
        """A new instance, built with the options (AgentError when the options or the constructor fail)."""
        cls = self.load_class()
        opts = build_options(cls, dict(self.options), self.what)
        try:
            return cls(opts) if opts is not None else cls()
        except Exception as exc:  # noqa: BLE001 - a missing checkpoint, a bad file, ...
            raise AgentError(f"cannot build {self.what}: {exc}") from None


def stage_spec(kind: str, name: str, options: Iterable[tuple[str, str]] = ()) -> StageSpec:
    """The spec of a `kind` stage, checked now: its class loads and its options convert (AgentError)."""
    spec = StageSpec(kind, name, resolve_stage(kind, name), tuple(options))
    cls = spec.load_class()
    build_options(cls, dict(spec.options), spec.what)
    declared_inputs(cls, spec.what)
    return spec


def describe_stages(label: str = "modular") -> list[str]:
    """Lines for `steerbench agents`: every known stage of each kind, its inputs and its options."""
    lines = [f"stages: --agent-opt {label}.STAGE=NAME|module:Class, their options "
             f"--agent-opt {label}.STAGE.KEY=VALUE (docs/planning.md)"]
    for kind in KINDS:
        for name, target in known_stages(kind).items():
            try:
                cls = load_object(target, what=kind)
                opts = ", ".join(f"{k}=<{t}> {d}" for k, t, d in describe_options(cls)) or "no options"
                text = f"{kind}={name} [{declared_inputs(cls, kind)}]: {opts}"
            except AgentError as exc:
                text = f"{kind}={name}  {target}  (cannot load: {exc})"
            lines += textwrap.wrap(text, 110, initial_indent="  ", subsequent_indent="      ")
    return lines
