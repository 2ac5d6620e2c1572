"""The learned detector: it fits labelled frames, its checkpoints round-trip and fail in one line,
training is deterministic and resumable, and `train-detector` writes what it promises."""

import contextlib
import io
import json
import pickle
from collections import namedtuple

import numpy as np
import pytest
import torch

from steerbench.cli import main
from steerbench.perception.detector_data import select_frames
from steerbench.perception.learned import DetectorError, LearnedDetector, load_detector_checkpoint
from steerbench.perception.learned_train import DetectorTrainConfig, evaluate_detector, train_detector
from steerbench.perception.metrics import quality
from steerbench.perception.types import FrameGeometry

SCENARIO = "merge"  # the shortest full episodes (150 steps): one per split keeps this file fast


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    """One `train-detector` run on a tiny budget: 150 frames of one merge episode, 3 epochs."""
    logdir = tmp_path_factory.mktemp("detector") / "run"
    argv = ["train-detector", "--frames", "150", "--scenarios", SCENARIO, "--epochs", "3", "--eval-frames", "30",
            "--logdir", str(logdir), "--no-progress"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return logdir, argv, out.getvalue()


def fit(data, logdir, **kw):
    opts = dict(data=str(data), logdir=str(logdir), scenarios=(SCENARIO,), frames=150, eval_frames=30, epochs=6,
                batch=8, lr=3e-3, lr_decay=0.8, patience=99, brightness=0.0, noise_sd=0.0, progress=False)
    opts.update(kw)
    return DetectorTrainConfig(**opts)


def test_train_detector_writes_checkpoint_metrics_and_tensorboard(run):
    logdir, _, out = run
    assert "| train-dev | learned |" in out and "| dev | learned |" in out and "best.pt" in out
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.json", "config.json"):
        assert (logdir / name).is_file(), name
    metrics = json.loads((logdir / "metrics.json").read_text())
    assert set(metrics["splits"]) == {"train-dev", "dev"} and metrics["train_frames"] == 150
    for split in ("train-dev", "dev"):
        assert {"precision", "recall", "ap", "loc_error_m", "n_true"} <= set(metrics["splits"][split])
    blob = torch.load(logdir / "checkpoints" / "best.pt", weights_only=True)
    assert blob["kind"] == "detector" and blob["frame"] == {"height": 64, "width": 128, "scaling": 1.75}
    # the episodes it was fitted and selected on, for eval's warning: the first ones of each split
    # (150 train frames: one or two merge episodes, as the first ends early or not)
    assert blob["episodes"]["selected"] == {"dev": [[0, 0]], "train-dev": [[0, 0]]}
    assert list(blob["episodes"]["trained"]) == ["train"] and blob["episodes"]["trained"]["train"][0][0] == 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir / "tb"), size_guidance={"images": 0, "tensors": 0, "scalars": 0}).Reload()
    tags = acc.Tags()
    for head in ("total", "heatmap", "offset", "size", "heading"):
        assert f"losses/train/{head}" in tags["scalars"], head
        assert [e.step for e in acc.Scalars(f"losses/train/{head}")] == [1, 2, 3]
    for split in ("train-dev", "dev"):
        for metric in ("precision", "recall", "ap", "loc_error_m"):
            assert f"perception/{split}/{metric}" in tags["scalars"], (split, metric)
        assert f"perception/{split}/pr" in tags["tensors"]
        assert f"perception/{split}/boxes" in tags["images"]


