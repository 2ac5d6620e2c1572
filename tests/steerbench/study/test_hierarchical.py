"""Intervals and paired tests over training seeds x episodes, and Holm's correction.

The synthetic data have the structure of a study: y[seed, episode] = mean + seed effect +
episode difficulty (shared by every seed and agent: the same env seed) + noise, 3 training
seeds, the seed effect's sd comparable to the episodes'.
"""

import math

import numpy as np
import pytest
from scipy import stats

from steerbench.harness.intervals import bootstrap_mean, mean
from steerbench.study.stats import (
    Component,
    PairedTest,
    half_width,
    hierarchical_bootstrap,
    hierarchical_difference,
    hierarchical_mean,
    holm,
    holm_family,
    needed,
    p_value,
    paired_test,
)

TRUE_MEAN = 0.6
SEEDS, EPISODES = 3, 20
SEED_SD, DIFFICULTY_SD, NOISE_SD = 0.15, 0.1, 0.15  # per-episode sd sqrt(0.1^2 + 0.15^2) = 0.18


def _studies(count: int, rng: np.random.Generator, seeds: int = SEEDS) -> np.ndarray:
    """`count` synthetic seeds x episodes matrices."""
    return (TRUE_MEAN + rng.normal(0, SEED_SD, (count, seeds, 1)) + rng.normal(0, DIFFICULTY_SD, (count, 1, EPISODES))
            + rng.normal(0, NOISE_SD, (count, seeds, EPISODES)))


def _covers(e) -> bool:
    return e.low <= TRUE_MEAN <= e.high


@pytest.fixture(scope="module")
def studies() -> np.ndarray:
    return _studies(3000, np.random.default_rng(2024))


def test_the_two_level_interval_covers_the_true_mean_at_the_nominal_rate(studies):
    coverage = np.mean([_covers(hierarchical_mean(y)) for y in studies])
    print(f"two-level interval, 3 seeds x 20 episodes: coverage {coverage:.3f} over {len(studies)} studies")
    assert 0.92 <= coverage <= 0.97


def test_intervals_over_episodes_alone_fall_short_on_the_same_data(studies):
    # what compare reported before: a BCa bootstrap over episodes of the per-episode mean over seeds
    episodes_only = np.mean([_covers(bootstrap_mean(y.mean(axis=0), resamples=1000, seed=i))
                             for i, y in enumerate(studies[:300])])
    print(f"episodes-only BCa interval: coverage {episodes_only:.3f}")
    assert episodes_only < 0.75


def test_a_percentile_bootstrap_over_three_seeds_undercovers(studies):
    """Why the two-level t interval rather than the plain hierarchical bootstrap (docs/study.md)."""
    covered = [np.quantile(hierarchical_bootstrap(y, resamples=2000, seed=i), [0.025, 0.975])
               for i, y in enumerate(studies[:300])]
    coverage = np.mean([lo <= TRUE_MEAN <= hi for lo, hi in covered])
    print(f"hierarchical percentile bootstrap: coverage {coverage:.3f}")
    assert coverage < 0.88


def _pair(rng: np.random.Generator, difference: float = 0.0, seeds_b: int = SEEDS) -> tuple[np.ndarray, np.ndarray]:
    difficulty = rng.normal(0, DIFFICULTY_SD, (1, EPISODES))  # the same episodes for both sides
    side = lambda k, shift: (TRUE_MEAN + shift + rng.normal(0, SEED_SD if k > 1 else 0.0, (k, 1)) + difficulty  # noqa: E731
                             + rng.normal(0, NOISE_SD, (k, EPISODES)))
    return side(SEEDS, difference), side(seeds_b, 0.0)


