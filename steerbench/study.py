"""The comparison study's numbers: contestants (not single agents) per scenario and split.

A learned contestant has one evaluated copy per training seed. Its value on an episode is the
mean over its copies, so the bootstrap interval is over episodes (what varies with the seeds of
the scenarios) while the spread over training seeds is reported beside it (what varies with
training). Pairs of contestants are compared on the same episodes (scenario, split, index).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .stats import Estimate, PairedTest, SeedSpread, bootstrap_mean, paired_test, seed_spread

OVERALL = "overall"
STUDY_METRICS = ("driving_score", "success", "collision", "off_road", "route_completion",
                 "mean_lateral_offset_m", "steering_smoothness", "mean_speed_mps")

EpisodeKey = tuple[str, str, int]  # scenario, split, index


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
    contestant: str
    scenario: str  # a scenario or OVERALL
    split: str
    n: int  # episodes
    metrics: dict[str, Estimate]  # over episodes, of the per-episode mean over training seeds
    seeds: dict[str, SeedSpread]  # over training seeds, of each copy's mean (learned contestants)


@dataclass(frozen=True)
class Pair:
    a: str  # a modular contestant
    b: str  # an end-to-end one
    scenario: str
    split: str
    metric: str
    test: PairedTest


def episode_values(rows: Iterable[dict], labels: Sequence[str], metric: str) -> dict[EpisodeKey, float]:
    """Per episode, the mean of `metric` over the copies that ran it."""
    acc: dict[EpisodeKey, list[float]] = defaultdict(list)
    wanted = set(labels)
    for r in rows:
        if r["agent"] in wanted:
            acc[(r["scenario"], r["split"], int(r["index"]))].append(float(r["metrics"][metric]))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _in(key: EpisodeKey, scenario: str, split: str) -> bool:
    return key[1] == split and (scenario == OVERALL or key[0] == scenario)


def cell(rows: Sequence[dict], entry: Entry, scenario: str, split: str) -> Cell:
    metrics, spreads, n = {}, {}, 0
    for m in STUDY_METRICS:
        values = {k: v for k, v in episode_values(rows, entry.labels, m).items() if _in(k, scenario, split)}
        n = len(values)
        metrics[m] = bootstrap_mean([values[k] for k in sorted(values)])
        if entry.seeds:
            per_copy = [[v for k, v in episode_values(rows, [label], m).items() if _in(k, scenario, split)]
                        for label in entry.labels]
            spreads[m] = seed_spread([float(np.mean(v)) for v in per_copy if v])
    return Cell(entry.name, scenario, split, n, metrics, spreads)


def cells(rows: Sequence[dict], entries: Sequence[Entry], scenarios: Sequence[str],
          splits: Sequence[str]) -> list[Cell]:
    return [cell(rows, e, s, split) for split in splits for s in (*scenarios, OVERALL) for e in entries]


def pair(rows: Sequence[dict], a: Entry, b: Entry, scenario: str, split: str, metric: str = "driving_score") -> Pair:
    va, vb = (episode_values(rows, e.labels, metric) for e in (a, b))
    keys = sorted(k for k in va if k in vb and _in(k, scenario, split))
    return Pair(a.name, b.name, scenario, split, metric, paired_test([va[k] for k in keys], [vb[k] for k in keys]))


def modular_vs_e2e(rows: Sequence[dict], entries: Sequence[Entry], scenarios: Sequence[str],
                   splits: Sequence[str]) -> list[Pair]:
    """Every modular contestant against every end-to-end one, per split, overall and per scenario."""
    modular = [e for e in entries if e.family == "modular"]
    e2e = [e for e in entries if e.family == "e2e"]
    return [pair(rows, a, b, s, split) for split in splits for s in (OVERALL, *scenarios) for a in modular
            for b in e2e]
