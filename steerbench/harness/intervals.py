"""Confidence intervals over episodes: Wilson for rates, Student t or BCa bootstrap for means,
paired t for differences. What a single evaluation reports; the study's tests over training
seeds are in steerbench.study.stats."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

RATES = ("success", "collision", "off_road")
UNIT_INTERVAL = ("route_completion", "driving_score", "autonomy")  # metrics that live in [0, 1]
SIGNED = ("env_reward",)  # every other metric is >= 0
NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A mean (or rate) and its 95% interval [low, high] over n values; low and high are NaN where
    there is no interval (a mean of fewer than 2 values), the mean too when n = 0."""

    mean: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 2) -> str:
        """As text: `mean [low, high]`, the mean alone without an interval, `-` without values."""
        if self.n == 0:
            return "-"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self) -> dict:
        """{"mean": ..., "ci95": [low, high], "n": ...}, as in summary.json and compare.json."""
        return {"mean": self.mean, "ci95": [self.low, self.high], "n": self.n}


def rate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """The share of 1s among 0/1 values, with its Wilson interval (the values are summed and rounded)."""
    n = len(values)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    k = int(round(sum(values)))
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), n)


def mean(values: Sequence[float], level: float = 0.95) -> Estimate:
    """The mean with a Student t interval: [mean, mean] when every value is equal, NaN when n < 2."""
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
    return clipped(metric, mean(values))


def clipped(metric: str, e: Estimate) -> Estimate:
    """`e` with its interval cut to the values `metric` can take ([0, 1], >= 0, or any)."""
    if metric in SIGNED or math.isnan(e.low):
        return e
    high = min(e.high, 1.0) if metric in (*RATES, *UNIT_INTERVAL) else e.high
    return Estimate(e.mean, max(e.low, 0.0), high, e.n)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Mean of a - b over paired episodes, with a t interval on the differences."""
    return mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


# --- Comparison study: bootstrap intervals, paired Wilcoxon tests, spread over training seeds ---


def bootstrap_mean(values: Sequence[float], level: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> Estimate:
    """Bootstrap CI of the mean: BCa, which corrects the skew of bounded scores near 0 or 1.

    BCa is undefined for constant data (its acceleration is 0/0); there, or whenever it
    gives NaN, the percentile interval is used instead.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(NAN, NAN, NAN, 0)
    m = float(x.mean())
    if n < 2:
        return Estimate(m, NAN, NAN, n)
    if np.all(x == x[0]):
        return Estimate(m, m, m, n)
    for method in ("BCa", "percentile"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback
            ci = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=resamples,
                                 method=method, rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if not (math.isnan(low) or math.isnan(high)):
            break
    return Estimate(m, low, high, n)


def format_p(p: float) -> str:
    """As text: `p<0.001`, else `p=` with two significant digits."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"
