"""Summaries of an evaluation: per agent x scenario x split, with 95% confidence intervals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from steerbench.harness.intervals import Estimate, estimate, paired_difference

TABLE_METRICS = (
    ("success", "success"),
    ("collision", "collision"),
    ("driving_score", "driving score"),
    ("mean_lateral_offset_m", "lat. offset m"),
    ("steering_smoothness", "steer rate /s"),
    ("mean_speed_mps", "speed m/s"),
)
SUMMARY_METRICS = (
    "success", "collision", "off_road", "route_completion", "lane_departures", "autonomy",
    "driving_score", "mean_lateral_offset_m", "mean_heading_error_rad", "steering_smoothness",
    "min_ttc_s", "mean_speed_mps", "env_reward",
)


@dataclass(frozen=True)
class Group:
    """One agent x scenario x split of an evaluation: metrics with 95% intervals, and failure counts."""

    agent: str
    inputs: str
    scenario: str
    split: str
    n: int  # episodes
    metrics: dict[str, Estimate]  # SUMMARY_METRICS -> mean and interval (intervals.estimate)
    failures: dict[str, int]  # failure category ("none" included) -> episodes

    @property
    def label(self) -> str:
        """The agent as the tables show it: `agent [inputs]`."""
        return f"{self.agent} [{self.inputs}]"


def summarise(rows: Iterable[dict], inputs: dict[str, str]) -> list[Group]:
    """One Group per (agent, scenario, split) of `rows`, with SUMMARY_METRICS estimated
    (intervals.estimate). `inputs`: label -> inputs kind ("?" for a label missing from it); groups are
    sorted by scenario, split, then the order of `inputs`."""
    buckets: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        buckets[(r["agent"], r["scenario"], r["split"])].append(r)
    groups = []
    for (agent, scenario, split), rs in buckets.items():
        metrics = {m: estimate(m, [r["metrics"][m] for r in rs]) for m in SUMMARY_METRICS}
        failures: dict[str, int] = defaultdict(int)
        for r in rs:
            failures[r["metrics"]["failure"]] += 1
        groups.append(Group(agent, inputs.get(agent, "?"), scenario, split, len(rs), metrics, dict(failures)))
    order = {a: i for i, a in enumerate(inputs)}
    return sorted(groups, key=lambda g: (g.scenario, g.split, order.get(g.agent, 99), g.agent))


@dataclass(frozen=True)
class Comparison:
    """`agent` minus `baseline` on the episodes both ran, in one scenario and split."""

    scenario: str
    split: str
    agent: str
    baseline: str
    n: int
    difference: Estimate  # driving score, agent minus baseline, on the same episodes


def compare(rows: Sequence[dict], agents: Sequence[str], metric: str = "driving_score") -> list[Comparison]:
    """Paired differences of the first agent against each other one, per scenario and split."""
    if len(agents) < 2:
        return []
    by_key = {(r["agent"], r["scenario"], r["split"], r["index"]): r["metrics"][metric] for r in rows}
    cells = sorted({(r["scenario"], r["split"]) for r in rows})
    first = agents[0]
    out = []
    for scenario, split in cells:
        for other in agents[1:]:
            idx = sorted(
                k[3] for k in by_key
                if k[:3] == (first, scenario, split) and (other, scenario, split, k[3]) in by_key
            )
            if not idx:
                continue
            a = [by_key[(first, scenario, split, i)] for i in idx]
            b = [by_key[(other, scenario, split, i)] for i in idx]
            out.append(Comparison(scenario, split, first, other, len(idx), paired_difference(a, b)))
    return out


def table(header: list[str], body: list[list[str]], markdown: bool) -> str:
    """`body` under `header`, as a markdown table or as plain text in padded columns."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)])


def summary_table(groups: Sequence[Group], markdown: bool = False) -> str:
    """One row per group: n and the TABLE_METRICS with their intervals."""
    header = ["agent [inputs]", "scenario", "split", "n"] + [name for _, name in TABLE_METRICS]
    body = [
        [g.label, g.scenario, g.split, str(g.n)] + [g.metrics[m].fmt() for m, _ in TABLE_METRICS]
        for g in groups
    ]
    return table(header, body, markdown)


def comparison_table(comparisons: Sequence[Comparison], markdown: bool = False) -> str:
    """One row per comparison (headed as a driving-score difference)."""
    header = ["scenario", "split", "difference in driving score (paired episodes)", "n"]
    body = [
        [c.scenario, c.split, f"{c.agent} - {c.baseline}: {c.difference.fmt()}", str(c.n)]
        for c in comparisons
    ]
    return table(header, body, markdown)


def failure_table(groups: Sequence[Group], markdown: bool = False) -> str:
    """Episodes per failure category (one column per category seen, "none" included), per group."""
    kinds = sorted({k for g in groups for k in g.failures})
    header = ["agent", "scenario", "split"] + kinds
    body = [[g.agent, g.scenario, g.split] + [str(g.failures.get(k, 0)) for k in kinds] for g in groups]
    return table(header, body, markdown)


def summary_json(groups: Sequence[Group], comparisons: Sequence[Comparison]) -> dict:
    """The content of summary.json: each group's metrics (mean, ci95, n) and failures, and the
    comparisons."""
    return {
        "groups": [
            {
                "agent": g.agent, "inputs": g.inputs, "scenario": g.scenario, "split": g.split,
                "n": g.n, "failures": g.failures,
                "metrics": {m: e.as_dict() for m, e in g.metrics.items()},
            }
            for g in groups
        ],
        "comparisons": [
            {
                "scenario": c.scenario, "split": c.split, "agent": c.agent, "baseline": c.baseline,
                "n": c.n, "driving_score_difference": c.difference.as_dict(),
            }
            for c in comparisons
        ],
    }


def summary_markdown(groups: Sequence[Group], comparisons: Sequence[Comparison]) -> str:
    """The content of summary.md: the summary table, the failures and the paired differences."""
    parts = ["# Evaluation summary", "", "Means with 95% confidence intervals (Wilson for rates, t for means).", "",
             summary_table(groups, markdown=True), "", "## Failures", "", failure_table(groups, markdown=True)]
    if comparisons:
        parts += ["", "## Paired differences", "", comparison_table(comparisons, markdown=True)]
    return "\n".join(parts) + "\n"
