"""Confidence intervals: Wilson for rates, Student t for means, paired t for differences."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

RATES = ("success", "collision", "off_road")
UNIT_INTERVAL = ("route_completion", "driving_score", "autonomy")  # metrics that live in [0, 1]
SIGNED = ("env_reward",)  # every other metric is >= 0


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self) -> dict:
        return {"mean": self.mean, "ci95": [self.low, self.high], "n": self.n}


def rate(values: Sequence[float], level: float = 0.95) -> Estimate:
    n = len(values)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    k = int(round(sum(values)))
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), n)


def mean(values: Sequence[float], level: float = 0.95) -> Estimate:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    m = float(x.mean())
    if n < 2:
        return Estimate(m, float("nan"), float("nan"), n)
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return Estimate(m, m, m, n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(m, m - half, m + half, n)


def estimate(metric: str, values: Sequence[float]) -> Estimate:
    """Wilson for rates; a t interval for means, clipped to the range the metric can take."""
    if metric in RATES:
        return rate(values)
    e = mean(values)
    if metric in SIGNED or math.isnan(e.low):
        return e
    high = min(e.high, 1.0) if metric in UNIT_INTERVAL else e.high
    return Estimate(e.mean, max(e.low, 0.0), high, e.n)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Mean of a - b over paired episodes, with a t interval on the differences."""
    return mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
