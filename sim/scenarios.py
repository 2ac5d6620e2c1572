"""The scenario suite: five scenarios, each with a `train` and a `test` distribution.

`train-dev` draws from the train distribution and `dev` from the test distribution (Ng's four
sets), each with its own seed range so that no two splits ever share an episode.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from . import envs
from .errors import SteerbenchError
from .types import SPLITS

SEED_STRIDE = 1_000_000  # episodes per split; split k uses seeds [k * STRIDE, (k + 1) * STRIDE)
SPLIT_SOURCE = {"train": "train", "train-dev": "train", "dev": "test", "test": "test"}
ENTRY_POINT_GROUP = "steerbench.scenarios"  # installed scenarios: name = "package.module:function"


class UnknownScenarioError(SteerbenchError, ValueError):
    pass


@dataclass(frozen=True)
class Appearance:
    """How the camera sees a split: traffic colours, brightness and sensor noise."""

    traffic_colors: tuple[tuple[int, int, int], ...] = ((200, 200, 0),)  # RGB, drawn per vehicle
    brightness: float = 1.0  # gain applied to the whole frame
    noise_std: float = 0.0  # [grey levels] Gaussian pixel noise

    def describe(self) -> str:
        parts = [f"{len(self.traffic_colors)} traffic colour(s)"]
        if self.brightness != 1.0:
            parts.append(f"brightness x{self.brightness:g}")
        if self.noise_std:
            parts.append(f"noise sd {self.noise_std:g}")
        return ", ".join(parts)


STOCK_LOOK = Appearance()
TEST_LOOK = Appearance(
    traffic_colors=((30, 90, 200), (200, 40, 40), (235, 235, 235), (120, 120, 120)),
    brightness=0.8,
    noise_std=6.0,
)


@dataclass(frozen=True)
class SplitSpec:
    config: dict[str, Any]  # overrides of the environment's default_config()
    look: Appearance
    notes: str  # what differs, for `steerbench scenarios`
    env_class: type | None = None  # another road layout for this split; None: the scenario's


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    env_class: type
    summary: str
    train: SplitSpec
    test: SplitSpec
    centering: tuple[float, float] = (0.3, 0.5)  # ego's place in the frame (fraction of W, H)
    goal_directed: bool = False  # True: success means reaching the route's end
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, split: str) -> SplitSpec:
        check_split(split)
        return self.train if SPLIT_SOURCE[split] == "train" else self.test

    def env_class_for(self, split: str) -> type:
        return self.split(split).env_class or self.env_class

    @property
    def commands(self) -> tuple[str, ...]:
        return self.env_class.command_names


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UnknownScenarioError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


def episode_seed(split: str, index: int) -> int:
    """The seed of episode `index` of a split; paired across agents, disjoint across splits."""
    check_split(split)
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"episode index {index} out of range [0, {SEED_STRIDE})")
    return SPLITS.index(split) * SEED_STRIDE + index


SUITE: dict[str, ScenarioSpec] = {
    s.name: s
    for s in [
        ScenarioSpec(
            name="highway",
            env_class=envs.CurvyHighwayEnv,
            summary="curved 3-lane highway, slow cars block the ego's lane",
            train=SplitSpec({}, STOCK_LOOK, "3 lanes, radii 300-700 m, 16 cars, 30% slow"),
            test=SplitSpec(
                {
                    "lanes_count": 4,
                    "vehicles_count": 24,
                    "radius_range": [220.0, 500.0],
                    "traffic_speed_range": [20.0, 26.0],
                    "slow_fraction": 0.4,
                },
                TEST_LOOK,
                "4 lanes, radii 220-500 m, 24 cars, 40% slow",
            ),
        ),
        ScenarioSpec(
            name="merge",
            env_class=envs.RampMergeEnv,
            summary="start on the access ramp, merge before the barrier at its end",
            train=SplitSpec({}, STOCK_LOOK, "6 cars on the main road at 20-26 m/s"),
            test=SplitSpec(
                {"highway_vehicles": 9, "traffic_speed_range": [22.0, 29.0]},
                TEST_LOOK,
                "9 cars at 22-29 m/s",
            ),
            goal_directed=True,
        ),
        ScenarioSpec(
            name="roundabout",
            env_class=envs.RoundaboutRouteEnv,
            summary="enter from the south, take the commanded exit (1st, 2nd or 3rd)",
            train=SplitSpec({}, STOCK_LOOK, "4 cars circulating, 2 entering"),
            test=SplitSpec(
                {"ring_vehicles": 6, "entering_vehicles": 3, "traffic_speed_range": [8.0, 13.0]},
                TEST_LOOK,
                "6 circulating, 3 entering, faster",
            ),
            centering=(0.5, 0.5),
            goal_directed=True,
        ),
        ScenarioSpec(
            name="intersection",
            env_class=envs.IntersectionRouteEnv,
            summary="cross a 4-way intersection: left, straight or right as commanded",
            train=SplitSpec({}, STOCK_LOOK, "8 cars at start, spawn probability 0.45"),
            test=SplitSpec(
                {"initial_vehicle_count": 12, "spawn_probability": 0.65},
                TEST_LOOK,
                "12 cars at start, spawn probability 0.65",
            ),
            centering=(0.5, 0.5),
            goal_directed=True,
        ),
        ScenarioSpec(
            name="racetrack",
            env_class=envs.RacetrackScenarioEnv,
            summary="2-lane racetrack with slow cars to overtake, curves at 10 m/s",
            train=SplitSpec({}, STOCK_LOOK, "stock 2-lane track, up to 6 cars at 5-8 m/s"),
            test=SplitSpec(
                {"other_vehicles": 8},
                TEST_LOOK,
                "3-lane large track (another layout), up to 8 cars",
                env_class=envs.RacetrackLargeScenarioEnv,
            ),
            centering=(0.5, 0.5),
        ),
    ]
}

def get_scenario(name: str) -> ScenarioSpec:
    """The scenario a name refers to: a built-in (`SUITE`), an installed one (entry point group
    `steerbench.scenarios`), or `module:function` (a function returning a ScenarioSpec). A
    plug-in's spec is renamed to the name that found it, so that every process (workers, replays)
    finds it again from the name its results carry."""
    if name in SUITE:
        return SUITE[name]
    if ":" in name:
        return _plug_in(name, name)
    installed = scenario_entry_points()
    if name in installed:
        return _plug_in(name, installed[name])
    known = ", ".join([*SUITE, *installed])
    raise UnknownScenarioError(f"unknown scenario {name!r}; known: {known} (or module:function)")


def scenario_entry_points() -> dict[str, str]:
    """Entry-point name -> `module:function` for the `steerbench.scenarios` group of every
    installed package (a name of the suite's is not overridden)."""
    found = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {k: v for k, v in found.items() if k not in SUITE}


def _plug_in(name: str, target: str) -> ScenarioSpec:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise UnknownScenarioError(f"scenario {name!r}: expected module:function, got {target!r}")
    try:
        make = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise UnknownScenarioError(f"scenario {name!r}: cannot import {module!r} ({exc})") from None
    except AttributeError:
        raise UnknownScenarioError(f"scenario {name!r}: module {module!r} has no {attr!r}") from None
    try:
        spec = make()
    except Exception as exc:  # a user's function: any failure is their scenario's, in one line
        raise UnknownScenarioError(f"scenario {name!r}: {target}() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(spec, ScenarioSpec):
        raise UnknownScenarioError(f"scenario {name!r}: {target}() returned {type(spec).__name__}, "
                                   "not a steerbench.sim.scenarios.ScenarioSpec")
    _check_env_class(name, spec)
    return dataclasses.replace(spec, name=name)


def _check_env_class(name: str, spec: ScenarioSpec) -> None:
    """A scenario's road layouts must be the suite's kind of environment (envs.ScenarioMixin:
    continuous steering, routes, commands), or SteerEnv cannot drive them."""
    for split in ("train", "test"):
        cls = spec.env_class_for(split)
        if not (isinstance(cls, type) and issubclass(cls, envs.ScenarioMixin)):
            raise UnknownScenarioError(f"scenario {name!r}: its {split} env_class {cls!r} is not a "
                                       "steerbench.sim.envs scenario environment (derive from one of its classes)")


def parse_scenarios(text: str) -> list[ScenarioSpec]:
    """'highway,racetrack' -> specs; 'all' -> the built-in suite; plug-ins by name or
    module:function (see `get_scenario`)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(SUITE.values())
    if not names:
        raise UnknownScenarioError("no scenario given; known: " + ", ".join([*SUITE, *scenario_entry_points()]))
    return [get_scenario(n) for n in names]
