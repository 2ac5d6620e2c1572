"""`steerbench diagnose`: Ng's gaps on known numbers, and a tiny real run."""

import pytest

from steerbench.agents.e2e_train import TrainConfig, train
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.study.diagnose import closed_loop, diagnosis_tables


def rows(agent, errors, start=0):
    return [{"agent": agent, "scenario": "s", "index": start + i,
             "metrics": {"driving_score": 1.0 - e, "success": 1.0 - (e > 0.5)}} for i, e in enumerate(errors)]


def test_gaps_on_known_errors():
    expert = [0.1, 0.15, 0.05, 0.1]
    per_split = {
        "train": rows("net", [0.3, 0.35, 0.25, 0.3]) + rows("expert", expert),
        "train-dev": rows("net", [0.6, 0.55, 0.65, 0.6]) + rows("expert", expert),
        "dev": rows("net", [0.7, 0.65, 0.75, 0.7]) + rows("expert", expert),
        "test": rows("net", [0.7, 0.75, 0.65, 0.7]) + rows("expert", expert),
    }
    diag = closed_loop(per_split, "net")
    gaps = {g: e.mean for g, e in diag.gaps["1 - driving score"].items()}
    assert gaps == pytest.approx(
        {"avoidable bias": 0.2, "variance": 0.3, "data mismatch": 0.1, "overfitting to dev": 0.0}
    )
    bias = diag.gaps["1 - driving score"]["avoidable bias"]
    assert bias.low == pytest.approx(0.2) and bias.high == pytest.approx(0.2)  # paired: the same episodes
    mismatch = diag.gaps["1 - driving score"]["data mismatch"]
    assert mismatch.low < 0.1 < mismatch.high  # Welch interval between two episode sets
    assert diag.largest == "variance"
    assert "more training data" in diagnosis_tables(diag)


def test_a_split_harder_for_everyone_is_not_data_mismatch():
    """Human-level error per distribution: the expert drives every split's episodes too, and the
    gaps are differences of agent - expert excesses, not of the agent's raw errors."""
    per_split = {
        "train": rows("net", [0.3, 0.32, 0.28, 0.3]) + rows("expert", [0.1, 0.12, 0.08, 0.1]),
        "train-dev": rows("net", [0.3, 0.28, 0.32, 0.3]) + rows("expert", [0.1, 0.08, 0.12, 0.1]),
        "dev": rows("net", [0.6, 0.62, 0.58, 0.6]) + rows("expert", [0.4, 0.42, 0.38, 0.4]),
        "test": rows("net", [0.6, 0.58, 0.62, 0.6]) + rows("expert", [0.4, 0.38, 0.42, 0.4]),
    }
    diag = closed_loop(per_split, "net")
    gaps = diag.gaps["1 - driving score"]
    assert gaps["data mismatch"].mean == pytest.approx(0.0, abs=1e-9)  # dev is harder for the expert too
    assert diag.errors["1 - driving score"]["dev"].expert.mean == pytest.approx(0.4)
    assert diag.errors["1 - driving score"]["dev"].excess.mean == pytest.approx(0.2)
    assert diag.largest == "avoidable bias"


def test_no_resolved_gap_is_said_with_the_episodes_to_resolve_it():
    noisy = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5]
    per_split = {split: rows("net", noisy) + rows("expert", noisy[::-1]) for split in ("train", "train-dev", "dev")}
    per_split["test"] = rows("net", [1.0, 1.0, 0.0, 1.0, 0.5, 1.0]) + rows("expert", noisy[::-1])
    diag = closed_loop(per_split, "net")
    gaps = diag.gaps["1 - driving score"]
    assert all(e.low <= 0 <= e.high for e in gaps.values())
    assert diag.largest == "" and diag.unresolved is not None
    assert diag.unresolved.gap == "overfitting to dev" and diag.unresolved.episodes_per_split > len(noisy)
    text = diagnosis_tables(diag)
    assert "no gap is resolved" in text and "overfitting to dev" in text and "get a bigger dev set" not in text


def test_a_tiny_diagnosis_of_a_trained_network(tmp_path, capsys):
    data = tmp_path / "data"
    collect(
        CollectConfig(
            teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"),
            scenarios=("merge",),
            episodes=2,
            out=data,
            progress=False,
        )
    )
    train(TrainConfig(data=str(data), logdir=str(tmp_path / "net"), size="S", epochs=1, progress=False))
    best = tmp_path / "net" / "checkpoints" / "best.pt"
    code = main(
        [
            "diagnose",
            "--agent",
            "net=e2e",
            "--agent-opt",
            f"net.checkpoint={best}",
            "--scenarios",
            "merge",
            "--episodes",
            "1",
            "--data",
            str(data),
            "--offline-frames",
            "50",
            "--logdir",
            str(tmp_path / "d"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for word in ("avoidable bias", "variance", "data mismatch", "overfitting to dev", "steering MAE", "agent - expert"):
        assert word in out
    assert "largest resolved gap" in out or "no gap is resolved" in out
    assert (tmp_path / "d" / "diagnosis.md").exists()


def test_the_expert_cannot_be_its_own_reference(capsys):
    assert main(["diagnose", "--agent", "expert", "--scenarios", "merge"]) == 2
    assert "another label" in capsys.readouterr().err
