"""Which episodes are for what: one allocation of episode indices by purpose.

Episode `index` of a split has the seed `episode_seed(split, index)`, the same for every agent.
Each purpose below owns a range of indices (on the splits it names), the ranges never share a
seed, and every command takes its default first index from here. So, with the defaults, no model
is evaluated on an episode it was trained on or selected (early-stopped) on, and DAgger's
rollouts never reach the evaluation range, however many rounds run (up to `MAX_DAGGER_ROUNDS`).

    purpose        splits                 indices            used by
    training       train                  0 ..  99,999       collect, expert data of every learned model
    selection      train-dev, dev         0 ..  99,999       early stopping, a detector's best epoch
    dagger         train                  100,000 .. 299,999 DAgger round r >= 1: 100,000 + (r - 1) x 10,000
    dagger-check   train                  300,000 .. 399,999 closed-loop check of each DAgger round
    evaluation     all four               500,000 .. 999,999 eval, compare, scale, ceiling, diagnose, errors

The scenarios with one fixed road (the racetrack's track, the roundabout, the intersection, the
merge) draw only traffic from the seed: there a held-out episode is held-out traffic on the road
the model was trained on, not a held-out road (docs/scenarios.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .scenarios import SEED_STRIDE, check_split
from .types import SPLITS

MAX_DAGGER_ROUNDS = 20
DAGGER_ROUND_STRIDE = 10_000  # indices per DAgger round: at most this many rollouts per scenario


@dataclass(frozen=True)
class IndexRange:
    """Episode indices [start, stop) of the named splits, reserved for one purpose."""

    purpose: str
    splits: tuple[str, ...]
    start: int
    stop: int

    def __post_init__(self) -> None:
        for split in self.splits:
            check_split(split)
        if not 0 <= self.start < self.stop <= SEED_STRIDE:
            raise ValueError(f"index range [{self.start}, {self.stop}) out of [0, {SEED_STRIDE})")

    def holds(self, split: str, first: int, count: int = 1) -> bool:
        """True when episodes first .. first + count - 1 of `split` all lie in this range."""
        return split in self.splits and self.start <= first and first + count <= self.stop


TRAINING = IndexRange("training", ("train",), 0, 100_000)
SELECTION = IndexRange("selection", ("train-dev", "dev"), 0, 100_000)
DAGGER = IndexRange("dagger", ("train",), 100_000, 100_000 + MAX_DAGGER_ROUNDS * DAGGER_ROUND_STRIDE)
DAGGER_CHECK = IndexRange("dagger-check", ("train",), 300_000, 400_000)
EVALUATION = IndexRange("evaluation", SPLITS, 500_000, SEED_STRIDE)
PURPOSES = (TRAINING, SELECTION, DAGGER, DAGGER_CHECK, EVALUATION)

EVAL_START = EVALUATION.start  # the default first index of every evaluating command


def data_start(split: str) -> int:
    """The first index of expert data on `split`: training data on train, selection data else."""
    check_split(split)
    for r in (TRAINING, SELECTION):
        if split in r.splits:
            return r.start
    raise ValueError(f"the {split} split holds no training or selection data; evaluate on it instead")


def collection_start(split: str) -> int:
    """`steerbench collect`'s default first index: data on train, train-dev and dev; the
    evaluation range on test, whose frames only ever measure a model."""
    return EVAL_START if split == "test" else data_start(split)


def dagger_start(round_: int) -> int:
    """First train index of DAgger round `round_` (1 .. MAX_DAGGER_ROUNDS)."""
    if not 1 <= round_ <= MAX_DAGGER_ROUNDS:
        raise ValueError(f"DAgger round {round_} out of 1..{MAX_DAGGER_ROUNDS}")
    return DAGGER.start + (round_ - 1) * DAGGER_ROUND_STRIDE


def purpose_of(split: str, index: int) -> str | None:
    """The purpose episode `index` of `split` is reserved for (None: unallocated)."""
    for r in PURPOSES:
        if r.holds(split, index):
            return r.purpose
    return None


# A checkpoint's record of its data: {"trained": {split: runs}, "selected": {split: runs}}, where
# runs are [first, last] index ranges (train-e2e, train-detector write it; eval reads it).
SeenRecord = dict[str, dict[str, list[list[int]]]]


def index_runs(indices: Iterable[int]) -> list[list[int]]:
    """Indices as sorted [first, last] runs of consecutive values: [0, 1, 2, 7] -> [[0, 2], [7, 7]]."""
    runs: list[list[int]] = []
    for i in sorted(set(int(i) for i in indices)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def by_split(episodes: Iterable[tuple[str, int]]) -> dict[str, list[list[int]]]:
    """(split, index) pairs -> {split: index runs}."""
    out: dict[str, list[int]] = {}
    for split, index in episodes:
        out.setdefault(split, []).append(index)
    return {split: index_runs(ix) for split, ix in sorted(out.items())}


def seen_among(record: SeenRecord, split: str, indices: Iterable[int]) -> list[int]:
    """The `indices` of `split` that a checkpoint's record says it was trained or selected on."""
    runs = [r for part in record.values() for r in part.get(split, [])]
    return [i for i in indices if any(lo <= i <= hi for lo, hi in runs)]
