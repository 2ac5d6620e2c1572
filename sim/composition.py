"""Which N train frames a learned model trains on: one documented, deterministic composition.

"The first N train frames" gives every N a different mix: the share of frames from noisy (DART)
episodes swings with N, and a small N takes each scenario's frames from one or two episodes.
`compose` fixes the mix instead (docs/dataset.md, "Training-set composition"):

1. **scenarios**: each gets an equal share of N (`shares`: the first ones one more while N does
   not divide);
2. **strata**: within a scenario, `round(share * dart_fraction)` frames (half rounds up) come
   from noisy episodes (index row `noise_std > 0`) and the rest from clean ones;
3. **pool**: a stratum's pool is its episodes in index order, taken until they hold at least
   `pool_factor` times the frames it needs and at least `min_episodes` episodes, or all of its
   episodes when the data holds fewer (then the frames change when more data is collected:
   `shortfall` says what completes the pool, `compose(..., full_pool=True)` demands it);
4. **frames**: the stratum's frames are split over its pool's episodes in proportion to their
   usable frames (every `stride`-th step; largest remainders, ties to the lower index), and an
   episode's quota q of its u usable frames are evenly spaced, `floor((j + phase) * u / q)` for
   j < q, with a phase in [0, 1) hashed from (scenario, index).

Why this rule: proportional quotas take frames uniformly over the pool's driving time (an equal
quota per episode would over-weight short episodes, which mostly end in a crash), and even
spacing keeps an episode's frames as far apart in time as its quota allows (a random rank
clumps neighbouring, near-duplicate frames and can leave episodes of a small pool without any).
The hashed phase varies where in its episode a small quota falls (with no phase a quota of 1
would always be the first step, the start state). Nothing depends
on episodes beyond the pool or on the order of the rows, so a given N has the same frames in
every dataset whose pools are complete, however much more a study collected.

This module reads index rows only (`sim.dataset.DatasetIndex`); loading the frames is the
caller's.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from .errors import SteerbenchError

STRATA = (True, False)  # noisy, clean: the order of strata in errors and `shortfall`
PHASE_BITS = 32  # an episode's phase is an integer in [0, 2**PHASE_BITS): positions in exact integer arithmetic


class CompositionError(SteerbenchError, ValueError):
    """Too little data for a composition, or invalid arguments (one line for the user)."""


@dataclass(frozen=True)
class Composition:
    """The rule's parameters (module docstring)."""

    dart_fraction: float = 0.5  # share of each scenario's frames from noisy (DART) episodes, in [0, 1]
    min_episodes: int = 8  # a stratum's pool holds at least this many episodes when the data has them
    pool_factor: float = 4.0  # a stratum's pool holds at least this many times the frames it needs (>= 1)

    def __post_init__(self) -> None:
        if not 0.0 <= self.dart_fraction <= 1.0:
            raise CompositionError(f"dart_fraction must be in [0, 1], got {self.dart_fraction}")
        if self.min_episodes < 1:
            raise CompositionError(f"min_episodes must be at least 1, got {self.min_episodes}")
        if not self.pool_factor >= 1.0:
            raise CompositionError(f"pool_factor must be at least 1, got {self.pool_factor}")


@dataclass(frozen=True)
class Pick:
    """One training frame: step `step` of episode `index` of `scenario` (the train split)."""

    scenario: str
    index: int
    step: int
    noisy: bool  # the episode had steering noise (its stratum)


@dataclass(frozen=True)
class Missing:
    """What one stratum lacks (`shortfall`)."""

    frames: int  # usable frames missing for the full pool (pool_factor x needed); or for `needed` only
    episodes: int  # episodes missing for min_episodes (0 when only `needed` is asked for)

    def episodes_for(self, frames_per_episode: int) -> int:
        """Episodes of this stratum to collect when each gives about `frames_per_episode` usable
        frames (a lower bound where episodes end early: recompute `shortfall` after collecting)."""
        return max(self.episodes, math.ceil(self.frames / max(1, frames_per_episode)))


