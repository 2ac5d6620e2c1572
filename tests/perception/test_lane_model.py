"""The learned lane model: it fits lane labels, its metrics measure what they say, its checkpoints
round-trip and fail in one line, `train-lanes` writes what it promises, refuses a dataset without
lane labels, and resumes as an uninterrupted run trains. The command and odometry inputs:
test_lane_conditioning.py."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import torch

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.perception.lane_data import select_lane_frames
from steerbench.perception.lane_eval import lane_quality, losses, predict_arrays
from steerbench.perception.lane_model import (
    CHECKPOINT_FORMAT,
    LaneModelError,
    LaneNet,
    LaneNetConfig,
    LanePrediction,
    LearnedLanes,
    load_lane_model,
    parameter_count,
)
from steerbench.perception.lane_train import LaneTrainConfig, train_lanes
from steerbench.perception.training import save_checkpoint
from steerbench.sim.dataset import LANE_ARRAYS, LANE_LABELS_VERSION, DatasetIndex, chunk_path, write_chunk
from steerbench.sim.runner import EnvSettings

SCENARIO = "merge"  # the shortest full episodes (150 steps)
EXPERT = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")
S = tuple(float(v) for v in np.arange(-5.0, 60.1, 2.5))
FRAME = {"height": 64, "width": 128, "scaling": 1.75}
TINY = dict(channels=(8, 8, 16, 16), squeeze=8, hidden=32)  # 23,849 weights


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One merge episode per split (train, train-dev), fast simulation core."""
    root = tmp_path_factory.mktemp("lanes") / "data"
    for split in ("train", "train-dev"):
        collect(CollectConfig(teacher=EXPERT, scenarios=(SCENARIO,), split=split, episodes=1, out=root,
                              env=EnvSettings(fast=True), progress=False))
    return root


def tiny_config(data, logdir, **kw):
    opts = dict(data=str(data), logdir=str(logdir), frames=24, eval_frames=12, epochs=2, batch=8, lr=3e-3,
                patience=99, brightness=0.0, noise_sd=0.0, channels=TINY["channels"], hidden=TINY["hidden"],
                images=2, progress=False)
    opts.update(kw)
    return LaneTrainConfig(**opts)


def test_the_default_network_is_small():
    net = LaneNet(LaneNetConfig(s=S))
    assert 10_000 < parameter_count(net) < 200_000  # 140k: docs/perception.md "Learned lanes"
    out = net(torch.zeros(2, 64, 128, dtype=torch.uint8), torch.tensor([[38.0, 32.0]] * 2), 1.75)
    assert out["y"].shape == out["dx"].shape == out["exists"].shape == (2, 3, len(S))
    assert out["valid"].shape == out["width"].shape == (2, 3)


def test_a_tiny_model_overfits_a_tiny_set(data):
    """30-odd frames, 300 full-batch steps: the loss falls by a large factor, and the ego lane's
    lateral error 20 m ahead (p90) ends under 0.5 m, within a pixel (0.57 m at 1.75 px/m), the
    resolution the labels are drawn at, and under 60% of the untrained network's (which already
    guesses the ego's lane straight ahead, right for most of an expert's frames)."""
    d = select_lane_frames(data, "train", (SCENARIO,), 32, stride=4, strict=False)
    torch.manual_seed(0)
    net = LaneNet(LaneNetConfig(s=tuple(float(v) for v in d.s), **TINY))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, ego = torch.from_numpy(d.frames), torch.from_numpy(d.ego_px)
    s, target, valid, width = (torch.from_numpy(a) for a in (d.s, d.centres, d.valid, d.width))

    def quality():
        p = predict_arrays(net, d.frames, d.ego_px, 1.75, "cpu")
        return lane_quality(p["centres"], p["valid"] > 0, d.centres, d.valid, d.s)

    before = quality()
    first = last = None
    for _ in range(300):
        net.train()
        loss = losses(net(x, ego, 1.75), s, target, valid, width)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
        last = loss.item()
    after = quality()
    assert last < first / 4, (first, last)
    assert after["lateral_20m"]["p90"] < min(0.5, 0.6 * before["lateral_20m"]["p90"]), (before, after)
    assert after["lateral_10m"]["median"] < 0.1 and after["heading_deg"]["median"] < 1.0, after
    assert after["neighbour_valid_acc"] >= 0.9, after