@pytest.mark.parametrize("seeds_b", [SEEDS, 1])
def test_the_paired_test_keeps_its_false_positive_rate_with_seed_variance(seeds_b):
    rng = np.random.default_rng(7 + seeds_b)
    pairs = [_pair(rng, seeds_b=seeds_b) for _ in range(1000)]
    rejected = np.mean([hierarchical_difference(a, b).p_value < 0.05 for a, b in pairs])
    # what compare did before: Wilcoxon over episodes of the per-episode means over seeds
    wilcoxon = np.mean([paired_test(a.mean(axis=0), b.mean(axis=0), resamples=200).p_value < 0.05
                        for a, b in pairs[:200]])
    print(f"3 vs {seeds_b} seeds, no true difference: two-level rejects {rejected:.3f}, Wilcoxon {wilcoxon:.3f}")
    assert 0.01 <= rejected <= 0.06
    assert wilcoxon > 0.3


def test_the_paired_test_resolves_a_difference_larger_than_the_seed_spread():
    rng = np.random.default_rng(11)
    found = np.mean([hierarchical_difference(*_pair(rng, difference=0.6)).significant() for _ in range(200)])
    assert found > 0.8
    t = hierarchical_difference(*_pair(np.random.default_rng(0), difference=0.6))
    assert t.difference.low < t.difference.mean < t.difference.high and t.n == EPISODES
    assert "3 vs 3" in t.method


# -- what the two-level interval reduces to ----------------------------------------------------
def test_one_seed_on_each_side_is_the_paired_t_test():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.2, (1, 30)), rng.normal(0.4, 0.2, (1, 30))
    t = hierarchical_difference(a, b)
    assert t.p_value == pytest.approx(stats.ttest_rel(a[0], b[0]).pvalue, rel=1e-6)
    ref = mean(a[0] - b[0])
    assert (t.difference.low, t.difference.high) == pytest.approx((ref.low, ref.high))
    one = hierarchical_mean(a)
    assert (one.low, one.high) == pytest.approx(tuple(stats.t.interval(0.95, 29, a.mean(), stats.sem(a[0]))))


def test_seeds_constant_over_episodes_give_the_t_interval_of_the_seed_means():
    seed_means = np.array([0.3, 0.5, 0.7])
    y = np.repeat(seed_means[:, None], 10, axis=1)
    e = hierarchical_mean(y)
    low, high = stats.t.interval(0.95, 2, seed_means.mean(), stats.sem(seed_means))
    assert (e.mean, e.low, e.high, e.n) == pytest.approx((0.5, low, high, 10))


def test_the_p_value_is_the_inverted_interval():
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = _pair(rng, difference=float(rng.uniform(0, 0.5)))
        t = hierarchical_difference(a, b)
        assert t.significant() == (t.difference.low > 0 or t.difference.high < 0)
    comps = [Component("seeds", 0.01, 2), Component("episodes", 0.002, 19)]
    p = p_value(0.3, comps)
    assert half_width(comps, 1 - p) == pytest.approx(0.3)


def test_edge_cases():
    same = hierarchical_difference(np.ones((3, 5)), np.ones((1, 5)))
    assert same.p_value == 1.0 and same.difference.mean == 0 and not same.significant()
    apart = hierarchical_difference(np.ones((3, 5)), np.zeros((3, 5)))
    assert apart.p_value == 0.0 and apart.difference.low == apart.difference.high == 1.0
    assert math.isnan(hierarchical_difference(np.ones((3, 1)), np.zeros((3, 1))).p_value)
    assert hierarchical_difference(np.zeros((0, 0)), np.zeros((0, 0))).n == 0
    assert hierarchical_mean(np.zeros((0, 0))).n == 0
    constant = hierarchical_mean(np.full((3, 4), 0.8))
    assert (constant.low, constant.high) == pytest.approx((0.8, 0.8))
    with pytest.raises(ValueError, match="same episodes"):
        hierarchical_difference(np.ones((3, 4)), np.ones((3, 5)))


