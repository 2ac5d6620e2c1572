"""`steerbench diagnose`: Ng's gaps on known numbers, and a tiny real run."""

import pytest

from steerbench.agents.e2e_train import TrainConfig, train
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.collect import CollectConfig, collect
from steerbench.diagnose import closed_loop, diagnosis_tables


def rows(agent, errors, start=0):
    return [{"agent": agent, "scenario": "s", "index": start + i,
             "metrics": {"driving_score": 1.0 - e, "success": 1.0 - (e > 0.5)}} for i, e in enumerate(errors)]


def test_gaps_on_known_errors():
    per_split = {
        "train": rows("net", [0.3, 0.35, 0.25, 0.3]) + rows("expert", [0.1, 0.15, 0.05, 0.1]),
        "train-dev": rows("net", [0.6, 0.55, 0.65, 0.6]),
        "dev": rows("net", [0.7, 0.65, 0.75, 0.7]),
        "test": rows("net", [0.7, 0.75, 0.65, 0.7]),
    }
    diag = closed_loop(per_split, "net")
    gaps = {g: e.mean for g, e in diag.gaps["1 - driving score"].items()}
    assert gaps == pytest.approx({"avoidable bias": 0.2, "variance": 0.3, "data mismatch": 0.1, "overfitting to dev": 0.0})
    bias = diag.gaps["1 - driving score"]["avoidable bias"]
    assert bias.low == pytest.approx(0.2) and bias.high == pytest.approx(0.2)  # paired: the same episodes
    mismatch = diag.gaps["1 - driving score"]["data mismatch"]
    assert mismatch.low < 0.1 < mismatch.high  # Welch interval between two episode sets
    assert diag.largest == "variance"
    assert "more training data" in diagnosis_tables(diag)


def test_a_tiny_diagnosis_of_a_trained_network(tmp_path, capsys):
    data = tmp_path / "data"
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"), scenarios=("merge",),
                          episodes=2, out=data, progress=False))
    train(TrainConfig(data=str(data), logdir=str(tmp_path / "net"), size="S", epochs=1, progress=False))
    best = tmp_path / "net" / "checkpoints" / "best.pt"
    code = main(["diagnose", "--agent", "net=e2e", "--agent-opt", f"net.checkpoint={best}", "--scenarios", "merge",
                 "--episodes", "1", "--data", str(data), "--offline-frames", "50", "--logdir", str(tmp_path / "d"),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("avoidable bias", "variance", "data mismatch", "overfitting to dev", "steering MAE", "largest gap"):
        assert word in out
    assert (tmp_path / "d" / "diagnosis.md").exists()


def test_the_expert_cannot_be_its_own_reference(capsys):
    assert main(["diagnose", "--agent", "expert", "--scenarios", "merge"]) == 2
    assert "another label" in capsys.readouterr().err
