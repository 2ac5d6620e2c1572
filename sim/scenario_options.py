"""`--scenario-opt NAME.KEY=VALUE`: a scenario's documented parameters, overridden for a run.

A key is one of the scenario environment's `default_config()` entries (lanes, traffic counts
and speeds, curve radii, duration, ...; `steerbench scenarios --options` lists them with their
defaults) or an appearance key (`brightness`, `noise_std`). An override applies to every split
of that scenario, on top of the split's own settings: `highway.lanes_count=5` makes the train and
the test highway five lanes wide. Values are typed by the default they replace (an integer, a
number, true/false, or a comma-separated list of numbers) and checked when the command starts.
Overrides travel in `EnvSettings.scenario_options`, so a run directory or dataset records them
and refuses to mix runs made with other ones.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Sequence

from .errors import SteerbenchError
from .scenarios import Appearance, ScenarioSpec, get_scenario

APPEARANCE_KEYS = ("brightness", "noise_std")
# highway-env keys the harness owns (rates, rendering, control, the camera) or that change only
# the stock reward: not a scenario's parameters, and overriding them would break the apparatus
HARNESS_KEYS = frozenset({
    "policy_frequency", "simulation_frequency", "screen_width", "screen_height", "scaling", "centering_position",
    "render_agent", "show_trajectories", "real_time_rendering", "manual_control", "offscreen_rendering",
    "controlled_vehicles", "offroad_terminal", "normalize_reward", "reward_speed_range",
})
Option = tuple[str, str, Any]  # (scenario, key, value); list values as tuples (hashable settings)


class ScenarioOptionError(SteerbenchError, ValueError):
    """A malformed, unknown or mistyped --scenario-opt."""


def parameters(spec: ScenarioSpec) -> dict[str, Any]:
    """Every overridable key of a scenario with its train-split value."""
    config = {**spec.env_class_for("train").default_config(), **spec.train.config}
    out = {k: v for k, v in config.items() if isinstance(v, (bool, int, float, list, tuple))
           and k not in HARNESS_KEYS and not k.endswith("_reward")}
    out.update({k: getattr(spec.train.look, k) for k in APPEARANCE_KEYS})
    return out


def parse_options(texts: Sequence[str], scenarios: Sequence[str]) -> tuple[Option, ...]:
    """The --scenario-opt arguments, checked against the scenarios of the command."""
    out: dict[tuple[str, str], Any] = {}
    for text in texts:
        target, sep, raw = text.partition("=")
        name, dot, key = target.rpartition(".")
        if not sep or not dot or not name or not key:
            raise ScenarioOptionError(f"malformed --scenario-opt {text!r}: expected NAME.KEY=VALUE")
        if name not in scenarios:
            raise ScenarioOptionError(f"--scenario-opt {text!r} names scenario {name!r}, which is not among "
                                      f"--scenarios ({', '.join(scenarios)})")
        known = parameters(get_scenario(name))
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}" if close else f"; known: {', '.join(sorted(known))}"
            raise ScenarioOptionError(f"scenario {name!r} has no parameter {key!r}{hint}")
        out[(name, key)] = _typed(text, raw, known[key])
        _check_range(text, key, out[(name, key)], getattr(get_scenario(name).env_class, "OPTION_RANGES", {}))
    return tuple((name, key, value) for (name, key), value in sorted(out.items()))


def _check_range(text: str, key: str, value: Any, ranges: dict[str, tuple[float, float]]) -> None:
    """An environment class's `OPTION_RANGES`: the bounds of its numeric keys."""
    if key in ranges and not ranges[key][0] <= value <= ranges[key][1]:
        raise ScenarioOptionError(f"bad --scenario-opt {text!r}: {key} is between {ranges[key][0]:g} "
                                  f"and {ranges[key][1]:g}")


def _typed(text: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return raw.lower() == "true"
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        values = tuple(float(v) for v in raw.split(","))
        if len(values) != len(default):
            raise ValueError(f"expected {len(default)} comma-separated numbers")
        return values
    except ValueError as exc:
        kind = type(default).__name__
        raise ScenarioOptionError(f"bad --scenario-opt {text!r}: {exc} (the default is {kind} {default!r})") from None


def applied(scenario: str, config: dict, look: Appearance, options: Sequence[Option]) -> tuple[dict, Appearance]:
    """A split's config and look with the scenario's overrides on top."""
    mine = {key: value for name, key, value in options if name == scenario}
    config = {**config, **{k: list(v) if isinstance(v, tuple) else v for k, v in mine.items()
                           if k not in APPEARANCE_KEYS}}
    look = dataclasses.replace(look, **{k: v for k, v in mine.items() if k in APPEARANCE_KEYS})
    return config, look
