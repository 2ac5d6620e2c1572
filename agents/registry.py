"""Finding agents and building them with typed, validated options.

An agent is named by a registry name (`expert`), a `module:Class` path, or the name of an entry
point in the `steerbench.agents` group of any installed package. Its options are the fields of
the dataclass in its `Options` attribute; `KEY=VALUE` strings are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import re
import typing
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from steerbench.sim.dataset import sha256
from steerbench.sim.errors import SteerbenchError

from .base import AgentInfo

CODE = "code:"  # file_hashes' prefix of a user module's source
MODULE_CLASS = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # an option value naming a stage's class

ENTRY_POINT_GROUP = "steerbench.agents"
BUILTIN: dict[str, str] = {
    "expert": "steerbench.agents.expert:ExpertAgent",
    "lane_keeper": "steerbench.agents.reference:LaneKeeperAgent",
    "idle": "steerbench.agents.reference:IdleAgent",
    "e2e": "steerbench.agents.e2e_agent:E2EAgent",
    "modular": "steerbench.agents.modular:ModularAgent",
}


class AgentError(SteerbenchError, ValueError):
    """A user-facing problem with an agent name, path or option (one line, no traceback)."""


def entry_points() -> dict[str, str]:
    """Entry-point name -> `module:Class` for the `steerbench.agents` group of every installed package."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_agents() -> dict[str, str]:
    """Registry name -> `module:Class`, built-ins first, then installed entry points."""
    return {**BUILTIN, **{k: v for k, v in entry_points().items() if k not in BUILTIN}}


def load_object(path: str, what: str = "agent") -> Any:
    """The object at a `module:attr` path (`attr` may be dotted: `module:Outer.Inner`).

    Raises AgentError (naming `what` the path is for: an agent, a detector, ...) when the path is
    malformed, the module cannot be imported (ImportError) or lacks the attribute.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise AgentError(f"{what} path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentError(f"cannot import {module_name!r} for {what} {path!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AgentError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def resolve(name: str) -> str:
    """A registry name, entry point or `module:Class` -> the `module:Class` path.

    A path (anything with a colon) is returned unchecked: loading it checks it. An unknown name
    raises AgentError, with the closest known name as a hint.
    """
    if ":" in name:
        return name
    known = known_agents()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AgentError(f"unknown agent {name!r}{hint} (known: {', '.join(known)}; or give module:Class)")


# -- options ------------------------------------------------------------------------------
def options_class(cls: Any) -> type | None:
    """The agent class's `Options` dataclass, or None when it has none (or it is not a dataclass)."""
    opts = getattr(cls, "Options", None)
    return opts if opts is not None and dataclasses.is_dataclass(opts) else None


def _convert(text: str, kind: Any, key: str) -> Any:
    origin = get_origin(kind)
    if origin is Literal:
        choices = get_args(kind)
        for c in choices:
            if str(c) == text:
                return c
        raise AgentError(f"option {key}={text!r}: choose one of {', '.join(map(str, choices))}")
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in get_args(kind) if a is not type(None)]
        if text.lower() in ("none", "null") and len(args) < len(get_args(kind)):
            return None
        return _convert(text, args[0], key)
    if kind is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise AgentError(f"option {key}={text!r}: expected true or false")
    if kind in (int, float, str):
        try:
            return kind(text)
        except ValueError:
            raise AgentError(f"option {key}={text!r}: expected {kind.__name__}") from None
    if origin is tuple:
        return _convert_tuple(text, get_args(kind), key)
    raise AgentError(f"option {key} has type {kind!r}, which cannot be set from the command line")


def _convert_tuple(text: str, args: tuple, key: str) -> tuple:
    """`a,b,...` for a `tuple[X, Y]` or a `tuple[X, ...]` field."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    kinds = [args[0]] * len(parts) if len(args) == 2 and args[1] is Ellipsis else list(args)
    if len(kinds) != len(parts):
        raise AgentError(f"option {key}={text!r}: expected {len(kinds)} comma-separated values")
    return tuple(_convert(p, k, key) for p, k in zip(parts, kinds))


def build_options(cls: Any, raw: dict[str, str], what: str = "") -> Any:
    """Options dataclass instance from `KEY=VALUE` strings (None if the agent takes none).

    Values are converted to the field's type (int, float, str, bool as true/false, yes/no, on/off
    or 1/0, a Literal's choices, None for an Optional); unset fields keep their defaults. AgentError
    for options given to an agent without `Options`, an unknown key, a value that does not convert,
    a field type that cannot be set from text, or values the dataclass rejects.

    Dotted keys (`detector.contrast`) are options of a part of the agent: when the dataclass names
    a field in its class attribute `NESTED`, they are handed to that field as (KEY, VALUE) pairs,
    unconverted, for the dataclass to check. `what` names the owner in messages (default: the class).
    """
    opts_cls = options_class(cls)
    if opts_cls is None:
        if raw:
            raise AgentError(f"{what or cls.__name__} takes no options, got {', '.join(raw)}")
        return None
    hints = typing.get_type_hints(opts_cls)
    names = [f.name for f in dataclasses.fields(opts_cls)]
    nested = getattr(opts_cls, "NESTED", None)
    values: dict[str, Any] = {nested: tuple((k, v) for k, v in raw.items() if "." in k)} if nested else {}
    for key, text in raw.items():
        if nested and "." in key:
            continue
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise AgentError(f"unknown option {key!r} for {what or cls.__name__}{hint} "
                             f"(options: {', '.join(names) or 'none'})")
        values[key] = _convert(text, hints[key], key)
    try:
        return opts_cls(**values)
    except AgentError:
        raise  # a part's own option error (a pipeline stage's), already one line
    except (TypeError, ValueError) as exc:
        raise AgentError(f"invalid options for {what or cls.__name__}: {exc}") from None


def _type_name(kind: Any) -> str:
    """How an option's value is written: `int`, `a|b` for a Literal, `float,float` for a pair."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is Literal:
        return "|".join(map(str, args))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{_type_name(args[0])},..."
        return ",".join(map(_type_name, args))
    if origin is typing.Union or str(origin) == "types.UnionType":
        return "|".join("none" if a is type(None) else _type_name(a) for a in args)
    return getattr(kind, "__name__", str(kind))


