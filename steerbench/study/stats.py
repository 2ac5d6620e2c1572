"""The study's statistics: paired tests of two contestants on the same episodes, the spread of a
result over training seeds, intervals and paired tests that include the variance between
training seeds (`hierarchical_mean`, `hierarchical_difference`), the episodes and seeds a
contrast needs, and Holm's correction for a family of primary contrasts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy import stats

from steerbench.harness.intervals import NAN, Estimate, bootstrap_mean, format_p


@dataclass(frozen=True)
class PairedTest:
    """Outcome of comparing two agents on the same episodes (same seeds and scenarios).

    A primary contrast (declared before the run, one of a family corrected together) is
    decided on its Holm-adjusted p-value; any other is exploratory and decided on its raw p.
    """

    difference: Estimate  # mean of a - b with its 95% interval
    p_value: float  # two-sided, raw; NaN when n < 2
    method: str
    n: int
    primary: bool = False
    p_holm: float = NAN  # Holm-adjusted over the primary family; NaN when exploratory
    levels: tuple[Component, ...] = ()  # the difference's variance by level (two-level tests)
    seeds: int = 1  # training seeds of the more-seeded side

    @property
    def decisive_p(self) -> float:
        """The p that decides: Holm's for a primary contrast, else the raw one."""
        return self.p_holm if self.primary else self.p_value

    def significant(self, alpha: float = 0.05) -> bool:
        """Resolved at `alpha` on the decisive p (False when it is NaN)."""
        return not math.isnan(self.decisive_p) and self.decisive_p < alpha

    def p_text(self) -> str:
        """The raw p, and the Holm-adjusted one for a primary contrast."""
        raw = format_p(self.p_value)
        return f"{raw}, Holm {format_p(self.p_holm)}" if self.primary else raw

    def verdict(self, a: str, b: str, alpha: float = 0.05) -> str:
        """Names the better agent (higher is better) only when the test resolves it."""
        p = self.p_text()
        if self.significant(alpha) and self.difference.mean != 0:
            return f"{a if self.difference.mean > 0 else b} better ({p})"
        return f"no resolved difference ({p})"

    def needed(self, alpha: float = 0.05) -> Needed:
        """Seeds or episodes at which this difference would be resolved (see `needed`)."""
        return needed(self.levels, self.difference.mean, self.seeds, self.n, alpha=alpha)

    def as_dict(self) -> dict:
        """For compare.json (`p_holm` None when exploratory; `levels` when the test has variance components)."""
        out = {"difference": self.difference.as_dict(), "p_value": self.p_value,
               "method": self.method, "n": self.n, "family": "primary" if self.primary else "exploratory",
               "p_holm": self.p_holm if self.primary else None}
        if self.levels:
            out["levels"] = [{"level": c.level, "variance": c.variance, "df": c.df} for c in self.levels]
        return out


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
        """As text: `mean ± sd (k seeds)`, without the sd for one seed, `-` without seeds."""
        if self.n == 0:
            return "-"
        seeds = "1 seed" if self.n == 1 else f"{self.n} seeds"
        if math.isnan(self.sd):
            return f"{self.mean:.{digits}f} ({seeds})"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} ({seeds})"

    def as_dict(self) -> dict:
        """For compare.json: mean, sd, min, max and n."""
        return {"mean": self.mean, "sd": self.sd, "min": self.low, "max": self.high, "n": self.n}


