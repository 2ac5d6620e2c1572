"""The training-set composition (sim.composition) on synthetic index rows, no simulation: equal
shares, the DART share, frames spread over a pool of episodes, and the same frames for the same
N whatever the row order or the data beyond the pool. Every test checks a whole composition
(`assert_composition`), so none passes on "the first N frames"."""

import copy
import math
from collections import Counter

import numpy as np
import pytest

from steerbench.sim.composition import (
    Composition,
    CompositionError,
    Missing,
    Pick,
    compose,
    needs,
    shares,
    shortfall,
    summary,
)

SCENARIOS = ("highway", "merge", "roundabout", "intersection", "racetrack")
RULE = Composition()
SIZES = [300, 30_000]


def make_rows(episodes=300, start=0, seed=0, noise=0.5, scenarios=SCENARIOS):
    """Index rows of the train split: 40-200 steps, steering noise on a `noise` share, by a fixed rng."""
    rng = np.random.default_rng(seed)
    return [{"path": f"chunks/{s}/train/{i:06d}.npz", "scenario": s, "split": "train", "index": i,
             "seed": 10_000 + i, "steps": int(rng.integers(40, 201)),
             "noise_std": 0.1 if rng.uniform() < noise else 0.0}
            for s in scenarios for i in range(start, start + episodes)]


ROWS = make_rows()


def first_of_each_stratum(rows, k):
    """The first `k` noisy and `k` clean episodes of each scenario."""
    taken, out = Counter(), []
    for r in sorted(rows, key=lambda r: r["index"]):
        key = (r["scenario"], r["noise_std"] > 0)
        if taken[key] < k:
            taken[key] += 1
            out.append(r)
    return out


def assert_composition(picks, rows, n, scenarios=SCENARIOS, rule=RULE, stride=1):
    """What every composition guarantees, checked against the rows it came from."""
    by_key = {(r["scenario"], r["index"]): r for r in rows}
    assert len(picks) == n and len(set(picks)) == n  # n frames, none twice
    for p in picks:  # each an existing usable frame, with its episode's stratum
        row = by_key[(p.scenario, p.index)]
        assert 0 <= p.step < row["steps"] and p.step % stride == 0 and p.noisy == (row["noise_std"] > 0)
    per_scenario = Counter(p.scenario for p in picks)
    assert dict(per_scenario) == {s: k for s, k in shares(n, scenarios).items() if k}  # equal shares (+-1)
    assert max(per_scenario.values()) - min(per_scenario.values()) <= 1
    for (scenario, noisy), needed in needs(n, scenarios, rule).items():
        mine = [p for p in picks if p.scenario == scenario and p.noisy == noisy]
        dart = math.floor(per_scenario[scenario] * rule.dart_fraction + 0.5)  # round(share * dart_fraction)
        assert len(mine) == needed == (dart if noisy else per_scenario[scenario] - dart)
        if not needed:
            continue
        used = {p.index for p in mine}
        held = sum(math.ceil(by_key[(scenario, i)]["steps"] / stride) for i in used)
        available = sum(1 for r in rows if r["scenario"] == scenario and (r["noise_std"] > 0) == noisy)
        assert len(used) >= min(rule.min_episodes, available, needed)  # spread over episodes...
        assert held >= rule.pool_factor * needed  # ...that hold pool_factor times the frames taken
    for scenario in scenarios:
        assert len({p.index for p in picks if p.scenario == scenario}) >= min(rule.min_episodes, per_scenario[scenario])


@pytest.mark.parametrize("n", SIZES)
def test_equal_shares_of_distinct_existing_frames(n):
    picks = compose(ROWS, n, SCENARIOS)
    assert all(isinstance(p, Pick) for p in picks)
    assert_composition(picks, ROWS, n)
    assert picks == sorted(picks, key=lambda p: (SCENARIOS.index(p.scenario), p.index, p.step))