def describe_options(cls: Any) -> list[tuple[str, str, str]]:
    """(name, type name, repr of the default) of each option, as strings, for `steerbench agents`;
    the default reads `required` for a field without a default, `factory` for one made by a factory."""
    opts_cls = options_class(cls)
    if opts_cls is None:
        return []
    hints = typing.get_type_hints(opts_cls)
    rows = []
    for f in dataclasses.fields(opts_cls):
        if f.name == getattr(opts_cls, "NESTED", None):
            continue  # set through dotted keys, described by the agent (`help_lines`)
        kind = _type_name(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        else:
            default = "factory" if f.default_factory is not dataclasses.MISSING else "required"
        rows.append((f.name, kind, default))
    return rows


# -- a picklable factory --------------------------------------------------------------------
@dataclass(frozen=True)
class AgentSpec:
    """Everything needed to build an agent in another process (picklable; call it to build one)."""

    label: str  # the agent's name in results.jsonl, reports and the run directory
    target: str  # module:Class
    options: tuple[tuple[str, str], ...] = ()  # (KEY, VALUE) strings, converted by build_options

    def load_class(self) -> Any:
        """The agent's class, loaded from `target` (AgentError when it cannot be)."""
        return load_object(self.target)

    def __call__(self) -> Any:
        """A new agent, built with the options and checked (`check_agent`). AgentError for a bad
        target or option, a constructor that raises (a missing checkpoint, ...) or a missing member."""
        cls = self.load_class()
        opts = build_options(cls, dict(self.options))
        try:
            agent = cls(opts) if opts is not None else cls()
        except Exception as exc:  # noqa: BLE001 - a missing checkpoint, a bad file, ...
            raise AgentError(f"cannot build agent {self.label!r}: {exc}") from None
        check_agent(agent, self.label)
        return agent

    def files(self) -> dict[str, Path]:
        """The existing files the options name (a checkpoint, most often), by option name,
        defaults and the options of the agent's parts (`detector.checkpoint`) included."""
        opts = build_options(self.load_class(), dict(self.options))
        if opts is None:
            return {}
        values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
        values.update(self.options)
        return {k: Path(v) for k, v in values.items() if isinstance(v, (str, Path)) and str(v) and Path(v).is_file()}

    def code_files(self) -> dict[str, Path]:
        """The source file of each user module the agent runs, as `code:<module>`: its class's and
        those of the `module:Class` stages its options name. steerbench's own modules are left
        out: the run records its git SHA. Only the module's own file: not what it imports."""
        paths = [self.target, *(v for _, v in self.options if isinstance(v, str) and MODULE_CLASS.fullmatch(v))]
        out = {}
        for path in paths:
            module = path.split(":", 1)[0]
            source = _user_source(module)
            if source is not None:
                out[f"{CODE}{module}"] = source
        return out

    def file_hashes(self) -> dict[str, str]:
        """sha256 of the content of each file an option names, and of the user code it runs
        (`code_files`): the agent's identity in a run directory, beside its options, so that weights
        retrained at the same path, or an edited agent, are another agent."""
        return {k: sha256(p) for k, p in {**self.files(), **self.code_files()}.items()}


def changed_files(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """The keys of two `file_hashes` records that differ. A record from before user code was hashed
    (no `code:` key) is compared on its files only."""
    if not any(k.startswith(CODE) for k in old):
        new = {k: v for k, v in new.items() if not k.startswith(CODE)}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _user_source(module: str) -> Path | None:
    """The .py file of `module` when it is not steerbench's own; None for a package without one."""
    if module == "steerbench" or module.startswith("steerbench."):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") and Path(origin).is_file() else None


def check_agent(agent: Any, label: str) -> AgentInfo:
    """The agent's `info`, after checking that it has callable `reset` and `act` and an `info` of type
    AgentInfo; AgentError (naming `label`) otherwise."""
    for member in ("reset", "act"):
        if not callable(getattr(agent, member, None)):
            raise AgentError(f"agent {label!r} has no {member}() method")
    info = getattr(agent, "info", None)
    if not isinstance(info, AgentInfo):
        raise AgentError(f"agent {label!r} must have an `info` attribute of type AgentInfo")
    return info


def check_camera(agent: Any, label: str, camera: Any) -> None:
    """An agent's optional `check_camera(camera: CameraConfig)`, raising ValueError for frames it
    cannot drive with (a network trained on another frame stack): refused before the first
    episode, in one line, rather than failing every episode."""
    check = getattr(agent, "check_camera", None)
    if not callable(check):
        return
    try:
        check(camera)
    except ValueError as exc:
        raise AgentError(f"agent {label!r} cannot drive with this camera: {exc}") from None