def seed_spread(values: Sequence[float]) -> SeedSpread:
    """The spread of `values`, one per training seed."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return SeedSpread(NAN, NAN, NAN, NAN, 0)
    sd = float(x.std(ddof=1)) if len(x) > 1 else NAN
    return SeedSpread(float(x.mean()), sd, float(x.min()), float(x.max()), len(x))


# --- Training seeds x episodes: intervals and paired tests that include the seed variance ---
#
# A learned contestant is a matrix of scores: one row per training seed (an evaluated copy),
# one column per episode, and every column is the same episode (scenario, split, index: the
# same env seed) for every row and every agent. Both levels are samples: the copies of the
# training seeds one could have used, the episodes of the scenarios one could have drawn. With
# the usual 3 seeds the seed level has 2 degrees of freedom, which a percentile bootstrap over
# seeds ignores (it undercovers badly, see docs/study.md and
# tests/steerbench/study/test_hierarchical.py). So the interval adds the two levels' variances,
# each widened by its own Student t quantile:
#
#     half-width^2 = t(k-1)^2 * Var_seeds + t(n-1)^2 * Var_episodes
#
# exact (a t interval) when one level dominates, conservative in between.


@dataclass(frozen=True)
class Component:
    """One level's share of a mean's variance: the variance it adds, with its degrees of freedom."""

    level: str
    variance: float
    df: float  # Welch-Satterthwaite degrees of freedom are not whole numbers


def _two_way(y: np.ndarray) -> tuple[float, float]:
    """Variance of the row means (ddof=1) and residual mean square of a seeds x episodes matrix."""
    k, n = y.shape
    rows = y.mean(axis=1)
    residual = y - rows[:, None] - y.mean(axis=0)[None, :] + y.mean()
    return float(rows.var(ddof=1)), float((residual ** 2).sum() / ((k - 1) * (n - 1)))


def _seed_and_residual(y: np.ndarray, level: str) -> tuple[list[Component], float]:
    """The seed level of one side (none with one seed) and its residual share of an episode mean.

    The row (seed) means carry the seed effect plus 1/n of the residual, so Var(rows)/k
    estimates the seed level's share of the mean's variance; the columns carry 1/k of the
    same residual, which the caller takes out of the episode level so it is counted once.
    """
    k, n = y.shape
    if k < 2:
        return [], 0.0
    rows_var, residual = _two_way(y)
    return [Component(level, rows_var / k, k - 1)], residual / k


def _check(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"{name} must be a training seeds x episodes matrix, got shape {y.shape}")
    return y


def mean_components(y: np.ndarray) -> list[Component]:
    """Variance components of the grand mean of a seeds x episodes matrix (n >= 2 episodes)."""
    y = _check(y, "y")
    seeds, residual = _seed_and_residual(y, "training seeds")
    columns = float(y.mean(axis=0).var(ddof=1))
    return seeds + [Component("episodes", max(columns - residual, 0.0) / y.shape[1], y.shape[1] - 1)]


def difference_components(a: np.ndarray, b: np.ndarray) -> list[Component]:
    """Variance components of mean(a) - mean(b), paired on the episodes (the columns).

    Each side's seeds are an independent sample (the `a` copies share nothing with the `b`
    copies); the episodes are shared, so the episode level is the spread of the per-episode
    differences, and whatever the two sides share on an episode (its difficulty) cancels.
    """
    a, b = _check(a, "a"), _check(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired sides need the same episodes, got {a.shape[1]} and {b.shape[1]}")
    seeds_a, residual_a = _seed_and_residual(a, "training seeds of a")
    seeds_b, residual_b = _seed_and_residual(b, "training seeds of b")
    d = float((a.mean(axis=0) - b.mean(axis=0)).var(ddof=1))
    n = a.shape[1]
    return _welch(seeds_a + seeds_b) + [Component("episodes", max(d - residual_a - residual_b, 0.0) / n, n - 1)]


def _welch(seeds: list[Component]) -> list[Component]:
    """Both sides' seed levels as one: the variance of a difference of two independent samples of
    seed means, with Welch-Satterthwaite degrees of freedom (Welch's test). Kept apart, each
    with its own t(2) quantile, they would double-count the small-sample widening: at 3 vs 3
    seeds the test then rejected a true null 1% of the time instead of 5%.
    """
    if len(seeds) < 2 or any(c.variance == 0 for c in seeds):
        return seeds
    v = sum(c.variance for c in seeds)
    return [Component("training seeds", v, v ** 2 / sum(c.variance ** 2 / c.df for c in seeds))]


def half_width(components: Sequence[Component], level: float = 0.95) -> float:
    """The interval's half-width at `level` from variance components: sqrt(sum of t(df)^2 x variance),
    components without variance left out."""
    # a level with no variance adds nothing (skipped: its quantile can be inf at tiny 1 - level)
    return math.sqrt(sum(float(stats.t.isf((1 - level) / 2, c.df)) ** 2 * c.variance
                         for c in components if c.variance > 0))


def p_value(effect: float, components: Sequence[Component]) -> float:
    """Two-sided p: the 1 - level at which the interval's edge reaches zero (the interval inverted).

    So p < 0.05 exactly when the 95% interval excludes 0; with one component this is the
    t test's p.
    """
    if effect == 0 or math.isnan(effect):
        return 1.0 if effect == 0 else NAN
    total = sum(c.variance for c in components if c.variance > 0)
    # A level whose variance is rounding error (a seed level of identical copies) would leave the
    # root search a bracket whose ends agree to the last bit: it adds nothing, so it is left out.
    live = [c for c in components if c.variance > 1e-12 * total]
    if not live:
        return 0.0
    # The root lies between the p of a t test with all the variance at the fewest degrees of
    # freedom and at the most: a tight bracket, so a few iterations.
    t = abs(effect) / math.sqrt(sum(c.variance for c in live))
    low, high = (float(2 * stats.t.sf(t, df)) for df in (max(c.df for c in live), min(c.df for c in live)))
    if low == high:
        return low
    if low <= 0.0:
        return 0.0
    from scipy.optimize import brentq

    edge = lambda log_alpha: half_width(live, 1 - math.exp(log_alpha)) - abs(effect)  # noqa: E731
    try:
        return math.exp(brentq(edge, math.log(low), math.log(high), xtol=1e-12))
    except ValueError:  # p so small (under ~1e-30) that the t quantiles lose precision: the bracket's
        return high  # conservative end


def hierarchical_mean(y: np.ndarray, level: float = 0.95) -> Estimate:
    """Mean of a seeds x episodes matrix, with an interval over both training seeds and episodes."""
    y = _check(y, "y")
    k, n = y.shape
    if k * n == 0:
        return Estimate(NAN, NAN, NAN, 0)
    m = float(y.mean())
    if n < 2:
        return Estimate(m, NAN, NAN, n)
    h = half_width(mean_components(y), level)
    return Estimate(m, m - h, m + h, n)


def hierarchical_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> PairedTest:
    """mean(a) - mean(b) paired on episodes, with each side's training seeds in its uncertainty.

    `a` and `b` are seeds x episodes matrices with the same columns (episodes); a side with one
    seed (nothing learned, or one training seed) has no seed level. Both with one seed: the
    paired t test on the episode differences.
    """
    a, b = _check(a, "a"), _check(b, "b")
    n = a.shape[1]
    method = (f"paired on episodes; two-level t interval over training seeds ({a.shape[0]} vs {b.shape[0]}) "
              f"and episodes, p by inverting it")
    if a.size == 0 or b.size == 0 or n == 0:
        return PairedTest(Estimate(NAN, NAN, NAN, 0), NAN, method, 0)
    d = float(a.mean() - b.mean())
    if n < 2:
        return PairedTest(Estimate(d, NAN, NAN, n), NAN, method, n)
    components = difference_components(a, b)
    h = half_width(components, level)
    return PairedTest(Estimate(d, d - h, d + h, n), p_value(d, components), method, n,
                      levels=tuple(components), seeds=max(a.shape[0], b.shape[0]))


@dataclass(frozen=True)
class Needed:
    """How many training seeds (per learned side, episodes as now) or episodes (seeds as now)
    would resolve a difference of the size observed; None: not within the caps."""

    seeds: int | None
    episodes: int | None
    learned: bool = True  # False: neither side has a seed level, more seeds change nothing

    def fmt(self) -> str:
        """As text, e.g. `~7 seeds or ~400 episodes`; seeds left out when neither side has a seed level."""
        episodes = f"~{self.episodes} episodes" if self.episodes else "more episodes alone: no"
        if not self.learned:
            return episodes
        return f"{f'~{self.seeds} seeds' if self.seeds else 'over 100 seeds'} or {episodes}"

    def as_dict(self) -> dict:
        """For compare.json (`seeds` None when more seeds would change nothing, or none within the caps)."""
        return {"seeds": self.seeds if self.learned else None, "episodes": self.episodes}


def needed(levels: Sequence[Component], effect: float, seeds: int, episodes: int, power: float = 0.8,
           alpha: float = 0.05, max_seeds: int = 100, max_episodes: int = 100_000) -> Needed:
    """A power estimate: the fewest seeds, or episodes, with which a true difference the size of
    `effect` is resolved at `alpha` (two-sided, before Holm) with probability `power`, if the
    variances per seed and per episode stay as estimated. The usual approximation: resolved when
    |effect| >= (t quantile at 1 - alpha/2 + t quantile at power) x standard error, each level
    with its own quantile as in the interval. Seed levels shrink as 1/seeds, their degrees of
    freedom grow in proportion; the episode level likewise with the episodes.
    """
    has_seeds = any(c.level != "episodes" for c in levels)
    if not levels or effect == 0 or math.isnan(effect):
        return Needed(None, None, has_seeds)

    def resolved(k: int, n: int) -> bool:
        scaled = [Component(c.level, c.variance * episodes / n, n - 1) if c.level == "episodes" else
                  Component(c.level, c.variance * seeds / k, c.df * (k - 1) / max(seeds - 1, 1)) for c in levels]
        return half_width(scaled, 1 - alpha) + half_width(scaled, 2 * power - 1) <= abs(effect)

    k = next((k for k in range(max(seeds, 2), max_seeds + 1) if resolved(k, episodes)), None) if has_seeds else None
    n = None
    if resolved(seeds, max_episodes):
        lo, hi = episodes, max_episodes  # resolved(seeds, n) only gets truer with n: bisect
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if resolved(seeds, mid) else (mid + 1, hi)
        n = lo
    return Needed(k, n, has_seeds)


def hierarchical_bootstrap(a: np.ndarray, b: np.ndarray | None = None, resamples: int = 10_000,
                           seed: int = 0) -> np.ndarray:
    """Resampled means (or differences a - b) of seeds x episodes matrices.

    Each resample draws training seeds with replacement (each side independently), then episode
    indices with replacement, the same indices for every row and both sides (an episode is the
    same env seed for everyone). Drawn as counts, so a resample is one weighted sum (10k
    resamples of 3 x 200 in well under a second). The study reports `hierarchical_mean`
    instead: with 3 seeds this bootstrap's percentile interval undercovers (docs/study.md).
    """
    rng = np.random.default_rng(seed)
    a = _check(a, "a")
    n = a.shape[1]
    episodes = rng.multinomial(n, np.full(n, 1 / n), size=resamples)

    def means(y: np.ndarray) -> np.ndarray:
        k = y.shape[0]
        seeds = rng.multinomial(k, np.full(k, 1 / k), size=resamples)
        return np.einsum("rk,kn,rn->r", seeds, y, episodes) / (k * n)

    return means(a) if b is None else means(a) - means(_check(b, "b"))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order; NaN stays NaN and is not counted.

    The i-th smallest of m p-values is multiplied by m - i + 1, and the adjusted values are made
    non-decreasing in that order (and at most 1): rejecting where the adjusted p < alpha keeps
    the family-wise error rate at alpha.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, NAN)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adjusted
    return [float(v) for v in out]


def holm_family(tests: Sequence[PairedTest], primary: Sequence[bool]) -> list[PairedTest]:
    """`tests` with the primary ones marked and given their Holm p over that family."""
    chosen = [i for i, f in enumerate(primary) if f]
    adjusted = dict(zip(chosen, holm([tests[i].p_value for i in chosen])))
    return [replace(t, primary=True, p_holm=adjusted[i]) if i in adjusted else t for i, t in enumerate(tests)]