def hand_made(n=5):
    """Straight lanes 4 m apart; the ego lane 0.2 m right of the ego; a left neighbour only."""
    s = np.asarray(S)
    c = np.stack([np.stack([s, np.full_like(s, 0.2 + 4.0 * (lane - 1))], -1) for lane in range(3)])
    c = np.repeat(c[None], n, 0)
    c[:, 2] = np.nan
    c[0, 1, -3:] = np.nan  # a lane that ends ahead: its missing samples are not counted
    valid = np.repeat(np.array([[True, True, False]]), n, 0)
    return c, valid, s


def test_metrics_of_a_perfect_and_of_a_shifted_predictor():
    true_c, valid, s = hand_made()
    perfect = lane_quality(np.nan_to_num(true_c), valid, true_c, valid, s)
    for d in ("5", "10", "20"):
        assert perfect[f"lateral_{d}m"] == {"median": 0.0, "p90": 0.0, "n": 5}
    assert perfect["heading_deg"]["median"] == 0.0 and perfect["neighbour_valid_acc"] == 1.0

    shifted = np.nan_to_num(true_c) + [0.0, 0.3]  # 0.3 m to the right, every lane, every sample
    wrong_left = valid.copy()
    wrong_left[:2, 0] = False  # 2 of 10 neighbour validities wrong
    q = lane_quality(shifted, wrong_left, true_c, valid, s)
    for d in ("5", "10", "20"):
        assert q[f"lateral_{d}m"]["median"] == pytest.approx(0.3, abs=1e-6)
        assert q[f"lateral_{d}m"]["p90"] == pytest.approx(0.3, abs=1e-6)
    assert q["heading_deg"]["p90"] == pytest.approx(0.0, abs=1e-6)
    assert q["neighbour_valid_acc"] == pytest.approx(0.8)

    turned = true_c.copy()  # the ego lane turned by 5 degrees about the ego
    a = np.radians(5.0)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    turned[:, 1] = (true_c[:, 1] - [0.0, 0.2]) @ rot + [0.0, 0.2]
    assert lane_quality(np.nan_to_num(turned), valid, true_c, valid, s)["heading_deg"]["median"] == \
        pytest.approx(5.0, abs=1e-4)


def test_a_prediction_as_a_lane_estimate():
    c, valid, s = hand_made(1)
    p = LanePrediction(s=s, centres=c[0], valid=valid[0], valid_prob=np.array([0.9, 0.99, 0.1]),
                       width=np.array([4.0, 4.0, np.nan]))
    e = p.estimate()
    assert e.valid and e.offset_m == pytest.approx(-0.2) and e.heading == pytest.approx(0.0, abs=1e-9)
    assert e.width_m == 4.0 and e.curvature == pytest.approx(0.0, abs=1e-9)
    assert [lane.offset for lane in e.lanes] == [0, -1]
    assert e.ahead_m == pytest.approx(s[-4])  # the ego lane's last existing sample


def test_an_estimate_stops_where_the_lane_turns_across_the_view():
    """A 15 m right turn (the racetrack's): y(x) holds up to where the lane is 45 degrees off the ego's heading."""
    s = np.asarray(S)
    ego = np.stack([15 * np.sin(s / 15), 15 * (1 - np.cos(s / 15))], -1)
    c = np.full((3, len(s), 2), np.nan)
    c[1] = ego
    p = LanePrediction(s=s, centres=c, valid=np.array([False, True, False]), valid_prob=np.array([0.0, 1.0, 0.0]),
                       width=np.array([np.nan, 4.0, np.nan]))
    e = p.estimate()
    # the chord from s = 12.5 to 15 m is 52 degrees off, the one before 43
    assert e.valid and e.ahead_m == pytest.approx(15 * np.sin(12.5 / 15))
    assert e.curvature > 0.03 and abs(e.offset_m) < 0.2 and abs(e.heading) < 0.05, e


