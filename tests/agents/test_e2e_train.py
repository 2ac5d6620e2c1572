"""train-e2e: deterministic, resumable, safe checkpoints; the e2e agent drives with them."""

from pathlib import Path

import pytest
import torch

from steerbench.agents.e2e_train import TrainConfig, load_checkpoint, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.collect import CollectConfig, collect


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
    assert straight["history"][-1]["train_l1"] < 0.2
    again = train(cfg(data, tmp_path / "b", epochs=2))
    assert again["history"] == straight["history"]
    first = train(cfg(data, tmp_path / "c", epochs=1))  # as if killed after one epoch
    resumed = train(cfg(data, tmp_path / "c", epochs=2))
    assert len(first["history"]) == 1 and resumed["history"] == straight["history"]
    for k, v in weights(tmp_path / "a").items():
        assert torch.equal(v, weights(tmp_path / "c")[k]), k


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
        assert main(argv + (["--scenarios", "merge", "--episodes", "1", "--logdir", str(tmp_path / "e")] if argv[0] == "eval" else [])) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    train(cfg(data, tmp_path / "x", epochs=1))
    with pytest.raises(TrainingError, match="another configuration"):
        train(TrainConfig(data=str(data), logdir=str(tmp_path / "x"), size="M", epochs=2, progress=False))
