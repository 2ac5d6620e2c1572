"""Confidence intervals."""

import pytest

from steerbench.harness.intervals import estimate, mean, paired_difference, rate


def test_wilson_interval_for_rates():
    e = rate([1] * 9 + [0])
    assert e.mean == 0.9 and e.low == pytest.approx(0.596, abs=1e-3) and e.high == pytest.approx(0.982, abs=1e-3)


def test_t_interval_for_means():
    e = mean([1.0, 2.0, 3.0, 4.0])
    assert e.mean == 2.5 and e.low == pytest.approx(0.446, abs=1e-3) and e.high == pytest.approx(4.554, abs=1e-3)


def test_intervals_stay_in_the_metric_range():
    score = estimate("driving_score", [0.1, 0.95, 0.9])
    assert 0.0 <= score.low and score.high <= 1.0
    assert estimate("mean_speed_mps", [0.0, 0.0, 9.0]).low == 0.0
    assert estimate("env_reward", [-5.0, 0.0, 1.0]).low < -5.0


def test_paired_difference():
    d = paired_difference([0.9, 0.8, 0.7], [0.5, 0.5, 0.4])
    assert d.mean == pytest.approx(1.0 / 3) and d.low > 0
