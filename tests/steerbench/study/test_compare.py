"""`steerbench compare`: contestants trained when missing, reused when present, one report."""

import dataclasses
import json
import math

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentError, AgentSpec
from steerbench.cli import main
from steerbench.sim.dataset import DatasetIndex
from steerbench.study.compare import CompareConfig, run_compare
from steerbench.study.contestants import lineup, select, user_contestant
from steerbench.study.design import OVERALL, Entry, cell, modular_vs_e2e, pair
from steerbench.study.models import EVAL_INDEX, Budget, Models

SEEDS = (0, 1, 2)


def _config(tmp, **kw):
    names = ("expert", "modular-gt-map", "e2e-S")
    contestants = tuple(select(names)) + (
        user_contestant(AgentSpec("keeper", "steerbench.agents.reference:LaneKeeperAgent")),
    )
    budget = Budget(scenarios=("merge",), train_episodes=2, heldout_episodes=1, e2e_epochs=1, progress=False)
    return CompareConfig(
        contestants=contestants,
        scenarios=("merge",),
        budget=budget,
        episodes=2,
        train_seeds=SEEDS,
        logdir=tmp / "run",
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    return run_compare(_config(tmp)), tmp


def test_every_contestant_and_copy_is_evaluated_on_both_splits(compared):
    out, tmp = compared
    rows = out.data.rows
    labels = {r["agent"] for r in rows}
    assert labels == {"expert", "modular-gt-map", "keeper"} | {f"e2e-S-s{k}" for k in SEEDS}
    assert {(r["split"], r["index"]) for r in rows} == {(s, EVAL_INDEX + i) for s in ("train", "test") for i in (0, 1)}
    trained_on = {(split, i) for _, split, i in DatasetIndex(tmp / "run" / "models" / "data").keys()}
    assert trained_on and not trained_on & {(r["split"], r["index"]) for r in rows}  # never scored on its data
    e2e = next(e for e in out.data.entries if e.name == "e2e-S")
    assert e2e.seeds == SEEDS and e2e.inputs == "pixels"


def test_report_has_tables_figures_pairs_and_times(compared):
    out, _ = compared
    md = out.report.read_text()
    for needle in (
        "## train split",
        "## test split",
        "expert | privileged",
        "e2e-S | pixels",
        "keeper | privileged",
        "(3 seeds)",
        "Modular vs end-to-end",
        "### Primary contrasts (0,",
        "### Exploratory",
        "## Error analysis",
        "## Time",
    ):
        assert needle in md, needle
    figures = sorted(p.name for p in (out.run_dir / "figures").glob("*.png"))
    assert len(figures) == 6
    for name in figures:
        assert f"figures/{name}" in md
    parts = [t.part for t in out.timings]
    assert sum(p.startswith("train e2e-S") for p in parts) == 3
    assert any(p.startswith("evaluate test") for p in parts)


def test_pairs_cover_every_split_overall_and_per_scenario(compared):
    out, _ = compared
    doc = json.loads((out.run_dir / "compare.json").read_text())
    keys = {(p["modular"], p["e2e"], p["split"], p["scenario"]) for p in doc["pairs"]}
    assert keys == {("modular-gt-map", "e2e-S", s, sc) for s in ("train", "test") for sc in (OVERALL, "merge")}
    assert all(p["n"] == 2 for p in doc["pairs"])
    # ground-truth detection is privileged: a reference, so no primary contrast in this line-up
    assert all(p["family"] == "exploratory" and p["p_holm"] is None for p in doc["pairs"])
    assert doc["statistics"]["primary_contrasts"] == 0 and doc["statistics"]["correction"] == "holm"
    intervals = {c["contestant"]: c["interval"] for c in doc["cells"]}
    assert "training seeds" in intervals["e2e-S"] and intervals["expert"].startswith("episodes")
    assert "(1 vs 3)" in doc["pairs"][0]["method"]  # training seeds: modular-gt-map, e2e-S


def test_tensorboard_overlays_contestants_with_hparams_and_report(compared):
    out, _ = compared
    runs = sorted(p.name for p in (out.run_dir / "tb" / "study").iterdir())
    assert runs == sorted(["expert", "modular-gt-map", "e2e-S", "keeper"])
    first = EventAccumulator(str(out.run_dir / "tb" / "study" / "expert"), size_guidance={"images": 0}).Reload()
    tags = first.Tags()
    assert "study/train/driving_score" in tags["scalars"] and "study/overall/test/success" in tags["scalars"]
    assert any(t.startswith("study/figures/") for t in tags["images"])
    assert "report/text_summary" in tags["tensors"] and "custom_scalars__config__" in tags["tensors"]
    e2e = EventAccumulator(str(out.run_dir / "tb" / "study" / "e2e-S")).Reload()
    assert "_hparams_/experiment" in e2e.summary_metadata or any("hparams" in t for t in e2e.Tags()["tensors"])


def test_a_second_run_reuses_models_and_episodes(compared):
    out, tmp = compared
    again = run_compare(_config(tmp))
    assert all(not t.trained for t in again.timings), again.timings
    assert [r for r in again.data.rows] == [r for r in out.data.rows]


def test_unknown_contestant_and_clashing_labels_are_one_line_errors(capsys, tmp_path):
    with pytest.raises(AgentError, match="unknown contestant 'e2e-XL'"):
        select(["e2e-XL"])
    code = main(["compare", "--contestants", "expert", "--agent", "expert", "--logdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "expert" in err and len(err.strip().splitlines()) == 1


def test_default_lineup_covers_the_designs():
    names = set(lineup())
    assert {"expert", "e2e-S", "e2e-M", "e2e-L"} <= names
    assert {f"modular-{d}-{lanes}" for d in ("gt", "classical", "learned")
            for lanes in ("map", "pixels", "learned")} <= names


class StubModels:
    """Stands in for a models directory: where each model of each seed is."""

    def detector(self, seed):
        return f"detector-s{seed}.pt"

    def lanes(self, seed):
        return f"lanes-s{seed}.pt"


def test_a_contestant_of_two_models_gets_both_with_each_copys_seed():
    known = lineup()
    copies = known["modular-learned-learned"].instances(StubModels(), (0, 2))
    assert [dict(spec.options) for _, spec in copies] == [
        {"detector": "learned", "lanes": "learned", "checkpoint": f"detector-s{k}.pt",
         "lanes.checkpoint": f"lanes-s{k}.pt"} for k in (0, 2)]
    assert [spec.label for _, spec in copies] == ["modular-learned-learned-s0", "modular-learned-learned-s2"]
    (_, only), = known["modular-gt-learned"].instances(StubModels(), (1,))
    assert dict(only.options)["lanes.checkpoint"] == "lanes-s1.pt" and "checkpoint" not in dict(only.options)
    assert not known["modular-classical-pixels"].learned


# -- the study's arithmetic, on hand-made rows -------------------------------------------------
def _row(agent, index, score, scenario="merge", split="train"):
    metrics = {
        m: 0.0
        for m in (
            "success",
            "collision",
            "off_road",
            "route_completion",
            "mean_lateral_offset_m",
            "steering_smoothness",
            "mean_speed_mps",
        )
    }
    return {
        "agent": agent,
        "scenario": scenario,
        "split": split,
        "index": index,
        "metrics": {**metrics, "driving_score": score},
    }


def test_a_learned_contestant_is_the_mean_over_its_copies_with_their_spread():
    rows = [_row("n-s0", i, 0.2) for i in range(4)] + [_row("n-s1", i, 0.6) for i in range(4)]
    c = cell(rows, Entry("n", "e2e", "pixels", ("n-s0", "n-s1"), (0, 1)), OVERALL, "train")
    assert c.n == 4 and c.metrics["driving_score"].mean == pytest.approx(0.4)
    assert c.seeds["driving_score"].mean == pytest.approx(0.4)
    assert c.seeds["driving_score"].sd == pytest.approx(np.std([0.2, 0.6], ddof=1))


def test_pairs_use_only_episodes_both_ran_and_find_a_built_in_difference():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 30)
    rows = [_row("m", i, base[i] + 0.2) for i in range(30)] + [_row("e", i, base[i]) for i in range(25)]
    m, e = Entry("m", "modular", "pixels+map", ("m",)), Entry("e", "e2e", "pixels", ("e",))
    p = pair(rows, m, e, OVERALL, "train")
    assert p.test.n == 25 and p.test.difference.mean == pytest.approx(0.2)
    assert p.test.verdict("m", "e").startswith("m better")
    assert len(modular_vs_e2e(rows, [m, e], ["merge"], ["train"])) == 2


def test_a_model_two_contestants_share_is_timed_once(tmp_path):
    models = Models(tmp_path, Budget(scenarios=("merge",)))
    run = models.detector_dir(0)
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    (run / "finished.json").write_text('{"training_seconds": 5}')
    assert models.detector(0) == models.detector(0) == run / "checkpoints" / "best.pt"  # map and pixel lanes
    assert [(t.part, t.seconds, t.trained) for t in models.timings] == [("train detector seed 0", 5.0, False)]


def test_a_lane_budget_beyond_the_train_episodes_collects_more_as_the_detector_does(tmp_path):
    from steerbench.sim.dataset import DatasetIndex

    budget = Budget(scenarios=("merge",), train_episodes=1, heldout_episodes=1, lane_frames=150, lane_epochs=1,
                    lane_eval_frames=8, progress=False)  # one merge episode holds about 115 frames
    Models(tmp_path, budget).lanes(0)
    train = [r for r in DatasetIndex(tmp_path / "data").rows if r["split"] == "train"]
    assert len(train) >= 2 and sum(r["steps"] for r in train) >= 150


def test_the_lane_model_is_trained_once_per_seed_and_then_reused(tmp_path):
    from steerbench.perception.lane_model import load_lane_model

    budget = Budget(scenarios=("merge",), train_episodes=1, heldout_episodes=1, lane_frames=24, lane_epochs=1,
                    lane_eval_frames=8, progress=False)
    models = Models(tmp_path, budget)
    best = models.lanes(0)
    assert best == tmp_path / "lanes-s0" / "checkpoints" / "best.pt"
    assert load_lane_model(best).commands == 1  # merge has one command
    stamp = best.stat().st_mtime_ns
    assert models.lanes(0) == best and best.stat().st_mtime_ns == stamp  # found, not trained again
    assert [t.trained for t in models.timings if "lanes" in t.part] == [True]
    other = Models(tmp_path, dataclasses.replace(budget, lane_epochs=2))
    with pytest.raises(TrainingError, match="lanes-s0 was trained under another budget .epochs 1 -> 2"):
        other.lanes(0)  # never silently reused
    assert best.stat().st_mtime_ns == stamp


def test_a_lane_budget_with_dagger_rounds_uses_the_last_rounds_model(tmp_path):
    from steerbench.sim.dataset import DatasetIndex
    from steerbench.sim.episodes import DAGGER

    budget = Budget(scenarios=("merge",), train_episodes=1, heldout_episodes=1, lane_frames=24, lane_epochs=1,
                    lane_eval_frames=8, lane_dagger_rounds=1, lane_dagger_episodes=1, lane_dagger_critical=0.25,
                    lane_dagger_repeat=3, progress=False)
    best = Models(tmp_path, budget).lanes(0)
    assert best == tmp_path / "lanes-s0" / "dagger-1" / "checkpoints" / "best.pt" and best.exists()
    rows = DatasetIndex(tmp_path / "lanes-s0" / "data").rows
    rollouts = [r for r in rows if DAGGER.holds("train", r["index"])]
    assert [r["driver"] for r in rollouts] == ["lanes-student-0"]
    assert not any(DAGGER.holds("train", r["index"]) for r in DatasetIndex(tmp_path / "data").rows)
    chosen = json.loads((tmp_path / "lanes-s0" / "critical" / "round-1.json").read_text())
    steps = chosen["episodes"][0]["steps"]  # a quarter of the rollout's steps, each three times
    assert (chosen["critical"], chosen["repeat"]) == (0.25, 3)
    assert len(steps) == 3 * math.ceil(0.25 * rollouts[0]["steps"]) and len(set(steps)) == len(steps) // 3
    with pytest.raises(TrainingError, match="another budget"):  # other critical states: another model
        Models(tmp_path, dataclasses.replace(budget, lane_dagger_critical=0.5)).lanes(0)
