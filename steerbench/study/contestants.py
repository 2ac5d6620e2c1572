"""The agents a study compares: the default line-up, and each one's instances per training seed.

A contestant is one design (say "modular with the learned detector and pixel lanes"); a learned
contestant is trained once per training seed, and each trained copy is evaluated as its own agent
labelled `<name>-s<k>`. Results of behaviour cloning vary between training seeds, so the study
reports a learned contestant as the mean over its seeds with their spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from steerbench.agents.registry import AgentError, AgentSpec, resolve
from steerbench.sim.errors import SteerbenchError
from steerbench.study.models import Models


@dataclass(frozen=True)
class Contestant:
    """One design the study compares; a learned one (`models` set) is trained once per training seed."""

    name: str  # the label in reports; instances are `name` or `name-s<k>`
    family: str  # expert | modular | e2e | user
    target: str  # module:Class
    options: tuple[tuple[str, str], ...] = ()
    # (option, model) per model it drives with: the option takes the checkpoint; a model is
    # "detector", "lanes", "e2e-<size>" or "dagger-<size>" (DA-RB on that network). Every model of
    # one copy has that copy's training seed.
    models: tuple[tuple[str, str], ...] = ()

    @property
    def learned(self) -> bool:
        """True when it has a model to train."""
        return bool(self.models)

    def instances(self, models: Models | None, seeds: Sequence[int]) -> list[tuple[int | None, AgentSpec]]:
        """(training seed or None, agent spec) per evaluated copy; trains missing models."""
        if not self.learned:
            return [(None, AgentSpec(self.name, self.target, self.options))]
        if models is None:
            raise SteerbenchError(f"contestant {self.name} is learned: it needs a models directory")
        return [(k, AgentSpec(f"{self.name}-s{k}", self.target, self.options + tuple(
            (option, str(_weights(models, model, k))) for option, model in self.models))) for k in seeds]


def _weights(models: Models, model: str, seed: int):
    if model == "detector":
        return models.detector(seed)
    if model == "lanes":
        return models.lanes(seed)
    kind, size = model.split("-", 1)
    return models.dagger(size, seed) if kind == "dagger" else models.e2e(size, seed)


def _modular(detector: str, lanes: str) -> Contestant:
    learned = ((("checkpoint", "detector"),) if detector == "learned" else ()) + \
        ((("lanes.checkpoint", "lanes"),) if lanes == "learned" else ())
    short = {"ground_truth": "gt"}.get(detector, detector)
    return Contestant(f"modular-{short}-{lanes}", "modular", resolve("modular"),
                      (("detector", detector), ("lanes", lanes)), learned)


def _e2e(size: str) -> Contestant:
    return Contestant(f"e2e-{size}", "e2e", resolve("e2e"), (), (("checkpoint", f"e2e-{size}"),))


def dagger_contestant(size: str) -> Contestant:
    """The network `size` after DA-RB rounds (`scale`'s DAgger curve; not in compare's line-up)."""
    return Contestant(f"e2e-{size}-dagger", "e2e", resolve("e2e"), (), (("checkpoint", f"dagger-{size}"),))


def lineup() -> dict[str, Contestant]:
    """Every built-in contestant by name; `compare`'s default is all of them."""
    out = [Contestant("expert", "expert", resolve("expert"))]
    out += [_modular(d, lanes) for d in ("ground_truth", "classical", "learned")
            for lanes in ("map", "pixels", "learned")]
    out += [_e2e(size) for size in ("S", "M", "L")]
    return {c.name: c for c in out}


def user_contestant(spec: AgentSpec) -> Contestant:
    """A researcher's own agent (`--agent`), evaluated as it is (nothing to train)."""
    return Contestant(spec.label, "user", spec.target, spec.options)


def select(names: Sequence[str]) -> list[Contestant]:
    """The built-in contestants named, in that order; AgentError for an unknown name."""
    known = lineup()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AgentError(f"unknown contestant {unknown[0]!r}; choose from {', '.join(known)}")
    return [known[n] for n in names]
