"""The comparison study's numbers: contestants (not single agents) per scenario and split.

A learned contestant has one evaluated copy per training seed, and every copy drives the same
episodes, so its scores are a training seeds x episodes matrix. Its mean is over the whole
matrix; with several seeds its interval includes both levels (`stats.hierarchical_mean`: what
varies with training, and what varies with the episodes drawn), with one seed (or nothing
learned) it is the bootstrap over episodes. Pairs of contestants are compared on the same
episodes (scenario, split, index), each side's training seeds in the uncertainty
(`stats.hierarchical_difference`). Which pairs answer the study's question is declared here,
from the line-up alone, before any episode is scored (`PRIMARY`): those are Holm-corrected
together; every other pair is exploratory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from steerbench.harness.intervals import RATES, UNIT_INTERVAL, Estimate, bootstrap_mean, clipped
from steerbench.study.stats import (
    PairedTest,
    SeedSpread,
    hierarchical_difference,
    hierarchical_mean,
    holm_family,
    seed_spread,
)

OVERALL = "overall"
STUDY_METRICS = ("driving_score", "success", "collision", "off_road", "route_completion",
                 "mean_lateral_offset_m", "steering_smoothness", "mean_speed_mps")
PRIMARY_METRIC = "driving_score"
BOUNDED = (*RATES, *UNIT_INTERVAL)
PRIMARY = ("On each split, the driving score over all scenarios of every modular contestant that sees what the "
           "networks see (inputs pixels, or pixels+map) against every end-to-end contestant, Holm-corrected "
           "together. Privileged modular contestants (ground-truth detection) are references and per-scenario "
           "pairs are detail: both exploratory.")

EpisodeKey = tuple[str, str, int]  # scenario, split, index
Copy = dict[EpisodeKey, dict]  # one evaluated copy's metrics by episode


@dataclass(frozen=True)
class Entry:
    """One contestant as the study sees it."""

    name: str
    family: str  # expert | modular | e2e | user
    inputs: str  # pixels | pixels+map | privileged
    labels: tuple[str, ...]  # its evaluated copies (one per training seed when learned)
    seeds: tuple[int, ...] = ()  # training seeds of the copies; empty when nothing is trained


@dataclass(frozen=True)
class Cell:
    """One contestant in one scenario (or OVERALL) and split: its metrics over every copy and episode."""

    contestant: str
    scenario: str  # a scenario or OVERALL
    split: str
    n: int  # episodes (every copy ran each of them)
    metrics: dict[str, Estimate]  # mean over copies and episodes; interval as `interval` says
    seeds: dict[str, SeedSpread]  # over training seeds, of each copy's mean (learned contestants)
    interval: str = "episodes (bootstrap, BCa)"  # or "training seeds x episodes (two-level t)"


@dataclass(frozen=True)
class Pair:
    """A modular contestant minus an end-to-end one on the same episodes, with the paired test."""

    a: str  # a modular contestant
    b: str  # an end-to-end one
    scenario: str
    split: str
    metric: str
    test: PairedTest  # `test.primary`: one of the declared contrasts, decided on its Holm p


def _in(key: EpisodeKey, scenario: str, split: str) -> bool:
    return key[1] == split and (scenario == OVERALL or key[0] == scenario)


def copies_of(rows: Iterable[dict], labels: Sequence[str], scenario: str, split: str) -> list[Copy]:
    """Each copy's rows in the cell, keyed by episode; copies with no row there are left out."""
    found: dict[str, Copy] = {label: {} for label in labels}
    for r in rows:
        key = (r["scenario"], r["split"], int(r["index"]))
        if r["agent"] in found and _in(key, scenario, split):
            found[r["agent"]][key] = r["metrics"]
    return [c for c in found.values() if c]


def common_episodes(copies: Sequence[Copy]) -> list[EpisodeKey]:
    """Episodes every copy ran: a balanced matrix, so each seed weighs the same in the mean."""
    if not copies:
        return []
    return sorted(set.intersection(*(set(c) for c in copies)))


