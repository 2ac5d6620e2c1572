"""steerbench tune: a Ray Tune sweep whose table holds what each trial's own training measured,
and a second run that resumes every trial instead of training it again."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from steerbench.agents.e2e_train import train
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect

pytest.importorskip("ray.tune", reason="Ray Tune is not installed: pip install 'steerbench[ray]'")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune-data")
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"),
                          scenarios=("merge",), episodes=3, out=root, progress=False))
    return root


@pytest.fixture(scope="module", autouse=True)
def ray_shutdown():
    yield
    import ray

    ray.shutdown()


def _rows(logdir):
    with open(logdir / "tune.csv") as f:
        return list(csv.DictReader(f))


def test_sweep_reports_each_trials_training_and_resumes(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them (Tune runs trials elsewhere)
    (tmp_path / "data").symlink_to(data)
    argv = ["tune", "--data", "data", "--logdir", "sweep", "--sizes", "S", "--lrs", "1e-3,3e-2",
            "--batches", "32", "--epochs", "1", "--no-asha", "--no-progress"]
    assert main(argv) == 0
    tmp_path = tmp_path / "sweep"
    rows = _rows(tmp_path)
    assert sorted(float(r["lr"]) for r in rows) == [1e-3, 3e-2]
    assert all(r["epochs"] == "1" and not r["error"] for r in rows)
    best = [float(r["best_train_dev_l1"]) for r in rows]
    assert best == sorted(best) and all(math.isfinite(b) for b in best)  # ranked, best first
    from steerbench.study.tune import SweepConfig, Trial

    sweep = SweepConfig(data=data, logdir=tmp_path, epochs=1)
    for r in rows:
        trial = Trial("S", float(r["lr"]), 32, 0)
        lastpt = Path(sweep.train_config(trial).logdir) / "checkpoints" / "last.pt"
        state = train(sweep.train_config(trial))  # resumes: nothing left to train
        assert min(h["train_dev_l1"] for h in state["history"]) == pytest.approx(float(r["best_train_dev_l1"]))
        r["mtime"] = lastpt.stat().st_mtime_ns
    assert "rank" in (tmp_path / "tune.md").read_text() and "Best: `S-lr" in (tmp_path / "tune.md").read_text()
    _assert_hparams(tmp_path / "tb", rows)

    assert main(argv) == 0  # the same command again: every trial resumes at its end
    again = _rows(tmp_path)
    assert [r["best_train_dev_l1"] for r in again] == [r["best_train_dev_l1"] for r in rows]
    for r in rows:
        trial = Trial("S", float(r["lr"]), 32, 0)
        assert (Path(sweep.train_config(trial).logdir) / "checkpoints" / "last.pt").stat().st_mtime_ns == r["mtime"]
    _assert_hparams(tmp_path / "tb", again)  # rewritten, not appended: still one row per trial
    out = capsys.readouterr().out
    assert "best train-dev L1" in out and "tune.md" in out


def _assert_hparams(tb, rows):
    """Each trial has one HParams row in TensorBoard holding the best train-dev L1 of its table row."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from steerbench.study.tune import Trial

    assert sorted(p.name for p in tb.iterdir()) == sorted(Trial("S", float(r["lr"]), 32, 0).name for r in rows)
    for r in rows:
        run = tb / Trial("S", float(r["lr"]), 32, 0).name
        acc = EventAccumulator(str(run))
        acc.Reload()
        (event,) = acc.Scalars("hparam/best_train_dev_l1")
        assert event.value == pytest.approx(float(r["best_train_dev_l1"]), rel=1e-6)


def test_every_trial_failing_is_one_line_and_not_zero(data, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(data / "manifest.json", broken / "manifest.json")  # no index, no chunks
    code = main(["tune", "--data", str(broken), "--logdir", str(tmp_path / "t"), "--sizes", "S", "--lrs", "1e-3",
                 "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "every trial failed" in err and "is not a steerbench dataset" in err
    assert "cannot read dataset" in (tmp_path / "t" / "tune.md").read_text()


def test_missing_dataset_is_one_line(tmp_path, capsys):
    code = main(["tune", "--data", str(tmp_path / "nothing"), "--logdir", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and "no dataset at" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag, value", [("--lrs", "0.1,x"), ("--sizes", "XL"), ("--frames", "-5")])
def test_malformed_options_are_one_line(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--data", str(tmp_path), flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_a_step_budget_trains_each_trial_by_updates_as_scale_does(data, tmp_path):
    argv = ["tune", "--data", str(data), "--logdir", str(tmp_path), "--sizes", "S", "--lrs", "1e-3",
            "--batches", "8", "--steps", "12", "--eval-every", "4", "--schedule", "cosine", "--no-progress"]
    assert main(argv) == 0
    from steerbench.study.tune import SweepConfig, Trial

    trial = Trial("S", 1e-3, 8, 0)
    cfg = SweepConfig(data=data, logdir=tmp_path, steps=12, eval_every=4, schedule="cosine").train_config(trial)
    assert (cfg.steps, cfg.eval_every, cfg.schedule) == (12, 4, "cosine")
    settings = json.loads((Path(cfg.logdir) / "config.json").read_text())
    assert settings["train"]["steps"] == 12 and settings["step_plan"]["steps"] == 12
    (row,) = _rows(tmp_path)
    assert row["epochs"] == "3" and not row["error"]  # three measurement periods of 4 updates
    assert "a budget of 12 updates (cosine learning rate)" in (tmp_path / "tune.md").read_text()
