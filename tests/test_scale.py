"""`steerbench scale`: one point per model and dataset size, trained on the same first N frames."""

import csv
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from steerbench.agents.e2e_data import ImitationDataset
from steerbench.agents.e2e_train import first_frames
from steerbench.agents.errors import TrainingError
from steerbench.models import Budget
from steerbench.scale import REFERENCES, Point, ScaleConfig, ScaleOutcome, findings, run_scale
from steerbench.stats import paired_test

SIZES = (40, 120)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    budget = Budget(scenarios=("merge",), train_episodes=1, heldout_episodes=1, e2e_epochs=1, detector_epochs=1,
                    detector_eval_frames=20, samples=120, progress=False)
    cfg = ScaleConfig(frames=SIZES, scenarios=("merge",), budget=budget, nets=("S",), episodes=2,
                      logdir=tmp / "run", progress=False)
    return run_scale(cfg), cfg


def test_one_point_per_model_per_size(scaled):
    out, _ = scaled
    assert sorted((p.model, p.frames) for p in out.points) == sorted(
        (m, n) for m in ("e2e-S", "modular-learned-map") for n in SIZES)
    assert all(p.cell.n == 2 for p in out.points)
    assert set(out.references) == set(REFERENCES)


def test_csv_figure_report_and_tensorboard(scaled):
    out, _ = scaled
    rows = list(csv.DictReader(open(out.run_dir / "scale.csv")))
    assert len(rows) == 2 * len(SIZES) + len(REFERENCES)
    assert {int(r["frames"]) for r in rows if r["frames"]} == set(SIZES)
    assert (out.run_dir / "figures" / "scaling.png").stat().st_size > 1000
    md = (out.run_dir / "scale.md").read_text()
    assert "N = 40" in md and "figures/scaling.png" in md and "e2e-S:" in md
    acc = EventAccumulator(str(out.run_dir / "tb" / "scale" / "e2e-S")).Reload()
    assert [e.step for e in acc.Scalars("scale/train/driving_score")] == list(SIZES)


def test_models_trained_on_the_first_n_frames(scaled):
    out, cfg = scaled
    models = out.run_dir / "models"
    for n in SIZES:
        assert (models / f"e2e-S-s0-n{n}" / "checkpoints" / "best.pt").exists()
        assert (models / f"detector-s0-n{n}" / "checkpoints" / "best.pt").exists()
    data = ImitationDataset(models / "data")
    train = np.flatnonzero([data.episodes[e].split == "train" for e, _ in data.index])
    first = first_frames(data, train, 40, ("merge",))
    assert len(first) == 40
    assert [tuple(data.index[i]) for i in first] == [(int(data.index[first[0], 0]), t) for t in range(40)]
    with pytest.raises(TrainingError, match="needed"):
        first_frames(data, train, 10**6, ("merge",))


def test_a_second_run_reuses_everything(scaled):
    out, cfg = scaled
    again = run_scale(cfg)
    assert all(not t.trained for t in again.timings)
    assert [p.cell.metrics["driving_score"].mean for p in again.points] == [
        p.cell.metrics["driving_score"].mean for p in out.points]


def _point(model, n, score, vs_previous=None, vs_modular=None):
    from steerbench.stats import mean
    from steerbench.study import Cell

    return Point(model, n, Cell(model, "overall", "train", 20, {"driving_score": mean([score] * 20)}, {}),
                 vs_previous, vs_modular)


def test_findings_follow_the_paired_tests():
    half = np.random.default_rng(0).normal(0, 0.02, 20)
    noise = np.concatenate([half, -half])  # mean exactly 0: "flat" neither above nor below
    up, flat, down = (paired_test(noise + shift, np.zeros(40)) for shift in (0.2, 0.0, -0.2))
    out = ScaleOutcome(Path("."), [
        _point("e2e-S", 1000, 0.3, None, down), _point("e2e-S", 3000, 0.6, up, flat),
        _point("e2e-M", 1000, 0.3, None, down), _point("e2e-M", 3000, 0.2, down, down),
        _point("e2e-L", 1000, 0.3, None, down), _point("e2e-L", 3000, 0.31, flat, down),
        _point("modular-learned-map", 1000, 0.7), _point("modular-learned-map", 3000, 0.7, flat)], {})
    text = dict(line[2:].split(": ", 1) for line in findings(out) if line.startswith("- e2e"))
    assert "first reaches the modular agent at N = 3000" in text["e2e-S"] and "not resolved apart" in text["e2e-S"]
    assert "still improving" in text["e2e-S"]
    assert "stays below the modular agent up to N = 3000" in text["e2e-M"] and "worse with more data" in text["e2e-M"]
    assert "no resolved change" in text["e2e-L"]
    assert any("variation between training seeds" in line for line in findings(out))
