"""Datasets: chunks round-trip, labels are clean, stacks rebuild, corruption is caught."""

import numpy as np
import pytest

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.sim.dataset import DatasetError, DatasetIndex, iter_episodes, load_episode, stack_frames
from steerbench.sim.env import SteerEnv

EXPERT = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    cfg = CollectConfig(teacher=EXPERT, scenarios=("merge",), episodes=3, out=root, noise_std=0.2,
                        noise_fraction=0.5, progress=False)
    return root, collect(cfg)


def test_manifest_counts_and_chunks(dataset):
    root, manifest = dataset
    rows = DatasetIndex(root).rows
    assert manifest["episodes"] == {"merge/train": 3}
    assert manifest["frames"]["merge/train"] == sum(r["steps"] for r in rows) > 0
    for ep in iter_episodes(root):
        t = len(ep.speed)
        assert ep.frames.shape == (t, 64, 128) and ep.frames.dtype == np.uint8
        assert ep.action.shape == ep.executed.shape == (t, 2)
        assert len(ep.box_step) > 0 and ep.boxes_px.shape[1:] == (4, 2) and ep.boxes_m.shape[1] == 5


def test_labels_stay_clean_while_noise_is_executed(dataset):
    root, _ = dataset
    rows = {r["index"]: r for r in DatasetIndex(root).rows}
    assert {r["noise_std"] for r in rows.values()} == {0.0, 0.2}  # with these seeds: some of each
    for ep in iter_episodes(root):
        steer_gap = np.abs(ep.executed[:, 1] - ep.action[:, 1])
        if rows[ep.index]["noise_std"]:
            assert steer_gap.mean() > 0.05
        else:
            assert steer_gap.max() < 1e-6


def test_stacks_rebuild_what_the_agent_saw(dataset):
    root, _ = dataset
    ep = next(iter_episodes(root))
    env = SteerEnv("merge", "train")
    obs, _ = env.reset(seed=ep.seed)
    for t in range(min(len(ep.speed), 12)):
        assert np.array_equal(obs["frames"], stack_frames(ep.frames, t, 4))
        assert obs["speed"][0] == pytest.approx(ep.speed[t], abs=1e-5)
        obs, *_ = env.step(ep.executed[t])
    env.close()


def test_boxes_sit_on_cars_in_the_frames(dataset):
    root, _ = dataset
    ep = next(iter_episodes(root))
    background = np.bincount(ep.frames[0].ravel()).argmax()  # the road's grey
    hits = []
    for t in range(0, len(ep.speed), 10):
        px, _ = ep.boxes_at(t)
        for box in px:
            u, v = box.mean(axis=0)
            if 1 <= u < 127 and 1 <= v < 63:
                hits.append(ep.frames[t][int(v), int(u)] != background)
    assert hits and np.mean(hits) > 0.9


def test_resume_and_corruption(tmp_path, capsys):
    argv = ["collect", "--scenarios", "merge", "--episodes", "1", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    assert main(argv[:4] + ["2"] + argv[5:]) == 0
    rows = DatasetIndex(tmp_path).rows
    assert sorted(r["index"] for r in rows) == [0, 1]
    chunk = tmp_path / rows[0]["path"]
    chunk.write_bytes(chunk.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="checksum"):
        load_episode(tmp_path, rows[0])
    capsys.readouterr()
    assert main(argv + ["--mode", "full"]) == 2
    assert "other settings" in capsys.readouterr().err
    (tmp_path / "index.jsonl").write_text("{broken\n")
    assert main(argv) == 2
    assert "corrupt" in capsys.readouterr().err
