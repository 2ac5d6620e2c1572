"""`steerbench scale`: one point per model and dataset size, trained on the same first N frames."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from steerbench.agents.e2e_data import ImitationDataset
from steerbench.agents.e2e_train import first_frames
from steerbench.agents.errors import TrainingError
from steerbench.sim.composition import Composition
from steerbench.sim.dataset import DatasetIndex
from steerbench.study.models import Budget, Models, settings
from steerbench.study.scale import REFERENCES, Point, ScaleConfig, ScaleOutcome, findings, run_scale
from steerbench.study.stats import paired_test

SIZES = (40, 120)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    budget = Budget(scenarios=("merge",), train_episodes=1, heldout_episodes=1, e2e_epochs=1, detector_epochs=1,
                    detector_eval_frames=20, lane_epochs=1, lane_eval_frames=20, samples=120, passes=2, min_steps=4,
                    composition=Composition(min_episodes=2, pool_factor=1.0), dagger_rounds=1, dagger_episodes=1,
                    progress=False)
    cfg = ScaleConfig(frames=SIZES, scenarios=("merge",), budget=budget, nets=("S",), dagger=("S",), episodes=2,
                      logdir=tmp / "run", progress=False)
    return run_scale(cfg), cfg


def test_one_point_per_model_per_size(scaled):
    out, _ = scaled
    assert sorted((p.model, p.frames) for p in out.points) == sorted(
        (m, n) for m in ("e2e-S", "e2e-S-dagger", "modular-learned-map", "modular-learned-learned") for n in SIZES)
    assert all(p.cell.n == 2 for p in out.points)
    assert set(out.references) == set(REFERENCES)


def test_csv_figure_report_and_tensorboard(scaled):
    out, _ = scaled
    rows = list(csv.DictReader(open(out.run_dir / "scale.csv")))
    assert len(rows) == 4 * len(SIZES) + len(REFERENCES)
    assert {int(r["frames"]) for r in rows if r["frames"]} == set(SIZES)
    assert (out.run_dir / "figures" / "scaling.png").stat().st_size > 1000
    md = (out.run_dir / "scale.md").read_text()
    assert "N = 40" in md and "figures/scaling.png" in md and "e2e-S:" in md
    acc = EventAccumulator(str(out.run_dir / "tb" / "scale" / "e2e-S")).Reload()
    assert [e.step for e in acc.Scalars("scale/train/driving_score")] == list(SIZES)


def test_models_trained_on_the_first_n_frames(scaled):
    out, cfg = scaled
    models = out.run_dir / "models"
    for n in SIZES:  # named by N and the budget's identity
        assert len(list(models.glob(f"e2e-S-s0-n{n}-????????/checkpoints/best.pt"))) == 1
        assert len(list(models.glob(f"detector-s0-n{n}-????????/checkpoints/best.pt"))) == 1
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
    from steerbench.harness.intervals import mean
    from steerbench.study.design import Cell

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
    assert "first reaches the modular agent with map lanes at N = 3000" in text["e2e-S"]
    assert "not resolved apart" in text["e2e-S"] and "still improving" in text["e2e-S"]
    assert "no crossing with the modular agent with map lanes up to N = 3000" in text["e2e-M"]
    assert "worse with more data" in text["e2e-M"]
    # the bound comes with the gain per decade: the last step's paired difference over log10(3000 / 1000)
    assert f"gain per decade of data from N = 1000 to 3000 is {-0.2 / np.log10(3):+.2f}" in text["e2e-M"]
    assert "no resolved change" in text["e2e-L"]
    assert all("pixels-only" not in t for t in text.values())  # no such curve here
    assert any("variation between training seeds" in line for line in findings(out))


def test_findings_name_the_pixels_only_curve_too():
    half = np.random.default_rng(1).normal(0, 0.02, 20)
    below, above = (paired_test(np.concatenate([half, -half]) + d, np.zeros(40)) for d in (-0.2, 0.2))
    points = [Point("e2e-M", 1000, _point("e2e-M", 1000, 0.3).cell, None, below, above),
              Point("e2e-M", 3000, _point("e2e-M", 3000, 0.4).cell, above, below, above)]
    text = findings(ScaleOutcome(Path("."), points, {}))[0]
    assert "no crossing with the modular agent with map lanes up to N = 3000" in text
    assert "first reaches the pixels-only modular agent at N = 1000" in text and "resolved above it" in text


def test_primary_contrasts_are_each_gap_to_the_modular_agent_and_each_curves_last_step():
    from steerbench.study.scale import declare_primary
    from steerbench.study.stats import holm

    rng = np.random.default_rng(4)
    t = lambda: paired_test(rng.normal(0.05, 0.2, 30), np.zeros(30))  # noqa: E731
    points = [_point("e2e-S", n, 0.3, t() if n > 1000 else None, t()) for n in (1000, 3000, 10000)]
    points += [_point("modular-learned-map", n, 0.7, t() if n > 1000 else None) for n in (1000, 3000, 10000)]
    marked = declare_primary(points)
    primary = [(p.model, p.frames, kind) for p in marked for kind, test in
               (("gap", p.vs_modular), ("step", p.vs_previous)) if test is not None and test.primary]
    assert sorted(primary) == sorted([("e2e-S", n, "gap") for n in (1000, 3000, 10000)]
                                     + [("e2e-S", 10000, "step"), ("modular-learned-map", 10000, "step")])
    assert not marked[1].vs_previous.primary  # an earlier step of the curve: exploratory
    tests = [p.vs_modular for p in marked[:3]] + [marked[2].vs_previous, marked[5].vs_previous]
    raw = [p.vs_modular for p in points[:3]] + [points[2].vs_previous, points[5].vs_previous]
    assert [x.p_holm for x in tests] == pytest.approx(holm([x.p_value for x in raw]))
    text = findings(ScaleOutcome(Path("."), marked, {}))
    assert any(line.startswith("- modular-learned-map: ") for line in text)
    assert any("5 primary contrasts" in line for line in text) and any("Holm" in line for line in text)


def test_scale_md_shows_each_networks_updates(scaled):
    out, cfg = scaled
    md = (out.run_dir / "scale.md").read_text()
    assert "## Training" in md and "steps run" in md
    rows = {(t.model, t.frames): t for t in out.training}
    assert set(rows) == {(m, n) for m in ("e2e-S", "e2e-S-dagger") for n in SIZES}
    for n in SIZES:
        budget = dataclasses.replace(cfg.budget, frames=n).e2e_steps()
        assert rows[("e2e-S", n)].budget == budget and 0 < rows[("e2e-S", n)].steps <= budget
        assert rows[("e2e-S", n)].passes == pytest.approx(rows[("e2e-S", n)].steps * 64 / n, rel=0.2)


def test_the_step_budget_never_shrinks_with_n_and_is_part_of_the_models_identity(tmp_path):
    b = Budget(scenarios=("merge",), passes=20, min_steps=2000)
    steps = [dataclasses.replace(b, frames=n).e2e_steps() for n in (300, 1000, 3000, 10000, 30000, 100000)]
    assert steps == sorted(steps) and steps[0] == 2000 and steps[-1] == 31250
    root = tmp_path / "models"
    same = Models(root, dataclasses.replace(b, frames=30000)).e2e_dir("M", 0)
    assert same == Models(root, dataclasses.replace(b, frames=30000)).e2e_dir("M", 0)
    for other in (dict(passes=30), dict(min_steps=30000), dict(lrs=(("M", 3e-4),)), dict(viewpoint=0.5),
                  dict(composition=Composition(dart_fraction=0.25)), dict(schedule="constant"),
                  dict(channels_last=True)):
        assert Models(root, dataclasses.replace(b, frames=30000, **other)).e2e_dir("M", 0) != same, other
    # what does not change the training does not change the model: another network's rate, or a
    # larger `passes` where the least budget still applies
    assert Models(root, dataclasses.replace(b, frames=30000, lrs=(("S", 3e-4),))).e2e_dir("M", 0) == same
    small = Models(root, dataclasses.replace(b, frames=300)).e2e_dir("M", 0)
    assert Models(root, dataclasses.replace(b, frames=300, passes=30)).e2e_dir("M", 0) == small
    lanes = Models(root, dataclasses.replace(b, frames=30000)).lanes_dir(0)
    shown = Models(root, dataclasses.replace(b, frames=30000, lane_viewpoint=0.25))
    assert shown.lanes_dir(0) != lanes and shown.lanes_config(0).viewpoint == 0.25
    assert Models(root, b).lanes_config(0).viewpoint == 0.5  # the default: displaced views on
    layouts = Models(root, dataclasses.replace(b, frames=30000, lane_extra_data=("runs/oval",)))
    assert layouts.lanes_dir(0) != lanes and layouts.lanes_config(0).extra_data == ("runs/oval",)
    assert "extra_data" not in settings(Models(root, b).lanes_config(0))
    named = Models(root, dataclasses.replace(b, frames=30000, lane_named_commands=True))
    assert named.lanes_dir(0) != lanes and named.lanes_config(0).named_commands
    assert "named_commands" not in settings(Models(root, b).lanes_config(0))
    # a setting added later leaves the models trained before it, at its default, with their names
    assert "channels_last" not in settings(Models(root, b).e2e_config("M", 0))
    assert Models(root, dataclasses.replace(b, channels_last=True)).e2e_config("M", 0).channels_last


def test_another_budget_retrains_and_a_new_n_extends_without_redoing(scaled):
    out, cfg = scaled
    # another budget is another model: trained anew into the same models directory (its results go
    # to another run directory, which refuses to mix two models under one label)
    grown = dataclasses.replace(cfg, frames=(SIZES[0],), nets=("S",), dagger=(), detector=False, pixels=False,
                                budget=dataclasses.replace(cfg.budget, min_steps=6), logdir=out.run_dir.parent / "b6",
                                models=out.run_dir / "models")
    again = run_scale(grown)
    assert [t.trained for t in again.timings if t.part.startswith("train e2e")] == [True]
    extended = run_scale(dataclasses.replace(cfg, frames=(*SIZES, 160)))
    fresh = {t.part for t in extended.timings if t.trained and not t.part.startswith(("evaluate", "collect"))}
    assert fresh and all("N = 160" in part for part in fresh)


def test_each_n_has_the_composition_not_the_first_frames(scaled):
    out, cfg = scaled
    from steerbench.agents.e2e_train import composed_frames

    data = ImitationDataset(out.run_dir / "models" / "data")
    train = np.flatnonzero([data.episodes[e].split == "train" for e, _ in data.index])
    picked = composed_frames(data, train, 120, ("merge",), cfg.budget.composition)
    episodes = data.index[picked, 0]
    noise = {r["index"]: r["noise_std"] > 0 for r in DatasetIndex(data.root).rows if r["split"] == "train"}
    noisy = np.mean([noise[data.episodes[e].index] for e in episodes])
    assert len(picked) == 120 and noisy == pytest.approx(0.5, abs=0.01)
    assert len(np.unique(episodes)) >= 2 * cfg.budget.composition.min_episodes


def test_every_curve_trains_on_the_same_n_frames(scaled):
    from steerbench.agents.e2e_train import composed_frames
    from steerbench.perception.detector_data import select_frames
    from steerbench.perception.lane_data import select_lane_frames

    out, cfg = scaled
    root, rule = out.run_dir / "models" / "data", cfg.budget.composition
    data = ImitationDataset(root)
    train = np.flatnonzero([data.episodes[e].split == "train" for e, _ in data.index])
    e2e = np.stack([data.episodes[e].frames[t] for e, t in data.index[composed_frames(data, train, 120, ("merge",),
                                                                                       rule)]])
    detector = select_frames(root, "train", ("merge",), 120, composition=rule)
    lanes = select_lane_frames(root, "train", ("merge",), 120, composition=rule)
    assert np.array_equal(detector.frames, e2e) and np.array_equal(lanes.frames, e2e)
    first = select_frames(root, "train", ("merge",), 120)
    assert not np.array_equal(first.frames, e2e)  # the old rule takes other frames


def test_scale_trains_each_size_at_its_swept_rate_unless_told_otherwise():
    from steerbench.cli.study import SCALE_LRS, scale_rates

    assert dict(scale_rates(())) == dict(SCALE_LRS) and len(set(dict(SCALE_LRS).values())) == 3
    given = dict(scale_rates((("M", 1e-3),)))
    assert given == {**dict(SCALE_LRS), "M": 1e-3}  # the other sizes keep their rates
    budget = Budget(scenarios=("merge",), frames=3000, passes=20, lrs=scale_rates(()))
    assert [Models(Path("m"), budget).e2e_config(size, 0).lr for size in "SML"] == [6e-3, 3e-3, 2e-3]