@pytest.mark.parametrize("n", SIZES)
def test_noisy_share_is_the_dart_fraction_in_every_scenario(n):
    picks = compose(ROWS, n, SCENARIOS)
    stats = summary(picks)
    for scenario, share in shares(n, SCENARIOS).items():
        assert stats["scenarios"][scenario]["noisy_frames"] == math.floor(share * RULE.dart_fraction + 0.5)
        assert abs(stats["scenarios"][scenario]["noisy_share"] - RULE.dart_fraction) <= 1 / share
    assert_composition(picks, ROWS, n)


@pytest.mark.parametrize("dart", [0.0, 0.25, 1.0])
def test_other_dart_fractions(dart):
    rule = Composition(dart_fraction=dart)
    picks = compose(ROWS, 1003, SCENARIOS, rule)
    assert sum(p.noisy for p in picks) == sum(needs(1003, SCENARIOS, rule)[(s, True)] for s in SCENARIOS)
    assert_composition(picks, ROWS, 1003, rule=rule)


@pytest.mark.parametrize("n", SIZES)
def test_each_scenario_spreads_over_a_pool_of_episodes(n):
    picks = compose(ROWS, n, SCENARIOS)
    stats = summary(picks)
    for scenario in SCENARIOS:  # at N = 300 each scenario's 60 frames come from 16 episodes, not one
        assert stats["scenarios"][scenario]["episodes"] >= 2 * RULE.min_episodes
        assert stats["scenarios"][scenario]["max_frames_per_episode"] <= 200 / RULE.pool_factor + 1
    assert_composition(picks, ROWS, n)


@pytest.mark.parametrize("stride", [3, 10])
def test_stride_takes_every_stride_th_step(stride):
    picks = compose(ROWS, 3000, SCENARIOS, stride=stride)
    assert_composition(picks, ROWS, 3000, stride=stride)


@pytest.mark.parametrize("n", SIZES)
def test_the_same_frames_whatever_the_row_order_or_the_data_beyond_the_pool(n):
    picks = compose(ROWS, n, SCENARIOS)
    shuffled = [ROWS[i] for i in np.random.default_rng(7).permutation(len(ROWS))]
    more = ROWS + make_rows(1000, start=300, seed=1)  # 1000 more episodes per scenario
    other = make_rows(5, scenarios=("exit",), seed=2)  # a scenario the composition does not use
    assert compose(shuffled, n, SCENARIOS) == picks
    assert compose(more, n, SCENARIOS) == picks
    assert compose(other + ROWS, n, SCENARIOS) == picks
    if n == 300:  # a study that collected only 30 episodes per scenario: its pools are complete
        small = [r for r in ROWS if r["index"] < 30]
        assert not shortfall(small, n, SCENARIOS)
        assert compose(small, n, SCENARIOS, full_pool=True) == picks
    assert_composition(picks, more, n)


def test_deterministic():
    picks = compose(ROWS, 3001, SCENARIOS)
    assert compose(copy.deepcopy(ROWS), 3001, SCENARIOS) == picks
    assert summary(compose(ROWS, 3001, SCENARIOS)) == summary(picks)
    assert_composition(picks, ROWS, 3001)


def test_summary_counts():
    picks = compose(ROWS, 300, SCENARIOS)
    stats = summary(picks)
    assert stats["frames"] == 300 and stats["noisy_frames"] == 150 and stats["noisy_share"] == 0.5
    assert stats["episodes"] == sum(s["episodes"] for s in stats["scenarios"].values())
    assert list(stats["scenarios"]) == list(SCENARIOS)
    for scenario, s in stats["scenarios"].items():
        mine = [p for p in picks if p.scenario == scenario]
        assert s["frames"] == 60 and s["episodes"] == len({p.index for p in mine})
        assert s["noisy_episodes"] == len({p.index for p in mine if p.noisy})
    assert_composition(picks, ROWS, 300)


def test_too_little_data_is_one_line_naming_the_stratum():
    rows = [r for r in ROWS if not (r["scenario"] == "merge" and r["noise_std"] > 0)]  # no noisy merge
    with pytest.raises(CompositionError) as err:
        compose(rows, 300, SCENARIOS)
    msg = str(err.value)
    assert "\n" not in msg and "merge" in msg and "noisy" in msg and "hold 0 usable frames" in msg
    assert "30 needed" in msg and "collect more merge train episodes" in msg
    assert shortfall(rows, 300, SCENARIOS, full_pool=False) == {("merge", True): Missing(30, 0)}
    picks = compose(ROWS, 300, SCENARIOS)  # the full data composes
    assert_composition(picks, ROWS, 300)


