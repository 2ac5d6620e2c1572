"""`steerbench paired A B`: one contestant of a run against one of another run (or of the same),
on the episodes both ran, per scenario and split and over all scenarios.

A side is `RUN` or `RUN:NAME`. NAME is a contestant: an agent label of the run's results.jsonl,
or the training-seed copies `NAME-s<k>` that compare and scale evaluate (a run holding a single
contestant needs no NAME). The difference A - B is paired on the episodes (scenario, split,
index: the same env seed) that every copy of both sides ran, with each side's training seeds in
its interval (steerbench.study.stats.hierarchical_difference; the two sides' seeds are taken as
independent trainings). Every difference is exploratory: decide on its raw p, one question at a
time, or correct a family of them yourself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from steerbench.harness.intervals import format_p
from steerbench.harness.results import CorruptResultsError, ResultsStore
from steerbench.sim.errors import SteerbenchError
from steerbench.sim.scenarios import SUITE

from .design import OVERALL, Entry, common_episodes, copies_of, matrix, pair
from .stats import PairedTest

SEED_SUFFIX = re.compile(r"-s\d+$")
ORDER = {name: i for i, name in enumerate(SUITE)}  # the suite's scenarios first, in its order


class PairedError(SteerbenchError, ValueError):
    """A side that names no run or no contestant of it, or two sides without common episodes."""


@dataclass(frozen=True)
class Side:
    run: Path
    name: str | None = None  # None: the run's only contestant


@dataclass(frozen=True)
class Row:
    """One scenario (or OVERALL) and split: each side's mean on the common episodes, and A - B."""

    scenario: str
    split: str
    seeds: tuple[int, int]  # copies of A, of B
    mean_a: float
    mean_b: float
    test: PairedTest


def parse_side(text: str) -> Side:
    """'RUN' or 'RUN:NAME' (a RUN that is itself a directory wins over a split at its last colon)."""
    run, sep, name = text.rpartition(":")
    if not sep or Path(text).is_dir() or not run:
        return Side(Path(text))
    return Side(Path(run), name or None)


def contestants(rows: Sequence[dict]) -> dict[str, tuple[str, ...]]:
    """Contestant name -> its agent labels: `NAME-s<k>` copies grouped under NAME."""
    out: dict[str, list[str]] = {}
    for label in dict.fromkeys(r["agent"] for r in rows):
        out.setdefault(SEED_SUFFIX.sub("", label), []).append(label)
    return {name: tuple(labels) for name, labels in out.items()}


def _rows(side: Side) -> list[dict]:
    path = side.run / "results.jsonl"
    if not path.is_file():
        raise PairedError(f"{side.run} is not a run directory (no results.jsonl)")
    try:
        return ResultsStore(path).rows
    except CorruptResultsError as exc:
        raise PairedError(str(exc)) from None


def _entry(side: Side, rows: Sequence[dict], tag: str) -> tuple[Entry, list[dict]]:
    """The side's contestant as an Entry over its rows relabelled `tag/label` (both sides may use one label)."""
    found = contestants(rows)
    name = side.name
    if name is None and len(found) == 1:
        name = next(iter(found))
    if name is None or name not in found:
        what = "names no contestant" if name is None else f"has no contestant {name!r}"
        raise PairedError(f"{side.run} {what}; give RUN:NAME with NAME one of {', '.join(found) or 'none'}")
    labels = found[name]
    mine = [{**r, "agent": f"{tag}/{r['agent']}"} for r in rows if r["agent"] in labels]
    return Entry(f"{tag}/{name}", "user", "", tuple(f"{tag}/{label}" for label in labels)), mine


def paired_rows(a: Side, b: Side, metric: str = "driving_score", splits: Sequence[str] = ()) -> list[Row]:
    """A - B per split (those given, else every split both ran) and scenario, then over all scenarios."""
    ea, rows_a = _entry(a, _rows(a), "A")
    eb, rows_b = _entry(b, _rows(b), "B")
    rows = rows_a + rows_b
    keys = {side: {(r["scenario"], r["split"]) for r in part} for side, part in (("a", rows_a), ("b", rows_b))}
    both = keys["a"] & keys["b"]
    out = []
    for split in splits or sorted({s for _, s in both}):
        scenarios = sorted({sc for sc, s in both if s == split}, key=lambda s: (ORDER.get(s, len(ORDER)), s))
        for scenario in [*scenarios, OVERALL] if len(scenarios) > 1 else scenarios:
            out.append(_row(rows, ea, eb, scenario, split, metric))
    if not any(r.test.n for r in out):
        raise PairedError(f"{a.run} and {b.run} share no episode{' of ' + ', '.join(splits) if splits else ''}")
    return out


def _row(rows: list[dict], ea: Entry, eb: Entry, scenario: str, split: str, metric: str) -> Row:
    ca, cb = copies_of(rows, ea.labels, scenario, split), copies_of(rows, eb.labels, scenario, split)
    keys = common_episodes(ca + cb) if ca and cb else []
    mean = lambda c: float(matrix(c, keys, metric).mean()) if keys else float("nan")  # noqa: E731
    test = pair(rows, ea, eb, scenario, split, metric).test
    return Row(scenario, split, (len(ca), len(cb)), mean(ca), mean(cb), test)


def paired_table(rows: Sequence[Row], a: str, b: str, metric: str) -> str:
    """The rows as a markdown table."""
    head = f"| scenario | split | episodes | seeds A, B | A: {a} | B: {b} | A - B [95%] | p |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        d = r.test.difference
        lines.append(f"| {r.scenario} | {r.split} | {r.test.n} | {r.seeds[0]}, {r.seeds[1]} | {r.mean_a:.3f} | "
                     f"{r.mean_b:.3f} | {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {format_p(r.test.p_value)} |")
    return "\n".join([f"{metric}, paired on episodes (exploratory):", *lines])
