"""train-e2e with a step budget: the schedule, early stopping in steps, resume, the CLI."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from steerbench.agents.e2e_schedule import period_order, plan
from steerbench.agents.e2e_train import TrainConfig, load_checkpoint, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"),
                          scenarios=("merge",), episodes=3, out=root, noise_std=0.2, progress=False))
    return root


def cfg(data, logdir, **kw):
    base = dict(data=str(data), logdir=str(logdir), size="S", batch=16, steps=12, eval_every=4, progress=False)
    return TrainConfig(**{**base, **kw})


def test_cosine_warms_up_then_decays_to_its_floor_and_constant_stays():
    p = plan(1000, 100, 0, 1e-3, "cosine", train_samples=5000, batch=64)
    lrs = [p.lr_at(k) for k in range(1000)]
    assert lrs[0] < lrs[19] == pytest.approx(1e-3)  # 2% warm-up
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))  # then never rises
    assert lrs[-1] == pytest.approx(0.05e-3, rel=0.01)
    flat = plan(1000, 100, 0, 1e-3, "constant", 5000, 64)
    assert {flat.lr_at(k) for k in (0, 500, 999)} == {1e-3}


def test_plan_defaults_and_the_last_period_is_short():
    p = plan(1050, 0, 0, 1e-3, "constant", train_samples=6400, batch=64)
    assert p.interval == 100  # one pass over the train set
    assert p.periods == 11 and p.steps_in(11) == 50
    assert sum(p.steps_in(k) for k in range(1, p.periods + 1)) == 1050
    assert p.patience == max(500, 1050 // 5) and p.patience_periods == 5
    assert plan(100, 0, 0, 1e-3, "constant", 10**6, 64).interval == 100  # never more than the budget
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        plan(100, 0, 0, 1e-3, "linear", 100, 8)


def test_period_order_is_whole_permutations():
    order = period_order(10, 25, torch.Generator().manual_seed(0))
    assert len(order) == 25
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))


def test_a_step_budget_runs_its_updates_and_records_them(data, tmp_path):
    out = train(cfg(data, tmp_path / "a", schedule="cosine", lr=2e-3))
    steps = [h["step"] for h in out["history"]]
    assert steps == [4, 8, 12]
    p = plan(12, 4, 0, 2e-3, "cosine", 1, 16)
    assert [h["lr"] for h in out["history"]] == pytest.approx([p.lr_at(s - 1) for s in steps])
    config = (tmp_path / "a" / "config.json").read_text()
    assert '"step_plan"' in config and '"interval": 4' in config


def test_patience_in_steps_stops_a_run_that_does_not_improve(data, tmp_path):
    # a learning rate this small leaves the train-dev loss where it is: no period after the first improves
    out = train(cfg(data, tmp_path / "flat", steps=40, eval_every=4, patience_steps=8, lr=1e-30))
    assert [h["step"] for h in out["history"]] == [4, 8, 12]


def test_an_interrupted_step_run_resumes_to_the_same_model(data, tmp_path):
    straight = train(cfg(data, tmp_path / "a", schedule="cosine"))

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg(data, tmp_path / "b", schedule="cosine"), on_epoch=stop_after_first)
    resumed = train(cfg(data, tmp_path / "b", schedule="cosine"))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight["history"]]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed["history"]] == strip
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(v, b[k]) for k, v in a.items())


def test_another_budget_in_the_same_directory_is_refused(data, tmp_path):
    train(cfg(data, tmp_path / "a"))
    with pytest.raises(TrainingError, match="another configuration"):
        train(cfg(data, tmp_path / "a", steps=24))


def test_cli_steps_and_bad_values(data, tmp_path, capsys):
    code = main(["train-e2e", "--data", str(data), "--logdir", str(tmp_path / "cli"), "--size", "S", "--batch", "16",
                 "--steps", "8", "--eval-every", "4", "--schedule", "cosine", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "step 4:" in out and "step 8:" in out
    assert math.isfinite(float(out.split("best train-dev L1 ")[1].split(";")[0]))
    for bad in (["--steps", "-1"], ["--schedule", "linear"], ["--eval-every", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(["train-e2e", "--data", str(data), "--logdir", str(tmp_path / "bad"), *bad])
        assert exc.value.code == 2
    assert not Path(tmp_path / "bad").exists()


def _weights(logdir):
    return load_checkpoint(Path(logdir) / "checkpoints" / "last.pt")["model"]


def test_viewpoint_augmentation_trains_deterministically_and_changes_the_model(data, tmp_path):
    on = train(cfg(data, tmp_path / "on", viewpoint=1.0))
    again = train(cfg(data, tmp_path / "again", viewpoint=1.0))
    train(cfg(data, tmp_path / "off"))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in on["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in again["history"]]
    a, b, c = _weights(tmp_path / "on"), _weights(tmp_path / "again"), _weights(tmp_path / "off")
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    assert not all(torch.equal(v, c[k]) for k, v in a.items())
    by_epoch = train(cfg(data, tmp_path / "epochs", steps=0, epochs=1, viewpoint=0.5))
    assert len(by_epoch["history"]) == 1


def test_a_mixed_batch_is_displaced_with_each_scenarios_geometry():
    from steerbench.agents.e2e_displace import Displacer
    from steerbench.agents.e2e_viewpoint import Viewpoint, WarpGeometry, augment

    view = Viewpoint(prob=1.0)
    near = WarpGeometry(64, 128, 1.75, 38.0, 32.0)
    centre = WarpGeometry(64, 128, 1.75, 64.0, 32.0)
    displacer = Displacer(view, (near, centre), np.array([0, 1, 0, 1, 1]))
    frames = torch.randint(0, 255, (4, 4, 64, 128), dtype=torch.uint8)
    speed, steer = torch.full((4,), 20.0), torch.tensor([0.1, -0.2, 0.0, 0.3])
    out, label = displacer(frames, speed, steer, np.array([0, 1, 2, 4]), torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    f0, l0 = augment(frames[[0, 2]], speed[[0, 2]], steer[[0, 2]], near, gen, view)
    f1, l1 = augment(frames[[1, 3]], speed[[1, 3]], steer[[1, 3]], centre, gen, view)
    assert torch.equal(out[[0, 2]], f0) and torch.equal(out[[1, 3]], f1)
    assert torch.allclose(label[[0, 2]], l0) and torch.allclose(label[[1, 3]], l1)
    wrong, _ = augment(frames[[1, 3]], speed[[1, 3]], steer[[1, 3]], near, torch.Generator().manual_seed(3), view)
    assert not torch.equal(wrong, f1)  # the geometry matters: a wrong one would be caught


def test_bad_viewpoint_values_are_usage_errors(data, tmp_path):
    for bad in (["--viewpoint", "1.5"], ["--viewpoint", "-0.1"], ["--viewpoint-recover", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["train-e2e", "--data", str(data), "--logdir", str(tmp_path / "bad"), *bad])
        assert exc.value.code == 2
