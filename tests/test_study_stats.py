"""Bootstrap intervals, paired Wilcoxon tests and the spread over training seeds."""

import math

import numpy as np
import pytest

from steerbench.stats import PairedTest, bootstrap_mean, paired_test, seed_spread


def test_bootstrap_ci_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    true_mean = 2 / (2 + 5)  # Beta(2, 5)
    samples = rng.beta(2, 5, size=(300, 30))
    cis = [bootstrap_mean(s, resamples=500, seed=i) for i, s in enumerate(samples)]
    coverage = np.mean([e.low <= true_mean <= e.high for e in cis])
    assert 0.88 <= coverage <= 0.99


def test_bootstrap_is_deterministic_for_a_seed():
    x = np.random.default_rng(0).normal(size=20)
    assert bootstrap_mean(x, seed=3) == bootstrap_mean(x, seed=3)
    assert bootstrap_mean(x, seed=3).low != bootstrap_mean(x, seed=4).low


def test_bootstrap_edge_cases():
    assert bootstrap_mean([0.7] * 10).as_dict() == {"mean": 0.7, "ci95": [0.7, 0.7], "n": 10}
    empty = bootstrap_mean([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.low)
    one = bootstrap_mean([0.4])
    assert (one.mean, one.n) == (0.4, 1) and math.isnan(one.low) and math.isnan(one.high)
    assert one.fmt() == "0.40"


def test_paired_test_detects_a_built_in_difference():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.3, 0.8, size=50)
    a = b + 0.1 + rng.normal(0, 0.05, size=50)
    t = paired_test(a, b)
    assert t.p_value < 0.01 and t.significant() and t.n == 50
    assert t.difference.low < 0.1 < t.difference.high
    assert t.verdict("modular", "e2e").startswith("modular better (p")
    assert paired_test(b, a).verdict("modular", "e2e").startswith("e2e better (p")


def test_paired_test_rarely_rejects_a_null_difference():
    rng = np.random.default_rng(3)
    rejected = [paired_test(rng.normal(size=50), rng.normal(size=50), resamples=200).significant()
                for _ in range(200)]
    assert np.mean(rejected) < 0.10


def test_paired_test_edge_cases():
    with pytest.raises(ValueError, match="equal length"):
        paired_test([1.0, 2.0], [1.0])
    same = paired_test([1.0, 0.5, 1.0], [1.0, 0.5, 1.0])
    assert same.p_value == 1.0 and not same.significant()
    assert same.verdict("a", "b") == "no resolved difference (p=1)"
    one = paired_test([1.0], [0.0])
    assert math.isnan(one.p_value) and one.difference.mean == 1.0 and not one.significant()
    assert paired_test([], []).n == 0


def test_verdict_wording():
    d = bootstrap_mean([0.1, 0.2, 0.3])
    assert PairedTest(d, 0.003, "m", 3).verdict("a", "b") == "a better (p=0.003)"
    assert PairedTest(d, 0.41, "m", 3).verdict("a", "b") == "no resolved difference (p=0.41)"
    assert PairedTest(d, 0.0001, "m", 3).verdict("a", "b") == "a better (p<0.001)"


def test_seed_spread_on_known_numbers():
    s = seed_spread([0.7, 0.68, 0.75])
    assert s.mean == pytest.approx(0.71) and s.sd == pytest.approx(0.036056, abs=1e-6)
    assert (s.low, s.high, s.n) == (0.68, 0.75, 3)
    assert s.fmt() == "0.71 ± 0.04 (3 seeds)"
    one = seed_spread([0.5])
    assert math.isnan(one.sd) and one.fmt() == "0.50 (1 seed)"
    assert seed_spread([]).fmt() == "-"
