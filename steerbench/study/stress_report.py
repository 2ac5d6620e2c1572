"""compare's "Beyond the test split" section: each contestant under the stress conditions
(sim/stress.py), against its own test-split score on the same episodes.

A condition is evaluated on the test split with its overrides, by the same copies (the same
trained models) on the same episode indices, in its own run directory `stress-<name>/`. The
degradation (condition minus test) is paired on both levels: copy k's score under the condition
minus copy k's score on the test split, episode by episode, so a training seeds x episodes matrix
of differences. Its interval is the two-level one of `stats.hierarchical_mean` (training seeds,
then episodes; `stats.mean_components`): the spread between seeds of how much each degrades is in
it, the spread of their levels (which the same model shares in both) is not, as it cancels.
Treating the two sides as independent seeds (`hierarchical_difference`, right for two different
contestants) would count that level spread in. One copy (nothing learned, or one seed): the
paired t interval over episodes. Exploratory: not among compare's declared, Holm-corrected
contrasts (MEASUREMENT.md 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from steerbench.harness.intervals import Estimate, format_p
from steerbench.harness.summary import table
from steerbench.study.design import BOUNDED, OVERALL, PRIMARY_METRIC, Entry, EpisodeKey, interval
from steerbench.study.stats import hierarchical_mean, mean_components, p_value

NAN = float("nan")
STRESS = ("Exploratory (not among the Holm-corrected primary contrasts): how each contestant's driving score "
          "changes under each stress condition of `sim/stress.py` (docs/scenarios.md, Stress family), evaluated "
          "on the test split with the condition's overrides by the same models on the same episodes. "
          "`degradation` is condition minus test, paired on episodes and on training seeds (each copy against "
          "itself), with a 95% interval: two-level t over training seeds and episodes for a learned contestant "
          "with several seeds, the paired t over episodes otherwise. `test` is over the same episodes (the "
          "scenarios the condition changes).")


@dataclass(frozen=True)
class Degradation:
    """One contestant under one condition in one scenario (or OVERALL): condition minus test."""

    contestant: str
    condition: str
    scenario: str
    n: int  # episodes (every copy ran each of them on both sides)
    test: Estimate
    stressed: Estimate
    difference: Estimate  # condition - test
    p: float
    interval: str

    def as_dict(self) -> dict:
        return {"contestant": self.contestant, "condition": self.condition, "scenario": self.scenario,
                "n": self.n, "test": self.test.as_dict(), "stressed": self.stressed.as_dict(),
                "degradation": self.difference.as_dict(), "p": self.p, "interval": self.interval}


@dataclass(frozen=True)
class StressData:
    """The section's numbers: the conditions in order, the scenarios each left unchanged (not
    evaluated: they would only repeat the test split), and every Degradation."""

    conditions: tuple[str, ...]
    unchanged: Mapping[str, tuple[str, ...]]
    degradations: tuple[Degradation, ...]

    def find(self, contestant: str, condition: str, scenario: str = OVERALL) -> Degradation | None:
        return next((d for d in self.degradations
                     if (d.contestant, d.condition, d.scenario) == (contestant, condition, scenario)), None)


def _by_copy(rows: Iterable[dict], labels: Sequence[str], scenario: str, metric: str) -> dict[str, dict]:
    found: dict[str, dict[EpisodeKey, float]] = {label: {} for label in labels}
    for r in rows:
        if r["agent"] in found and r["split"] == "test" and scenario in (OVERALL, r["scenario"]):
            found[r["agent"]][(r["scenario"], r["split"], int(r["index"]))] = float(r["metrics"][metric])
    return found


def degradation(entry: Entry, scenario: str, test_rows: Sequence[dict], stress_rows: Sequence[dict],
                condition: str = "", metric: str = PRIMARY_METRIC) -> Degradation:
    """`entry` under the condition (`stress_rows`) minus on the test split (`test_rows`), in `scenario`
    or OVERALL, on the episodes every copy ran on both sides, each copy paired with itself."""
    test, stressed = _by_copy(test_rows, entry.labels, scenario, metric), _by_copy(stress_rows, entry.labels,
                                                                                   scenario, metric)
    copies = [label for label in entry.labels if test[label] and stressed[label]]
    keys = sorted(set.intersection(*(set(test[c]) & set(stressed[c]) for c in copies))) if copies else []
    t = np.array([[test[c][k] for k in keys] for c in copies], dtype=float).reshape(len(copies), len(keys))
    s = np.array([[stressed[c][k] for k in keys] for c in copies], dtype=float).reshape(len(copies), len(keys))
    diff, p = hierarchical_mean(s - t), NAN
    if len(keys) >= 2:
        p = p_value(diff.mean, mean_components(s - t))
    if metric in BOUNDED and not math.isnan(diff.low):  # a difference of [0, 1] scores is in [-1, 1]
        diff = Estimate(diff.mean, max(diff.low, -1.0), min(diff.high, 1.0), diff.n)
    (test_est, how), (stress_est, _) = interval(metric, t), interval(metric, s)
    how = how if len(copies) >= 2 else "paired over episodes (t)"
    return Degradation(entry.name, condition, scenario, len(keys), test_est, stress_est, diff, p, how)


def stress_data(entries: Sequence[Entry], scenarios: Sequence[str], test_rows: Sequence[dict],
                stress_rows: Mapping[str, Sequence[dict]], unchanged: Mapping[str, tuple[str, ...]]) -> StressData:
    """Every contestant's Degradation per condition (`stress_rows`: condition -> its run's rows), overall
    and per scenario the condition changes."""
    out = []
    for name, rows in stress_rows.items():
        changed = [s for s in scenarios if s not in unchanged[name]]
        for s in ((OVERALL, *changed) if changed else ()):
            out += [degradation(e, s, test_rows, rows, name) for e in entries]
    return StressData(tuple(stress_rows), dict(unchanged), tuple(out))


def stress_section(d: StressData, entries: Sequence[Entry], scenarios: Sequence[str]) -> list[str]:
    """The report's lines: the overall table (test, condition, degradation per contestant and
    condition), the degradation per scenario, and which scenarios each condition left unchanged."""
    out = ["## Beyond the test split (stress conditions, exploratory)", "", STRESS, ""]
    header = ["contestant", "inputs", "condition", "n", "test", "under condition", "degradation (condition - test)",
              "p"]
    body = [[e.name, e.inputs, c, str(x.n), x.test.fmt(), x.stressed.fmt(), x.difference.fmt(),
             "-" if math.isnan(x.p) else format_p(x.p)]
            for c in d.conditions for e in entries if (x := d.find(e.name, c))]
    out += [table(header, body, markdown=True) if body else "No condition changed any scenario of this run.", ""]
    per = [[e.name, c] + [(x.difference.fmt() if (x := d.find(e.name, c, s)) else "unchanged") for s in scenarios]
           for c in d.conditions for e in entries if d.find(e.name, c)]
    if per:
        out += ["Degradation per scenario (`unchanged`: the condition has no parameter of that scenario's, so it "
                "was not evaluated there):", "", table(["contestant", "condition", *scenarios], per, markdown=True),
                ""]
    left = [f"`{c}`: {', '.join(d.unchanged[c])}" for c in d.conditions if d.unchanged[c]]
    if left:
        out += ["Left unchanged (and not evaluated) by a condition: " + "; ".join(left) + ".", ""]
    return out


def stress_json(d: StressData) -> dict:
    """compare.json's `stress`: the conditions, what each left unchanged, every degradation."""
    return {"family": "exploratory", "metric": PRIMARY_METRIC, "conditions": list(d.conditions),
            "unchanged": {c: list(d.unchanged[c]) for c in d.conditions},
            "degradation": [x.as_dict() for x in d.degradations]}