def saved_network(path, commands=0, old=False, branched=False, **kw):
    """A tiny network saved as `train-lanes` saves it; `old`: its config without `commands` and
    `branched`, as every checkpoint from before the command input."""
    torch.manual_seed(1)
    net = LaneNet(LaneNetConfig(s=S, commands=commands, branched=branched, **TINY)).eval()
    config = net.config.as_dict()
    if old:
        del config["commands"], config["branched"], config["odometry"]
    save_checkpoint(path, {"kind": "lanes", "format": CHECKPOINT_FORMAT, "config": config,
                           "frame": FRAME, "model": net.state_dict(), "epoch": 1, **kw})
    return net


def test_checkpoint_round_trip(tmp_path, data):
    net = saved_network(tmp_path / "best.pt")
    frames = select_lane_frames(data, "train-dev", (SCENARIO,), 3, stride=10, strict=False).frames
    loaded = load_lane_model(tmp_path / "best.pt")
    direct = LearnedLanes(net, FRAME)
    for f in frames:
        a, b = loaded.predict(f), direct.predict(np.stack([f, f]))  # a single frame, or a stack's newest
        np.testing.assert_array_equal(a.centres, b.centres)
        np.testing.assert_array_equal(a.valid_prob, b.valid_prob)
        np.testing.assert_array_equal(a.width, b.width)
    assert isinstance(loaded.estimate(frames[0]).valid, bool)


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint\n" * 10)
    other = tmp_path / "other.pt"
    save_checkpoint(other, {"kind": "detector", "model": {}})
    bad_weights = tmp_path / "bad.pt"
    saved_network(bad_weights)
    blob = torch.load(bad_weights, weights_only=True)
    blob["model"] = {k: v[:1] if v.ndim else v for k, v in blob["model"].items()}
    save_checkpoint(bad_weights, blob)
    truncated = tmp_path / "truncated.pt"
    saved_network(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    cases = {tmp_path / "missing.pt": "no lane-model checkpoint", tmp_path: "is a directory", garbage: "not a readable",
             other: "not a lane-model checkpoint", bad_weights: "does not fit", truncated: "not a readable"}
    for path, words in cases.items():
        with pytest.raises(LaneModelError) as err:
            load_lane_model(path)
        assert words in str(err.value) and "\n" not in str(err.value), (path, str(err.value))


def test_train_lanes_writes_checkpoint_metrics_and_tensorboard(data, tmp_path):
    logdir = tmp_path / "run"
    argv = ["train-lanes", "--data", str(data), "--logdir", str(logdir), "--frames", "24", "--eval-frames", "12",
            "--epochs", "1", "--no-progress"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    text = out.getvalue()
    assert "| train-dev | 12 |" in text and f"| train-dev {SCENARIO} |" in text and "best.pt" in text
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.json", "config.json"):
        assert (logdir / name).is_file(), name
    metrics = json.loads((logdir / "metrics.json").read_text())
    assert list(metrics["splits"]) == ["train-dev"] and metrics["train_frames"] == 24  # no dev episodes here
    q = metrics["splits"]["train-dev"]
    assert {"lateral_5m", "lateral_10m", "lateral_20m", "heading_deg", "neighbour_valid_acc", "displaced"} <= set(q)
    assert q["displaced"]["lateral_10m"]["n"] == 24 and "ego off centre" in text  # both sides of 12 frames
    assert q["lateral_10m"]["n"] == 12 and list(q["by_scenario"]) == [SCENARIO]
    predictor = load_lane_model(metrics["checkpoint"])
    assert predictor.net.config.commands == 1  # merge has one command, follow
    assert predictor.predict(np.zeros((64, 128), np.uint8), command=0).centres.shape == (3, len(S), 2)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = acc.Tags()
    for part in ("total", "coords", "exists", "valid", "width"):
        assert f"losses/train/{part}" in tags["scalars"] and f"losses/train-dev/{part}" in tags["scalars"]
    assert "lanes/train-dev/best_lateral_10m_median" in tags["scalars"]
    assert "lanes/train-dev/lanes" in tags["images"]


def test_a_dataset_without_lane_labels_is_a_one_line_error(data, tmp_path, capsys):
    old = tmp_path / "old"
    index = DatasetIndex(old.mkdir() or old)
    (old / "manifest.json").write_bytes((data / "manifest.json").read_bytes())
    for row in DatasetIndex(data).rows:
        with np.load(data / row["path"]) as z:
            arrays = {k: z[k] for k in z.files if k not in LANE_ARRAYS}
        index.append(dict(row, sha256=write_chunk(chunk_path(old, row["scenario"], row["split"], row["index"]),
                                                  arrays)))
    capsys.readouterr()
    assert main(["train-lanes", "--data", str(old), "--logdir", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without lane labels" in err and "re-collect" in err, err


def test_episodes_with_older_lane_labels_are_a_one_line_error(data, tmp_path, capsys):
    old = tmp_path / "old"
    index = DatasetIndex(old.mkdir() or old)
    (old / "manifest.json").write_bytes((data / "manifest.json").read_bytes())
    for row in DatasetIndex(data).rows:  # as collected before the labels bridged the joins: no version
        target = chunk_path(old, row["scenario"], row["split"], row["index"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((data / row["path"]).read_bytes())
        index.append({k: v for k, v in row.items() if k != "lane_labels"})
    assert all(r["lane_labels"] == LANE_LABELS_VERSION for r in DatasetIndex(data).rows)
    capsys.readouterr()
    assert main(["train-lanes", "--data", str(old), "--logdir", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lane labels of version 1" in err and "re-collect" in err, err


def test_a_scenario_without_episodes_is_a_one_line_error(data, tmp_path, capsys):
    argv = ["train-lanes", "--data", str(data), "--logdir", str(tmp_path / "run"), "--scenarios", "highway,merge"]
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no highway/train episodes" in err, err


def test_a_dataset_without_train_dev_episodes_is_a_one_line_error(data, tmp_path, capsys):
    """Early stopping needs train-dev (dev is measured only when it is there)."""
    train_only = tmp_path / "data"
    shutil.copytree(data, train_only)
    rows = [r for r in DatasetIndex(data).rows if r["split"] == "train"]
    (train_only / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["train-lanes", "--data", str(train_only), "--logdir", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no train-dev frames" in err and "--split train-dev" in err, err


def test_resume_trains_as_an_uninterrupted_run(data, tmp_path):
    whole = train_lanes(tiny_config(data, tmp_path / "whole", epochs=2))
    train_lanes(tiny_config(data, tmp_path / "first", epochs=1))
    (tmp_path / "first").rename(tmp_path / "split")  # a run directory moved elsewhere resumes there
    resumed = train_lanes(tiny_config(data, tmp_path / "split", epochs=2))
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in whole["history"]]
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=True)["model"]
            for d in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is not retrained: the same command again changes no weight
    before = (tmp_path / "whole" / "checkpoints" / "last.pt").read_bytes()
    again = train_lanes(tiny_config(data, tmp_path / "whole", epochs=2))
    assert (tmp_path / "whole" / "checkpoints" / "last.pt").read_bytes() == before
    assert again["splits"] == whole["splits"]
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "whole", lr=1e-3))


def test_a_run_on_a_dataset_that_has_grown_is_refused(data, tmp_path):
    """Every train frame (no --frames): another train episode would be other data under the same settings."""
    grown = tmp_path / "data"
    shutil.copytree(data, grown)
    train_lanes(tiny_config(grown, tmp_path / "run", frames=None, epochs=1))
    collect(CollectConfig(teacher=EXPERT, scenarios=(SCENARIO,), episodes=2, out=grown, env=EnvSettings(fast=True),
                          progress=False))
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(grown, tmp_path / "run", frames=None, epochs=2))
