"""The stress family: named conditions beyond the test split, built on `--scenario-opt` overrides.

The test split already differs from the train split (more traffic, tighter highway curves, other
colours, darker and noisier frames). A stress condition pushes one of those axes further, so that
`steerbench compare --stress dense,dark` can report how each contestant degrades beyond the test
split (as CARLA's new-town / new-weather columns do). Each condition is a set of overrides per
scenario, in the units of the scenario's `default_config()` (sim/envs.py) and `Appearance`
(sim/scenarios.py); like every override it applies to every split of the scenario, and compare
evaluates it on the test split, so the values below are absolute and chosen relative to the test
split's own settings (quoted beside each).

Appearance conditions (`dark`, `noisy`) change keys every scenario has, so they apply to any
scenario, a plug-in too (`"*"`). Traffic and curve conditions name the built-in scenarios they
know; a scenario they do not name (a plug-in, or a built-in without the parameter, such as the
fixed roads' radii) is left unchanged, and `unchanged` says which, so that the report can.
The values are typed and checked by `sim.scenario_options.parse_options`, like a user's.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .errors import SteerbenchError
from .scenario_options import Option, parse_options

ANY = "*"  # a condition's overrides for every scenario (appearance keys only)


class UnknownStressError(SteerbenchError, ValueError):
    """An unknown stress condition name."""


@dataclass(frozen=True)
class StressCondition:
    name: str
    summary: str  # one line, for the report and docs
    overrides: Mapping[str, Mapping[str, Any]]  # scenario (or ANY) -> key -> value


CONDITIONS: dict[str, StressCondition] = {c.name: c for c in [
    StressCondition(
        "dense", "about twice the test split's traffic",
        {
            # test: 24 cars on 4 lanes in the 510 m spawn window; 48 still leaves room for the
            # 15 m spacing the placement keeps (about 136 slots)
            "highway": {"vehicles_count": 48},  # [vehicles]
            # test: 9 cars on the 2 main lanes' first 260 m (20 m spacing: 26 slots)
            "merge": {"highway_vehicles": 18},  # [vehicles]
            # test: 6 circulating, 3 entering; the layout caps both (one car per ring segment,
            # 7 segments, and one per other arm, 3), so this is the fullest roundabout: +17% ring
            "roundabout": {"ring_vehicles": 7, "entering_vehicles": 3},  # [vehicles]
            # test: 12 at start, 0.65 per step; doubled count, probability as near 1 as it goes
            "intersection": {"initial_vehicle_count": 24, "spawn_probability": 1.0},  # [vehicles], [per step]
            # test: up to 8 (the count is drawn in [0, 8)); doubled
            "racetrack": {"other_vehicles": 16},  # [vehicles, at most]
        },
    ),
    StressCondition(
        "curves", "tighter curves where the road's radii are a parameter (highway only)",
        {
            # test: radii 220-500 m (lateral acceleration at the 30 m/s cruise: 1.8-4.1 m/s2);
            # 120-260 m: 3.5-7.5 m/s2, sharper than any curve the networks saw. The other roads
            # are fixed layouts (merge ramp, roundabout, intersection, racetrack): no radius key
            "highway": {"radius_range": (120.0, 260.0)},  # [m]
        },
    ),
    StressCondition(
        "dark", "frames at brightness x0.5 (test x0.8)",
        {ANY: {"brightness": 0.5}},  # [gain on the frame]; the test split's 0.8 is a dim day, 0.5 dusk
    ),
    StressCondition(
        "noisy", "pixel noise sd 14 grey levels (test 6)",
        {ANY: {"noise_std": 14.0}},  # [grey levels] Gaussian, per pixel and frame; test 6
    ),
]}


def get_condition(name: str) -> StressCondition:
    """The condition called `name`; UnknownStressError (one line, the closest name hinted)."""
    if name in CONDITIONS:
        return CONDITIONS[name]
    close = difflib.get_close_matches(name, CONDITIONS, n=1)
    hint = f"; did you mean {close[0]!r}" if close else ""
    raise UnknownStressError(f"unknown stress condition {name!r}{hint} (known: {', '.join(CONDITIONS)})")


def parse_conditions(text: str) -> tuple[str, ...]:
    """'dense,dark' -> ('dense', 'dark'), each checked; '' -> ()."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for n in names:
        get_condition(n)
    return names


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _mine(condition: StressCondition, scenario: str) -> dict[str, Any]:
    return {**condition.overrides.get(ANY, {}), **condition.overrides.get(scenario, {})}


def condition_options(name: str, scenarios: Sequence[str]) -> tuple[Option, ...]:
    """The condition's overrides for `scenarios`, as `EnvSettings.scenario_options` tuples (typed and
    checked by `parse_options`); scenarios it does not change get none."""
    condition = get_condition(name)
    texts = [f"{s}.{k}={_text(v)}" for s in scenarios for k, v in _mine(condition, s).items()]
    return parse_options(texts, scenarios)


def unchanged(name: str, scenarios: Sequence[str]) -> tuple[str, ...]:
    """The scenarios among `scenarios` that the condition leaves as the test split has them."""
    condition = get_condition(name)
    return tuple(s for s in scenarios if not _mine(condition, s))


def with_condition(options: Sequence[Option], name: str, scenarios: Sequence[str]) -> tuple[Option, ...]:
    """A run's own overrides (`--scenario-opt`) with the condition's on top: on the same key the
    condition's value wins."""
    merged = {(s, k): v for s, k, v in options}
    merged.update({(s, k): v for s, k, v in condition_options(name, scenarios)})
    return tuple((s, k, v) for (s, k), v in sorted(merged.items()))