def test_overfits_a_small_labelled_set_and_round_trips(run, tmp_path):
    logdir = run[0]
    data = logdir / "data"
    cfg = fit(data, tmp_path / "fit")
    train_detector(cfg)
    frames = select_frames(data, "train", (SCENARIO,), 150)
    q = quality(evaluate_detector(LearnedDetector(tmp_path / "fit" / "checkpoints" / "last.pt", frames.geometries[0]),
                                  frames))
    assert q.n_true > 100
    assert q.precision > 0.8 and q.recall > 0.8, q
    assert q.mean_error_m < 1.0, q

    # save -> load gives the same detector, through the public loader (weights_only)
    best = tmp_path / "fit" / "checkpoints" / "best.pt"
    copy = tmp_path / "copy.pt"
    torch.save(load_detector_checkpoint(best), copy)
    a, b = LearnedDetector(best, frames.geometries[0]), LearnedDetector(copy, frames.geometries[0])
    with torch.no_grad():
        x = torch.from_numpy(frames.frames[:16])
        for k, v in a.net(x).items():
            assert torch.equal(v, b.net(x)[k]), k
    for f in frames.frames[::10]:
        da, db = a.detect(f), b.detect(np.stack([f, f]))  # a single frame or a stack: the newest counts
        assert len(da) == len(db)
        for p, q in zip(da, db):
            assert np.array_equal(p.corners_px, q.corners_px) and p.score == q.score and 0 <= p.score <= 1


def test_same_seed_same_weights_and_resume_loses_nothing(run, tmp_path):
    data = run[0] / "data"
    small = dict(frames=40, eval_frames=10, batch=16)
    train_detector(fit(data, tmp_path / "a", epochs=2, **small))
    train_detector(fit(data, tmp_path / "c", epochs=1, **small))  # as if killed after one epoch
    (tmp_path / "c").rename(tmp_path / "b")  # a run directory moved elsewhere resumes there
    resumed = train_detector(fit(data, tmp_path / "b", epochs=2, **small))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    wa = load_detector_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    wb = load_detector_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    for k, v in wa.items():
        assert torch.equal(v, wb[k]), k
    with pytest.raises(DetectorError, match="another configuration"):
        train_detector(fit(data, tmp_path / "a", epochs=2, lr=1e-2, **small))


Config = namedtuple("Config", "a b")


@pytest.mark.parametrize("content, message", [
    (None, "no detector checkpoint"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a readable steerbench checkpoint"),
    (pickle.dumps(Config(1, 2), protocol=2), "not a readable steerbench checkpoint"),  # a pickle, not weights
    ("torch:object", "not a readable steerbench checkpoint"),  # torch.save of an object
    ("torch:e2e", "not a learned-detector checkpoint"),  # weights, but another network's
], ids=["missing", "random-bytes", "pickle", "torch-object", "other-weights"])
def test_bad_checkpoints_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "ckpt.pt"
    if content == "torch:object":
        torch.save({"model": Config(1, 2)}, path)
    elif content == "torch:e2e":
        torch.save({"model": {"w": torch.zeros(2)}, "config": {"size": "S"}}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DetectorError, match=message) as e:
        LearnedDetector(path)
    assert "\n" not in str(e.value)


def test_incompatible_weights_and_geometry_are_clear_errors(run, tmp_path):
    best = run[0] / "checkpoints" / "best.pt"
    blob = load_detector_checkpoint(best)
    blob["model"] = {k: v[:1] if v.dim() else v for k, v in blob["model"].items()}
    torch.save(blob, tmp_path / "shapes.pt")
    with pytest.raises(DetectorError, match="does not fit the detector network"):
        LearnedDetector(tmp_path / "shapes.pt")
    with pytest.raises(DetectorError, match="trained on 128x64 frames"):
        LearnedDetector(best, FrameGeometry(width=96, height=64))
    with pytest.raises(DetectorError, match="1.75 px/m"):
        LearnedDetector(best, FrameGeometry(scaling=2.0))
    with pytest.raises(ValueError, match="expects"):
        LearnedDetector(best).detect(np.zeros((48, 96), np.uint8))
    assert LearnedDetector(best).detect(np.zeros((64, 128, 3), np.uint8)) == []  # RGB is converted; empty road


def test_train_detector_user_errors_are_one_line(run, tmp_path, capsys):
    logdir, argv, _ = run
    for bad, message in (
        (["train-detector", "--frames", "10", "--scenarios", "motorway", "--logdir", str(tmp_path / "x")],
         "unknown scenario"),
        (argv[:-3] + ["--logdir", str(logdir), "--seed", "7"], "another configuration"),  # same logdir, other seed
    ):
        capsys.readouterr()
        assert main(bad + ["--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
