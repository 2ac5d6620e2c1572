"""train-e2e: deterministic, resumable, safe checkpoints; the e2e agent drives with them."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from steerbench.agents.e2e_train import TrainConfig, load_checkpoint, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bc")
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"),
                          scenarios=("merge",), episodes=3, out=root, noise_std=0.2, progress=False))
    return root


def cfg(data, logdir, epochs):
    return TrainConfig(data=str(data), logdir=str(logdir), size="S", epochs=epochs, batch=32, progress=False)


def weights(logdir):
    return load_checkpoint(Path(logdir) / "checkpoints" / "last.pt")["model"]


def test_same_seed_same_model_and_resume_loses_nothing(data, tmp_path):
    straight = train(cfg(data, tmp_path / "a", epochs=2))
    assert [h["epoch"] for h in straight["history"]] == [1, 2]
    assert straight["history"][-1]["train_l1"] < straight["history"][0]["train_l1"]  # the loop descends
    again = train(cfg(data, tmp_path / "b", epochs=2))
    assert again["history"] == straight["history"]
    first = train(cfg(data, tmp_path / "c", epochs=1))  # as if killed after one epoch
    (tmp_path / "c").rename(tmp_path / "moved")  # a run directory moved (or copied) elsewhere resumes there
    resumed = train(cfg(data, tmp_path / "moved", epochs=2))
    assert len(first["history"]) == 1 and resumed["history"] == straight["history"]
    for k, v in weights(tmp_path / "a").items():
        assert torch.equal(v, weights(tmp_path / "moved")[k]), k


def test_checkpoints_load_with_weights_only_and_drive(data, tmp_path, capsys):
    train(cfg(data, tmp_path / "run", epochs=1))
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    blob = torch.load(best, weights_only=True)
    assert blob["config"]["size"] == "S"
    code = main(["eval", "--agent", "e2e", "--agent-opt", f"e2e.checkpoint={best}", "--scenarios", "merge",
                 "--episodes", "1", "--logdir", str(tmp_path / "eval"), "--no-progress"])
    assert code == 0
    assert "e2e [pixels]" in capsys.readouterr().out


def test_bad_checkpoints_and_data_are_one_line_errors(data, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not a readable steerbench checkpoint"):
        load_checkpoint(bad)
    for argv in (["eval", "--agent", "e2e", "--agent-opt", f"e2e.checkpoint={bad}"],
                 ["eval", "--agent", "e2e", "--agent-opt", f"e2e.checkpoint={tmp_path / 'missing.pt'}"],
                 ["train-e2e", "--data", str(tmp_path / "nodata"), "--logdir", str(tmp_path / "t")]):
        eval_args = ["--scenarios", "merge", "--episodes", "1", "--logdir", str(tmp_path / "e")]
        assert main(argv + (eval_args if argv[0] == "eval" else [])) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    train(cfg(data, tmp_path / "x", epochs=1))
    with pytest.raises(TrainingError, match="another configuration"):
        train(TrainConfig(data=str(data), logdir=str(tmp_path / "x"), size="M", epochs=2, progress=False))


def test_tensorboard_has_curves_inputs_and_saliency(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(cfg(data, tmp_path / "tb", epochs=1))
    acc = EventAccumulator(str(tmp_path / "tb" / "tb"))
    acc.Reload()
    for tag in ("losses/train_l1", "losses/train_dev_l1", "metrics/train_dev_steering_mae", "charts/learning_rate"):
        assert tag in acc.Tags()["scalars"], tag
    assert {"inputs/frames", "saliency/steering"} <= set(acc.Tags()["images"])


def test_saliency_points_at_the_pixels_that_move_the_steering():
    from steerbench.agents.e2e_saliency import saliency
    from steerbench.agents.pilotnet import NetConfig, PilotNet

    torch.manual_seed(0)
    net = PilotNet(NetConfig(size="S", stack=4, channels=1, height=64, width=128, outputs=1)).eval()
    frames = torch.randint(60, 200, (1, 4, 64, 128), dtype=torch.uint8)
    speed, command = torch.tensor([20.0]), torch.tensor([0])
    sal = saliency(net, frames, speed, command)[0]
    order = np.argsort(sal.ravel())
    base = net(frames.float(), speed, command)[0, 0].item()

    def change(pixels):
        x = frames.float().clone()
        x[0, -1].view(-1)[torch.from_numpy(pixels)] += 20.0
        return abs(net(x, speed, command)[0, 0].item() - base)

    assert change(order[-200:].copy()) > 3 * change(order[:200].copy())


def test_a_run_from_before_a_new_option_still_resumes():
    """Options added later (at their defaults) must not make older runs "another configuration"."""
    import json

    from steerbench.agents.e2e_train import TrainConfig, _comparable, _same_run

    cfg = TrainConfig(data="d", logdir="l")
    old = json.loads(_comparable(cfg))
    for key in ("frames", "scenarios"):
        old.pop(key)
    assert _same_run(json.dumps(old), cfg)
    assert _same_run(json.dumps({**old, "logdir": "moved/elsewhere"}), cfg)  # recorded with its old directory
    assert not _same_run(json.dumps(old), TrainConfig(data="d", logdir="l", frames=100))
    assert not _same_run(json.dumps({**old, "lr": 0.5}), cfg)


def test_a_checkpoint_records_its_episodes_and_eval_on_them_is_flagged(data, tmp_path, capsys):
    import json

    train(cfg(data, tmp_path / "run", epochs=1))
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    seen = torch.load(best, weights_only=True)["episodes"]
    # 3 train episodes and no train-dev split: one whole episode is held out for early stopping
    assert seen == {"trained": {"train": [[1, 2]]}, "selected": {"train": [[0, 0]]}}
    args = ["eval", "--agent", "e2e", "--agent-opt", f"e2e.checkpoint={best}", "--scenarios", "merge",
            "--episodes", "2", "--no-progress"]
    assert main([*args, "--first-episode", "0", "--logdir", str(tmp_path / "own")]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: agent 'e2e' is evaluated on 2 train episode(s) its checkpoint {best} was trained or selected on "
        "(indices 0-1); these scores are training scores (held-out episodes start at --first-episode 500000)"]
    invocation = json.loads((tmp_path / "own" / "config.json").read_text())["invocations"][-1]
    assert invocation["evaluated_on_own_data"] == [
        {"agent": "e2e", "checkpoint": str(best), "split": "train", "episodes": 2, "first": 0, "last": 1}]
    assert main([*args, "--logdir", str(tmp_path / "held")]) == 0  # the default: the evaluation range
    assert "warning:" not in capsys.readouterr().err
    assert "evaluated_on_own_data" not in json.loads((tmp_path / "held" / "config.json").read_text())["invocations"][-1]


def test_channels_last_resumes_as_uninterrupted_loads_anywhere_and_is_another_configuration(data, tmp_path):
    from steerbench.agents.pilotnet import NetConfig, PilotNet

    def laid_out(logdir, epochs):
        return dataclasses.replace(cfg(data, logdir, epochs), channels_last=True)

    whole = train(laid_out(tmp_path / "whole", 2))
    train(laid_out(tmp_path / "split", 1))
    resumed = train(laid_out(tmp_path / "split", 2))
    assert resumed["history"] == whole["history"]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["trunk.0.weight"].is_contiguous(memory_format=torch.channels_last)
    # best.pt loads into a network in the default layout, which computes the same steering
    blob = torch.load(tmp_path / "whole" / "checkpoints" / "best.pt", weights_only=True)
    plain, laid = PilotNet(NetConfig(**blob["config"])), PilotNet(NetConfig(**blob["config"]))
    plain.load_state_dict(blob["model"])
    laid = laid.to(memory_format=torch.channels_last)
    laid.load_state_dict(blob["model"])
    frames = torch.randint(0, 256, (2, 4, blob["config"]["height"], blob["config"]["width"]), dtype=torch.uint8)
    args = (frames, torch.tensor([20.0, 25.0]), torch.tensor([0, 1]))
    plain.eval(), laid.eval()
    assert torch.allclose(plain(*args), laid(*args), atol=1e-5)
    with pytest.raises(TrainingError, match="another configuration"):  # rounding differs: another run
        train(cfg(data, tmp_path / "whole", epochs=3))
