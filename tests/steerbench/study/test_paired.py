"""steerbench paired: A - B on the episodes both ran, copies grouped by training seed, one-line errors."""

import json

import numpy as np
import pytest

from steerbench.cli import main
from steerbench.study.paired import PairedError, Side, contestants, paired_rows, parse_side
from steerbench.study.stats import hierarchical_difference


def _run(path, scores: dict[str, dict[tuple[str, int], float]]):
    """A run directory whose results.jsonl holds `scores`: label -> {(scenario, index): driving score}."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "results.jsonl", "w") as f:
        for label, eps in scores.items():
            for (scenario, index), score in eps.items():
                f.write(json.dumps({"agent": label, "scenario": scenario, "split": "train", "index": index,
                                    "metrics": {"driving_score": score, "success": 1.0}}) + "\n")
    return path


def _episodes(rng, scenario, n=6, base=0.5):
    return {(scenario, 500000 + i): float(np.clip(base + rng.normal(0, 0.1), 0, 1)) for i in range(n)}


def test_the_difference_is_paired_on_common_episodes_with_both_sides_seeds(tmp_path):
    rng = np.random.default_rng(0)
    b_scores = {f"net-s{k}": {**_episodes(rng, "merge"), **_episodes(rng, "highway")} for k in range(2)}
    a_scores = {f"net-s{k}": {key: min(v + 0.1 + 0.01 * k, 1.0) for key, v in b_scores["net-s0"].items()}
                for k in range(3)}
    del a_scores["net-s2"][("merge", 500005)]  # one copy missed an episode: it is left out on both sides
    a, b = _run(tmp_path / "a", a_scores), _run(tmp_path / "b", b_scores)
    rows = {(r.scenario, r.split): r for r in paired_rows(Side(a), Side(b))}
    assert list(rows) == [("highway", "train"), ("merge", "train"), ("overall", "train")]  # the suite's order
    merge = rows[("merge", "train")]
    assert merge.test.n == 5 and merge.seeds == (3, 2)
    keys = [("merge", 500000 + i) for i in range(5)]
    ya = np.array([[a_scores[f"net-s{k}"][e] for e in keys] for k in range(3)])
    yb = np.array([[b_scores[f"net-s{k}"][e] for e in keys] for k in range(2)])
    expected = hierarchical_difference(ya, yb)
    assert merge.test.difference.mean == pytest.approx(expected.difference.mean)
    assert merge.test.difference.low == pytest.approx(expected.difference.low)
    assert merge.mean_a == pytest.approx(ya.mean()) and merge.mean_b == pytest.approx(yb.mean())
    assert rows[("overall", "train")].test.n == 11


def test_copies_group_by_seed_and_a_run_of_several_contestants_needs_a_name(tmp_path):
    rng = np.random.default_rng(1)
    run = _run(tmp_path / "r", {"e2e-M-n300-s0": _episodes(rng, "merge"), "e2e-M-n300-s1": _episodes(rng, "merge"),
                                "expert": _episodes(rng, "merge", base=0.9)})
    assert contestants([{"agent": a} for a in ("e2e-M-n300-s0", "e2e-M-n300-s1", "expert")]) == {
        "e2e-M-n300": ("e2e-M-n300-s0", "e2e-M-n300-s1"), "expert": ("expert",)}
    with pytest.raises(PairedError, match="e2e-M-n300, expert"):
        paired_rows(Side(run), Side(run, "expert"))
    (row,) = paired_rows(Side(run, "expert"), Side(run, "e2e-M-n300"))  # the same run, one scenario: no overall
    assert row.seeds == (1, 2) and row.test.difference.mean > 0.2
    assert parse_side(f"{run}:expert") == Side(run, "expert") and parse_side(str(run)) == Side(run)


@pytest.mark.parametrize("problem", ["missing", "corrupt", "disjoint", "unknown"])
def test_bad_sides_are_one_line_errors(problem, tmp_path, capsys):
    rng = np.random.default_rng(2)
    a = _run(tmp_path / "a", {"x": _episodes(rng, "merge")})
    b = _run(tmp_path / "b", {"x": _episodes(rng, "highway" if problem == "disjoint" else "merge")})
    if problem == "corrupt":
        (b / "results.jsonl").write_text("not json\n" + (b / "results.jsonl").read_text())
    side_b = {"missing": str(tmp_path / "none"), "unknown": f"{b}:y"}.get(problem, str(b))
    code = main(["paired", str(a), side_b])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_the_command_prints_the_table(tmp_path, capsys):
    rng = np.random.default_rng(3)
    a = _run(tmp_path / "a", {"x-s0": _episodes(rng, "merge"), "x-s1": _episodes(rng, "merge")})
    assert main(["paired", str(a), f"{a}:x", "--splits", "train"]) == 0
    out = capsys.readouterr().out
    assert "| merge | train | 6 | 2, 2 |" in out and "+0.000" in out


def test_an_unknown_metric_is_a_one_line_error(tmp_path, capsys):
    a = _run(tmp_path / "a", {"x": _episodes(np.random.default_rng(4), "merge")})
    assert main(["paired", str(a), str(a), "--metric", "speed_of_light"]) == 2
    assert "none of driving_score" in capsys.readouterr().err