def shares(frames: int, scenarios: Sequence[str]) -> dict[str, int]:
    """An equal share of `frames` per scenario, the first ones one more while it does not divide."""
    k = len(scenarios)
    return {s: frames // k + (1 if i < frames % k else 0) for i, s in enumerate(scenarios)}


def needs(n: int, scenarios: Sequence[str], rule: Composition = Composition()) -> dict[tuple[str, bool], int]:
    """Frames per (scenario, noisy) stratum for N = `n`, in scenario order, noisy first."""
    _check_request(n, scenarios)
    out = {}
    for scenario, share in shares(n, scenarios).items():
        noisy = math.floor(share * rule.dart_fraction + 0.5)  # half up (Python's round alternates)
        out[(scenario, True)], out[(scenario, False)] = noisy, share - noisy
    return out


def compose(rows: Sequence[dict], n: int, scenarios: Sequence[str], rule: Composition = Composition(),
            stride: int = 1, *, full_pool: bool = False) -> list[Pick]:
    """The `n` frames of the composition (module docstring) from the train-split index rows
    `rows` (rows of other scenarios are ignored), every `stride`-th step of an episode usable;
    ordered by scenario (as given), episode index, step. CompositionError when a stratum holds
    fewer usable frames than it needs, or, with `full_pool`, fewer than its full pool."""
    if stride < 1:
        raise CompositionError(f"stride must be at least 1, got {stride}")
    strata = _strata(rows, scenarios, stride)
    picks: list[Pick] = []
    for (scenario, noisy), needed in needs(n, scenarios, rule).items():
        if not needed:
            continue
        episodes = strata[(scenario, noisy)]
        held = sum(u for _, u in episodes)
        if held < needed:
            raise CompositionError(
                f"{scenario}: the {_name(noisy)} train episodes hold {held} usable frames (stride {stride}), "
                f"{needed} needed for {n} frames; collect more {scenario} train episodes (see shortfall())")
        pool = _pool(episodes, needed, rule)
        if full_pool and not _complete(pool, needed, rule):
            raise CompositionError(
                f"{scenario}: the {_name(noisy)} train episodes hold {held} usable frames in {len(episodes)} "
                f"episodes (stride {stride}), the full pool for {n} frames needs "
                f"{math.ceil(rule.pool_factor * needed)} in at least {rule.min_episodes}; "
                f"collect more {scenario} train episodes (see shortfall())")
        picks += _pick(scenario, noisy, pool, needed, stride)
    order = {s: i for i, s in enumerate(scenarios)}
    picks.sort(key=lambda p: (order[p.scenario], p.index, p.step))
    return picks


def shortfall(rows: Sequence[dict], n: int, scenarios: Sequence[str], rule: Composition = Composition(),
              stride: int = 1, *, full_pool: bool = True) -> dict[tuple[str, bool], Missing]:
    """What each (scenario, noisy) stratum lacks, only those that lack something: for the full
    pool (its frames are then the same however much more is collected), or with `full_pool`
    False only for `compose` to succeed. Collection decides the noise by seed, so a caller
    collects more episodes of a scenario and asks again until this is empty."""
    if stride < 1:
        raise CompositionError(f"stride must be at least 1, got {stride}")
    strata = _strata(rows, scenarios, stride)
    out = {}
    for key, needed in needs(n, scenarios, rule).items():
        if not needed:
            continue
        episodes = strata[key]
        held = sum(u for _, u in episodes)
        if full_pool:
            missing = Missing(max(0, math.ceil(rule.pool_factor * needed) - held),
                              max(0, rule.min_episodes - len(episodes)))
        else:
            missing = Missing(max(0, needed - held), 0)
        if missing.frames or missing.episodes:
            out[key] = missing
    return out


def summary(picks: Sequence[Pick]) -> dict:
    """The composition's statistics (JSON-ready): frames, noisy share and distinct episodes, in
    total and per scenario (in the order of first appearance), and the most frames any one
    episode gives."""
    by: dict[str, list[Pick]] = defaultdict(list)
    for p in picks:
        by[p.scenario].append(p)

    def stats(ps: Sequence[Pick]) -> dict:
        per_episode: dict[tuple[str, int], int] = defaultdict(int)
        for p in ps:
            per_episode[(p.scenario, p.index)] += 1
        noisy = sum(p.noisy for p in ps)
        return {
            "frames": len(ps), "noisy_frames": noisy, "noisy_share": noisy / len(ps) if ps else 0.0,
            "episodes": len(per_episode), "noisy_episodes": len({(p.scenario, p.index) for p in ps if p.noisy}),
            "max_frames_per_episode": max(per_episode.values(), default=0),
        }

    return {**stats(picks), "scenarios": {s: stats(ps) for s, ps in by.items()}}


def _check_request(n: int, scenarios: Sequence[str]) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise CompositionError(f"the number of frames must be a positive integer, got {n!r}")
    if not scenarios:
        raise CompositionError("a composition needs at least one scenario")
    if len(set(scenarios)) != len(scenarios):
        raise CompositionError(f"scenarios repeat: {list(scenarios)}")


def _name(noisy: bool) -> str:
    return "noisy" if noisy else "clean"


def _strata(rows: Sequence[dict], scenarios: Sequence[str], stride: int) -> dict[tuple[str, bool], list]:
    """(index, usable frames) of each stratum's episodes with any usable frame, by index."""
    wanted = set(scenarios)
    strata: dict[tuple[str, bool], list] = {(s, noisy): [] for s in scenarios for noisy in STRATA}
    seen: dict[tuple[str, int], dict] = {}
    splits = set()
    for row in rows:
        try:
            scenario, index, steps, noise = row["scenario"], int(row["index"]), int(row["steps"]), row["noise_std"]
        except (KeyError, TypeError, ValueError):
            raise CompositionError(f"an index row lacks scenario, index, steps or noise_std: {row!r}") from None
        if scenario not in wanted:
            continue
        splits.add(row.get("split"))
        if (scenario, index) in seen:
            raise CompositionError(f"{scenario}: episode {index} appears twice in the index rows")
        seen[(scenario, index)] = row
        usable = math.ceil(steps / stride) if steps > 0 else 0
        if usable:
            strata[(scenario, bool(noise and noise > 0))].append((index, usable))
    if len(splits) > 1:
        raise CompositionError(f"the index rows mix splits {sorted(map(str, splits))}; pass one split's rows")
    for episodes in strata.values():
        episodes.sort()
    return strata


def _pool(episodes: list, needed: int, rule: Composition) -> list:
    """The stratum's first episodes by index until the pool is complete (or all of them)."""
    pool, held = [], 0
    for ep in episodes:
        if held >= rule.pool_factor * needed and len(pool) >= rule.min_episodes:
            break
        pool.append(ep)
        held += ep[1]
    return pool


def _complete(pool: list, needed: int, rule: Composition) -> bool:
    return sum(u for _, u in pool) >= rule.pool_factor * needed and len(pool) >= rule.min_episodes


def _phase(scenario: str, index: int) -> int:
    """A fixed phase per episode (SHA-256, unlike `hash`, is the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"{scenario}/{index}".encode()).digest()[:4], "big")


def _pick(scenario: str, noisy: bool, pool: list, needed: int, stride: int) -> list[Pick]:
    """`needed` frames of the pool: quotas proportional to usable frames, evenly spaced steps."""
    total = sum(u for _, u in pool)
    base = [needed * u // total for _, u in pool]
    remainder = [needed * u - b * total for (_, u), b in zip(pool, base)]
    extra = sorted(range(len(pool)), key=lambda i: (-remainder[i], pool[i][0]))[: needed - sum(base)]
    for i in extra:
        base[i] += 1
    picks = []
    for (index, usable), quota in zip(pool, base):
        phase, one = _phase(scenario, index), 1 << PHASE_BITS
        for j in range(quota):  # floor((j + phase) * usable / quota): distinct and below `usable` (quota <= usable)
            picks.append(Pick(scenario, index, ((j * one + phase) * usable) // (quota * one) * stride, noisy))
    return picks
