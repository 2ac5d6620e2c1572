"""`steerbench ceiling`: one oracle per row, gains that add up to the gap to the expert."""

import json

import pytest

from steerbench.cli import main
from steerbench.study.ceiling import CeilingConfig, ceiling_rows, run_ceiling, steps


def test_the_ladder_replaces_one_stage_at_a_time():
    labels = [s.label for s in steps(CeilingConfig(scenarios=("highway",)))]
    assert labels == ["pipeline", "true_detection", "true_tracks", "map_lanes", "expert"]
    opts = [dict(s.spec.options) for s in steps(CeilingConfig(scenarios=("highway",)))][:4]
    assert [o.get("detector") for o in opts] == ["classical", "ground_truth", "ground_truth", "ground_truth"]
    assert [o.get("tracker", "kalman") for o in opts] == ["kalman", "kalman", "ground_truth", "ground_truth"]
    assert [o["lanes"] for o in opts] == ["pixels", "pixels", "pixels", "map"]
    with_map = [s.label for s in steps(CeilingConfig(scenarios=("highway",), stages=(("lanes", "map"),)))]
    assert "map_lanes" not in with_map


def _rows(scores):
    return [{"agent": a, "scenario": "s", "index": i, "metrics": {"driving_score": v}}
            for a, vs in scores.items() for i, v in enumerate(vs)]


def test_gains_telescope_to_the_gap_on_known_scores():
    ladder = steps(CeilingConfig(scenarios=("s",)))
    scores = {"pipeline": [0.2, 0.4, 0.3], "true_detection": [0.5, 0.5, 0.5], "true_tracks": [0.5, 0.6, 0.55],
              "map_lanes": [0.7, 0.6, 0.65], "expert": [0.8, 0.8, 0.8]}
    table = ceiling_rows(_rows(scores), ladder, ("s",))
    gains = {r.label: r.gain.mean for r in table if r.gain}
    assert gains == pytest.approx({"true_detection": 0.2, "true_tracks": 0.05, "map_lanes": 0.1, "expert": 0.15})
    assert sum(r.share for r in table if r.share is not None) == pytest.approx(1.0)


def test_no_shares_of_a_gap_the_episodes_do_not_resolve():
    ladder = steps(CeilingConfig(scenarios=("s",)))
    scores = {"pipeline": [0.6, 0.8, 0.7], "true_detection": [0.5, 0.9, 0.7], "true_tracks": [0.6, 0.8, 0.7],
              "map_lanes": [0.7, 0.7, 0.7], "expert": [0.8, 0.6, 0.71]}
    table = ceiling_rows(_rows(scores), ladder, ("s",))
    assert all(r.share is None for r in table)


def test_a_tiny_ceiling_run(tmp_path):
    out = run_ceiling(CeilingConfig(scenarios=("merge",), episodes=1, logdir=tmp_path, progress=False))
    assert [r.label for r in out.rows] == ["pipeline", "true_detection", "true_tracks", "map_lanes", "expert"]
    assert "oracle replaces" in (tmp_path / "ceiling.md").read_text()
    agents = {json.loads(line)["agent"] for line in (tmp_path / "results.jsonl").read_text().splitlines()}
    assert len(agents) == 5


def test_learned_without_checkpoint_is_a_one_line_error(capsys):
    assert main(["ceiling", "--detector", "learned", "--scenarios", "merge"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