def test_the_bootstrap_is_deterministic_and_centred():
    y = _studies(1, np.random.default_rng(0))[0]
    draws = hierarchical_bootstrap(y, resamples=10_000, seed=1)
    assert draws.shape == (10_000,) and np.array_equal(draws, hierarchical_bootstrap(y, resamples=10_000, seed=1))
    assert draws.mean() == pytest.approx(y.mean(), abs=0.01)
    d = hierarchical_bootstrap(y, y[:1], resamples=1000, seed=2)
    assert d.shape == (1000,) and d.mean() == pytest.approx(y.mean() - y[0].mean(), abs=0.02)


# -- Holm -------------------------------------------------------------------------------------
def test_holm_on_known_p_values():
    # the textbook example (four hypotheses, alpha 0.05): only the first and the fourth are rejected
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02]
    adjusted = holm([float("nan"), 0.01, 0.2])
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.2])
    assert holm([]) == []


def test_a_primary_contrast_is_decided_on_its_holm_p():
    d = bootstrap_mean([0.1, 0.2, 0.3])
    tests = [PairedTest(d, 0.03, "m", 3), PairedTest(d, 0.02, "m", 3), PairedTest(d, 0.03, "m", 3)]
    marked = holm_family(tests, [True, True, False])
    assert [t.primary for t in marked] == [True, True, False]
    assert [t.p_holm for t in marked[:2]] == pytest.approx([0.04, 0.04]) and math.isnan(marked[2].p_holm)
    assert marked[0].verdict("a", "b") == "a better (p=0.03, Holm p=0.04)"
    assert holm_family([PairedTest(d, 0.03, "m", 3)] * 2, [True, True])[0].verdict("a", "b") == \
        "no resolved difference (p=0.03, Holm p=0.06)"
    assert marked[2].verdict("a", "b") == "a better (p=0.03)"  # exploratory: raw p, labelled by the report
    assert marked[0].as_dict()["family"] == "primary" and marked[2].as_dict()["p_holm"] is None


# -- power: how many seeds or episodes would resolve a difference ------------------------------
def _resolved(rng: np.random.Generator, effect: float, seeds: int, episodes: int, count: int = 500) -> float:
    hits = 0
    for _ in range(count):
        difficulty = rng.normal(0, DIFFICULTY_SD, (1, episodes))
        a = (TRUE_MEAN + effect + rng.normal(0, SEED_SD if seeds > 1 else 0.0, (seeds, 1)) + difficulty
             + rng.normal(0, NOISE_SD, (seeds, episodes)))
        b = TRUE_MEAN + difficulty + rng.normal(0, NOISE_SD, (1, episodes))
        hits += hierarchical_difference(a, b).significant()
    return hits / count


def test_the_seeds_needed_resolve_the_difference_about_80_percent_of_the_time():
    # the true levels of a 3-seed network against an agent with nothing learned, 20 episodes
    levels = [Component("training seeds of a", (SEED_SD ** 2 + NOISE_SD ** 2 / EPISODES) / 3, 2),
              Component("episodes", NOISE_SD ** 2 / EPISODES, EPISODES - 1)]
    need = needed(levels, 0.3, 3, EPISODES)
    assert need.episodes is None and need.seeds == 5  # the seed level dominates: more episodes cannot do it
    assert need.fmt() == "~5 seeds or more episodes alone: no"
    rng = np.random.default_rng(17)
    assert 0.7 <= _resolved(rng, 0.3, need.seeds, EPISODES) <= 0.92
    assert _resolved(rng, 0.3, 3, EPISODES) < 0.6


def test_the_episodes_needed_without_seed_levels():
    need = needed([Component("episodes", 2 * NOISE_SD ** 2 / EPISODES, EPISODES - 1)], 0.08, 1, EPISODES)
    assert need.seeds is None and not need.learned and need.fmt() == f"~{need.episodes} episodes"
    assert 0.7 <= _resolved(np.random.default_rng(18), 0.08, 1, need.episodes) <= 0.9
    unresolved = hierarchical_difference(*_pair(np.random.default_rng(1), difference=0.05))
    assert not unresolved.significant() and unresolved.needed().seeds > 3
    assert [c["level"] for c in unresolved.as_dict()["levels"]] == ["training seeds", "episodes"]