def test_full_pool_is_demanded_on_request():
    rows = first_of_each_stratum(ROWS, 2)  # enough frames for N = 300 (>= 80 each), too few episodes for a full pool
    assert not shortfall(rows, 300, SCENARIOS, full_pool=False)
    picks = compose(rows, 300, SCENARIOS)  # composes from all the episodes there are
    assert_composition(picks, rows, 300, rule=Composition(min_episodes=1, pool_factor=1.0))
    with pytest.raises(CompositionError, match="full pool .* needs 120 in at least 8"):
        compose(rows, 300, SCENARIOS, full_pool=True)


def test_shortfall_says_what_to_collect_until_the_frames_are_those_of_a_large_dataset():
    n, rows = 3000, [r for r in ROWS if r["index"] < 5]
    missing = shortfall(rows, n, SCENARIOS)
    for (scenario, noisy), needed in needs(n, SCENARIOS).items():  # 300 per stratum: a pool of 1200 frames
        mine = [r for r in rows if r["scenario"] == scenario and (r["noise_std"] > 0) == noisy]
        held = sum(r["steps"] for r in mine)
        assert missing[(scenario, noisy)] == Missing(max(0, 4 * needed - held), max(0, 8 - len(mine)))
        assert missing[(scenario, noisy)].episodes_for(120) >= math.ceil((4 * needed - held) / 120)
    have = {s: 5 for s in SCENARIOS}
    for _ in range(100):  # a caller's loop: collect more episodes of each short scenario (noise by seed)
        missing = shortfall(rows, n, SCENARIOS)
        if not missing:
            break
        for scenario in sorted({s for s, _ in missing}):
            more = max(m.episodes_for(120) for (s, _), m in missing.items() if s == scenario)
            start = have[scenario]
            rows += [r for r in ROWS if r["scenario"] == scenario and start <= r["index"] < start + more]
            have[scenario] += more
    assert not shortfall(rows, n, SCENARIOS) and max(have.values()) < 300
    picks = compose(rows, n, SCENARIOS, full_pool=True)
    assert picks == compose(ROWS, n, SCENARIOS)
    assert_composition(picks, rows, n)


@pytest.mark.parametrize("n", [0, -5])
def test_zero_or_negative_frames_is_an_error(n):
    with pytest.raises(CompositionError, match="positive integer"):
        compose(ROWS, n, SCENARIOS)
    with pytest.raises(CompositionError, match="positive integer"):
        shortfall(ROWS, n, SCENARIOS)


def test_bad_arguments_are_errors():
    with pytest.raises(CompositionError, match="dart_fraction"):
        Composition(dart_fraction=1.5)
    with pytest.raises(CompositionError, match="pool_factor"):
        Composition(pool_factor=0.5)
    with pytest.raises(CompositionError, match="min_episodes"):
        Composition(min_episodes=0)
    with pytest.raises(CompositionError, match="stride"):
        compose(ROWS, 300, SCENARIOS, stride=0)
    with pytest.raises(CompositionError, match="repeat"):
        compose(ROWS, 300, ("merge", "merge"))
    with pytest.raises(CompositionError, match="appears twice"):
        compose(ROWS + ROWS[:1], 300, SCENARIOS)
    with pytest.raises(CompositionError, match="mix splits"):
        compose(ROWS + [dict(ROWS[0], split="dev", index=9999)], 300, SCENARIOS)
    assert issubclass(CompositionError, ValueError)


def test_shares_live_in_sim_and_perception_reexports_them():
    from steerbench.perception import detector_data

    assert detector_data.shares is shares
    assert shares(7, ("a", "b", "c")) == {"a": 3, "b": 2, "c": 2}
    picks = compose(ROWS, 7, SCENARIOS[:3])
    assert [summary(picks)["scenarios"][s]["frames"] for s in SCENARIOS[:3]] == [3, 2, 2]
    assert_composition(picks, ROWS, 7, SCENARIOS[:3])
