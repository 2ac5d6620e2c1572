"""Bootstrap intervals, paired Wilcoxon tests, the spread over training seeds, and the study's
contestants over training seeds x episodes with their declared primary contrasts."""

import math

import numpy as np
import pytest

from steerbench.harness.intervals import bootstrap_mean
from steerbench.study.design import OVERALL, Entry, cell, modular_vs_e2e, pair
from steerbench.study.report import pairs_section
from steerbench.study.stats import PairedTest, holm, paired_test, seed_spread


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


# -- contestants over training seeds x episodes (study/design.py) ----------------------------------
METRICS = ("success", "collision", "off_road", "route_completion", "mean_lateral_offset_m", "steering_smoothness",
           "mean_speed_mps")


def _row(agent, index, score, scenario="merge", split="train"):
    return {"agent": agent, "scenario": scenario, "split": split, "index": index,
            "metrics": {**{m: 0.0 for m in METRICS}, "driving_score": score}}


def _learned(name, seed_offsets, difficulty, split="train"):
    labels = tuple(f"{name}-s{k}" for k in range(len(seed_offsets)))
    rows = [_row(label, i, d + off, split=split) for label, off in zip(labels, seed_offsets)
            for i, d in enumerate(difficulty)]
    return Entry(name, "e2e", "pixels", labels, tuple(range(len(labels)))), rows


def test_a_learned_contestants_interval_includes_the_spread_of_its_seeds():
    difficulty = np.random.default_rng(0).uniform(0.3, 0.7, 20)
    e, rows = _learned("n", (-0.2, 0.0, 0.2), difficulty)
    c = cell(rows, e, OVERALL, "train")
    est = c.metrics["driving_score"]
    assert c.n == 20 and est.mean == pytest.approx(difficulty.mean()) and "training seeds" in c.interval
    over_episodes = bootstrap_mean(difficulty)  # the per-episode mean over seeds: the seed offsets cancel
    assert (est.high - est.low) > 3 * (over_episodes.high - over_episodes.low)
    assert 0.0 <= est.low and est.high <= 1.0  # clipped to the score's range
    one = cell(rows, Entry("n0", "e2e", "pixels", ("n-s0",), (0,)), OVERALL, "train")
    assert one.interval.startswith("episodes") and one.metrics["driving_score"] == bootstrap_mean(difficulty - 0.2)


def test_a_pair_with_a_wide_seed_spread_is_not_resolved_on_episodes_alone():
    difficulty = np.random.default_rng(1).uniform(0.3, 0.7, 30)
    e, rows = _learned("n", (-0.25, 0.05, 0.35), difficulty)
    rows += [_row("m", i, d + 0.1) for i, d in enumerate(difficulty)]  # 0.05 above the networks' mean
    m = Entry("m", "modular", "pixels", ("m",))
    p = pair(rows, m, e, OVERALL, "train")
    assert p.test.n == 30 and p.test.difference.mean == pytest.approx(0.05)
    assert not p.test.significant() and p.test.difference.low < 0 < p.test.difference.high
    assert paired_test(difficulty + 0.1, difficulty + 0.05).significant()  # what episodes-only Wilcoxon claimed


def test_primary_contrasts_come_from_the_line_up_and_share_one_holm_correction():
    rng = np.random.default_rng(2)
    entries, rows = [], []
    for name, inputs in (("modular-gt-map", "privileged"), ("modular-classical-pixels", "pixels"),
                         ("modular-learned-map", "pixels+map")):
        entries.append(Entry(name, "modular", inputs, (name,)))
        rows += [_row(name, i, rng.uniform(0.4, 0.9), split=s) for s in ("train", "test") for i in range(12)]
    for name in ("e2e-S", "e2e-M"):
        for s in ("train", "test"):
            e, r = _learned(name, rng.normal(0, 0.05, 3), rng.uniform(0.2, 0.6, 12), split=s)
            rows += r
        entries.append(e)
    pairs = modular_vs_e2e(rows, entries, ["merge"], ["train", "test"])
    primary = [p for p in pairs if p.test.primary]
    assert len(pairs) == 3 * 2 * 2 * 2 and len(primary) == 2 * 2 * 2
    assert {p.a for p in primary} == {"modular-classical-pixels", "modular-learned-map"}
    assert all(p.scenario == OVERALL for p in primary)
    assert [p.test.p_holm for p in primary] == pytest.approx(holm([p.test.p_value for p in primary]))
    assert all(math.isnan(p.test.p_holm) for p in pairs if not p.test.primary)
    md = "\n".join(pairs_section(pairs))
    assert "### Primary contrasts (8, Holm-corrected together)" in md and "### Exploratory" in md
    assert "Holm p" in md and "modular-gt-map" in md.split("### Exploratory")[1]


def test_a_difference_of_scores_stays_in_minus_one_to_one():
    e, rows = _learned("n", (-0.05, 0.0, 0.05), np.array([0.0, 0.1]))
    rows += [_row("m", i, 1.0) for i in range(2)]
    p = pair(rows, Entry("m", "modular", "pixels", ("m",)), e, OVERALL, "train")
    assert p.test.difference.mean == pytest.approx(0.95) and p.test.difference.high == 1.0


def test_p_values_of_overwhelming_or_rounding_error_levels_are_numbers():
    from steerbench.study.stats import Component, p_value

    # A difference of 300 standard errors: the t quantiles lose precision long before the root.
    p = p_value(0.3, [Component("training seeds", 5e-7, 2), Component("episodes", 5e-7, 10)])
    assert 0.0 <= p < 1e-5  # at most the t test's p with all the variance at the fewest degrees of freedom
    # Copies that drive identically leave a seed level of rounding error: it changes nothing.
    episodes = Component("episodes", 0.0076, 4)
    assert p_value(-0.39, [Component("training seeds", 1.5e-33, 2), episodes]) == pytest.approx(
        p_value(-0.39, [episodes]))
