"""Confidence intervals: Wilson for rates, Student t or bootstrap for means, paired t or
Wilcoxon for differences, and the spread of a result over training seeds."""

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


# --- Comparison study: bootstrap intervals, paired Wilcoxon tests, spread over training seeds ---

NAN = float("nan")


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
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


@dataclass(frozen=True)
class PairedTest:
    """Outcome of comparing two agents on the same episodes (same seeds and scenarios)."""

    difference: Estimate  # mean of a - b, bootstrap CI
    p_value: float  # two-sided Wilcoxon signed-rank; NaN when n < 2
    method: str
    n: int

    def significant(self, alpha: float = 0.05) -> bool:
        return not math.isnan(self.p_value) and self.p_value < alpha

    def verdict(self, a: str, b: str, alpha: float = 0.05) -> str:
        """Names the better agent (higher is better) only when the test resolves it."""
        p = format_p(self.p_value)
        if self.significant(alpha) and self.difference.mean != 0:
            return f"{a if self.difference.mean > 0 else b} better ({p})"
        return f"no resolved difference ({p})"

    def as_dict(self) -> dict:
        return {"difference": self.difference.as_dict(), "p_value": self.p_value,
                "method": self.method, "n": self.n}


# "zsplit" rather than scipy's default "wilcox" (which drops zero differences and so
# overstates significance when most episodes tie, e.g. both agents score 1.0) or "pratt"
# (which drops the zeros' ranks): zsplit keeps every paired episode, counting each tie half
# for each side, so the test asks the same question as the mean difference beside it.
ZERO_METHOD = "zsplit"


def paired_test(a: Sequence[float], b: Sequence[float], level: float = 0.95, seed: int = 0,
                resamples: int = 2000) -> PairedTest:
    """Wilcoxon signed-rank test of a vs b on paired episodes, plus a bootstrap CI of a - b."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_test needs paired samples of equal length, got {len(x)} and {len(y)}")
    d = x - y
    method = f"wilcoxon signed-rank ({ZERO_METHOD}); bootstrap CI of the mean difference"
    difference = bootstrap_mean(d, level=level, resamples=resamples, seed=seed)
    if len(d) < 2:
        p = NAN
    elif np.all(d == 0):
        p = 1.0  # scipy divides 0 by 0 here
    else:
        p = float(stats.wilcoxon(d, zero_method=ZERO_METHOD, alternative="two-sided").pvalue)
    return PairedTest(difference, p, method, len(d))


@dataclass(frozen=True)
class SeedSpread:
    """A learned agent's result over several training seeds: the spread, not a CI."""

    mean: float
    sd: float  # ddof=1; NaN when n < 2
    low: float  # min over seeds
    high: float  # max over seeds
    n: int

    def fmt(self, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        seeds = "1 seed" if self.n == 1 else f"{self.n} seeds"
        if math.isnan(self.sd):
            return f"{self.mean:.{digits}f} ({seeds})"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} ({seeds})"

    def as_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "min": self.low, "max": self.high, "n": self.n}


def seed_spread(values: Sequence[float]) -> SeedSpread:
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return SeedSpread(NAN, NAN, NAN, NAN, 0)
    sd = float(x.std(ddof=1)) if len(x) > 1 else NAN
    return SeedSpread(float(x.mean()), sd, float(x.min()), float(x.max()), len(x))