def matrix(copies: Sequence[Copy], keys: Sequence[EpisodeKey], metric: str) -> np.ndarray:
    """Training seeds x episodes."""
    return np.array([[float(c[k][metric]) for k in keys] for c in copies], dtype=float).reshape(len(copies), len(keys))


def interval(metric: str, y: np.ndarray) -> tuple[Estimate, str]:
    """A metric's mean and interval from a seeds x episodes matrix, and the method's name: a two-level
    t interval (clipped to the metric's range) with 2 seeds or more, else a BCa bootstrap over the
    episodes."""
    if y.shape[0] >= 2:
        return clipped(metric, hierarchical_mean(y)), f"training seeds x episodes (two-level t, {y.shape[0]} seeds)"
    return bootstrap_mean(y[0] if len(y) else []), "episodes (bootstrap, BCa)"


def cell(rows: Sequence[dict], entry: Entry, scenario: str, split: str) -> Cell:
    """The Cell of `entry` in `scenario` (or OVERALL) and `split`, over the episodes every copy ran."""
    copies = copies_of(rows, entry.labels, scenario, split)
    keys = common_episodes(copies)
    metrics, spreads, how = {}, {}, "episodes (bootstrap, BCa)"
    for m in STUDY_METRICS:
        y = matrix(copies, keys, m)
        metrics[m], how = interval(m, y)
        if entry.seeds:
            spreads[m] = seed_spread(y.mean(axis=1) if y.size else [])
    return Cell(entry.name, scenario, split, len(keys), metrics, spreads, how)


def cells(rows: Sequence[dict], entries: Sequence[Entry], scenarios: Sequence[str],
          splits: Sequence[str]) -> list[Cell]:
    """Every entry's cell, per split, per scenario and OVERALL."""
    return [cell(rows, e, s, split) for split in splits for s in (*scenarios, OVERALL) for e in entries]


def pair(rows: Sequence[dict], a: Entry, b: Entry, scenario: str, split: str, metric: str = "driving_score") -> Pair:
    """a - b on the episodes every copy of both ran, each side's training seeds in the interval."""
    ca, cb = copies_of(rows, a.labels, scenario, split), copies_of(rows, b.labels, scenario, split)
    keys = common_episodes(ca + cb) if ca and cb else []
    test = hierarchical_difference(matrix(ca, keys, metric), matrix(cb, keys, metric))
    if metric in BOUNDED and not math.isnan(test.difference.low):  # a difference of [0, 1] scores is in [-1, 1]
        d = test.difference
        test = replace(test, difference=Estimate(d.mean, max(d.low, -1.0), min(d.high, 1.0), d.n))
    return Pair(a.name, b.name, scenario, split, metric, test)


def is_primary(p: Pair, entries: dict[str, Entry]) -> bool:
    """compare's declared contrasts (`PRIMARY`): they depend on the line-up, never on the scores.

    All the non-privileged modular contestants rather than "the best" of them: picking the best
    from these same episodes would favour the modular side, and the line-up has only two
    non-privileged ones with map lanes, so taking both costs three more contrasts per split (one per
    network), not a selection bias.
    """
    return p.scenario == OVERALL and p.metric == PRIMARY_METRIC and entries[p.a].inputs in ("pixels", "pixels+map")


def modular_vs_e2e(rows: Sequence[dict], entries: Sequence[Entry], scenarios: Sequence[str],
                   splits: Sequence[str]) -> list[Pair]:
    """Every modular contestant against every end-to-end one, per split, overall and per scenario;
    the primary ones Holm-corrected as one family."""
    modular = [e for e in entries if e.family == "modular"]
    e2e = [e for e in entries if e.family == "e2e"]
    pairs = [pair(rows, a, b, s, split) for split in splits for s in (OVERALL, *scenarios) for a in modular
             for b in e2e]
    by_name = {e.name: e for e in entries}
    tests = holm_family([p.test for p in pairs], [is_primary(p, by_name) for p in pairs])
    return [Pair(p.a, p.b, p.scenario, p.split, p.metric, t) for p, t in zip(pairs, tests)]
