"""Datasets: chunks round-trip, labels are clean, stacks rebuild, corruption is caught."""

import numpy as np
import pytest

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.planning.lane_labels import EGO, LANE_S, LEFT, RIGHT
from steerbench.sim.dataset import (
    LANE_ARRAYS,
    DatasetError,
    DatasetIndex,
    chunk_path,
    iter_episodes,
    load_episode,
    stack_frames,
    write_chunk,
)
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


def test_chunks_hold_the_lane_labels(dataset):
    root, _ = dataset
    k, k0 = len(LANE_S), int(np.flatnonzero(LANE_S == 0)[0])
    ended = 0
    for ep in iter_episodes(root):
        t = len(ep.speed)
        assert ep.lane_s.dtype == np.float32 and np.array_equal(ep.lane_s, LANE_S)
        assert ep.lane_centres.shape == (t, 3, k, 2) and ep.lane_centres.dtype == np.float32
        assert ep.lane_valid.shape == (t, 3) and ep.lane_valid.dtype == bool
        assert ep.lane_width.shape == (t, 3) and ep.lane_width.dtype == np.float32
        # valid: the lane exists abreast of the ego; its width is NaN exactly where it does not
        assert np.array_equal(ep.lane_valid, np.isfinite(ep.lane_centres[:, :, k0, 0]))
        assert np.array_equal(ep.lane_valid, np.isfinite(ep.lane_width))
        assert np.array_equal(np.isnan(ep.lane_centres[..., 0]), np.isnan(ep.lane_centres[..., 1]))
        assert ep.lane_valid[:, EGO].all() and not ep.lane_valid[:, RIGHT].any()  # nothing right of the ramp
        # In the acceleration lane the main road's right lane is the left neighbour; the ego's
        # lane ends at the barrier ahead while that one goes on.
        beside = ep.lane_valid[:, LEFT]
        assert beside.any()
        ends = np.isnan(ep.lane_centres[:, EGO, -1, 0]) & np.isfinite(ep.lane_centres[:, LEFT, -1, 0])
        ended += int((ends & beside).sum())
    assert ended > 10


def test_a_dataset_without_lane_labels_still_loads_and_trains(dataset, tmp_path):
    """Datasets collected before the lane labels: the chunks lack them, the rest is unchanged."""
    from steerbench.agents.e2e_data import ImitationDataset
    from steerbench.perception.detector_data import select_frames

    root, _ = dataset
    old = DatasetIndex(tmp_path)
    (tmp_path / "manifest.json").write_bytes((root / "manifest.json").read_bytes())
    for row in DatasetIndex(root).rows:
        with np.load(root / row["path"]) as z:
            arrays = {key: z[key] for key in z.files if key not in LANE_ARRAYS}
        path = chunk_path(tmp_path, row["scenario"], row["split"], row["index"])
        old.append(dict(row, sha256=write_chunk(path, arrays)))
    ep = load_episode(tmp_path, old.rows[0])
    assert all(getattr(ep, name) is None for name in LANE_ARRAYS)
    assert stack_frames(ep.frames, 0, 4).shape == (4, 64, 128)
    frames, speed, command, target = ImitationDataset(tmp_path)[5]
    assert frames.shape == (4, 64, 128) and target.shape == (1,)
    assert len(select_frames(tmp_path, "train", ("merge",), 20).frames) == 20


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
