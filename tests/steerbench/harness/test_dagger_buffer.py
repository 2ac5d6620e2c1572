"""DA-RB: DAgger with critical states and a bounded replay buffer (harness/dagger.py, docs/e2e.md)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from steerbench.agents.e2e_train import TrainConfig, _comparable, _same_run, _splits
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness import dagger
from steerbench.harness.collect import CollectConfig, collect, dataset_settings
from steerbench.harness.dagger import DaggerConfig, buffer_path, critical_steps, run_dagger, worst
from steerbench.sim.dataset import DatasetIndex
from steerbench.sim.episodes import DAGGER

EXPERT = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("darb")
    collect(CollectConfig(teacher=EXPERT, scenarios=("merge",), episodes=2, out=root, progress=False))
    return root


def _config(data, logdir, **kw) -> DaggerConfig:
    env, scenarios = dataset_settings(data)
    base = TrainConfig(data=str(data), logdir=str(logdir), size="S", epochs=1, batch=32, progress=False)
    return DaggerConfig(train=base, scenarios=scenarios, episodes=1, eval_episodes=1, env=env, progress=False,
                        **{"rounds": 1, **kw})


def _train_frames(cfg: DaggerConfig, r: int) -> tuple[int, int]:
    """(base, rollout) samples that round r's student trains on (train and held-out train-dev)."""
    run = TrainConfig(data=str(dagger.aggregate_dir(cfg)), logdir="unused", samples=str(buffer_path(cfg, r)))
    full, train_set, dev_set, _ = _splits(run, stack=4)
    picked = np.concatenate([train_set.indices, dev_set.indices]).astype(int)
    rollout = np.array([DAGGER.holds(full.episodes[e].split, full.episodes[e].index) for e in full.index[picked, 0]])
    return int((~rollout).sum()), int(rollout.sum())


def test_critical_states_are_the_highest_errors():
    errors = np.array([0.1, 0.9, 0.3, 0.9, 0.0, 0.5])
    assert critical_steps(errors, 0.5).tolist() == [1, 3, 5]
    assert critical_steps(errors, 1.0).tolist() == list(range(6))
    assert critical_steps(errors, 0.01).tolist() == [1]  # at least one; the earlier of equals
    assert len(critical_steps(np.zeros(10), 0.3)) == 3  # 0.3 x 10 is 3, not 4


def test_over_capacity_the_lowest_errors_go_first():
    errors = np.array([0.5, 0.1, 0.7, 0.1, 0.2])
    rounds = np.array([1, 1, 2, 2, 2])
    assert worst(errors, rounds, 3).tolist() == [True, False, True, False, True]
    assert worst(errors, rounds, 2).tolist() == [True, False, True, False, False]
    assert worst(np.array([0.1, 0.1]), np.array([1, 2]), 1).tolist() == [False, True]  # equals: the newer round
    assert worst(errors, rounds, 0).all() and worst(errors, rounds, 5).all()  # 0: no bound


def test_a_da_rb_run_bounds_its_buffer_and_keeps_the_base(data, tmp_path):
    cfg = _config(data, tmp_path / "run", rounds=2, buffer=5, critical=0.5)
    history = run_dagger(cfg)
    assert [h["round"] for h in history] == [0, 1, 2] and "buffer" not in history[0]
    base = sum(r["steps"] for r in DatasetIndex(data).rows if r["split"] == "train")
    rows = {r["index"]: r["steps"] for r in DatasetIndex(tmp_path / "run" / "data").rows
            if DAGGER.holds("train", r["index"])}
    assert len(rows) == 2
    for r in (1, 2):
        held = json.loads(buffer_path(cfg, r).read_text())
        s = held["summary"]
        assert history[r]["buffer"] == s
        assert 0 < s["frames"] <= 5 and s["base_frames"] == base
        rollouts = [e for e in held["episodes"] if e["round"]]
        assert [e["round"] for e in rollouts] == list(range(1, r + 1))  # a later round's are not listed
        assert s["frames"] == sum(len(e["steps"]) for e in rollouts) == sum(s["frames_by_round"].values())
        assert s["critical_frames"] == sum(-(-n // 2) for i, n in rows.items() if dagger._round_of(i) == r)
        assert _train_frames(cfg, r) == (base, s["frames"])  # every base frame, and the buffer's
    assert all(history[r]["buffer"]["evicted"] > 0 for r in (1, 2))  # more candidates than room
    assert json.loads((tmp_path / "run" / "dagger.json").read_text()) == history

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("dagger/buffer/frames")] == [history[r]["buffer"]["frames"] for r in (1, 2)]
    assert [e.step for e in acc.Scalars("dagger/buffer/base_share")] == [1, 2]


def test_by_default_it_is_plain_dagger(data, tmp_path, monkeypatch):
    """Buffer 0 and share 1: the rounds' training configs are exactly plain DAgger's, no buffer is made."""
    seen = []

    def fake_train(run):
        seen.append(run)
        (Path(run.logdir) / "checkpoints").mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(dagger, "train", fake_train)
    monkeypatch.setattr(dagger, "_aggregate", lambda cfg, r, weights: None)
    monkeypatch.setattr(dagger, "_closed_loop", lambda cfg, r: {})
    cfg = _config(data, tmp_path / "run")
    assert (cfg.buffer, cfg.critical) == (0, 1.0) and not dagger.replays(cfg)
    history = run_dagger(cfg)
    base = cfg.train
    run = tmp_path / "run"
    assert seen == [dataclasses.replace(base, logdir=str(run)),
                    dataclasses.replace(base, data=str(run / "data"), logdir=str(run / "dagger-1"),
                                        init=str(run / "checkpoints" / "best.pt"))]
    assert all("buffer" not in h for h in history) and not (tmp_path / "run" / "buffer").exists()
    # a run recorded before `samples` existed still resumes
    stored = json.loads(_comparable(base))
    del stored["samples"]
    assert _same_run(json.dumps(stored, sort_keys=True), base)


def test_a_resumed_run_keeps_its_buffer(data, tmp_path, monkeypatch):
    cfg = _config(data, tmp_path / "run", buffer=20, critical=0.5)
    real_train = dagger.train

    def interrupted(run):
        if run.samples:
            raise KeyboardInterrupt  # killed as round 1 starts training
        return real_train(run)

    monkeypatch.setattr(dagger, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_dagger(cfg)
    path = buffer_path(cfg, 1)
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    monkeypatch.setattr(dagger, "train", real_train)

    def no_rescoring(*args):
        raise AssertionError("the resumed run chose its buffer again")

    monkeypatch.setattr(dagger, "_errors", no_rescoring)
    history = run_dagger(cfg)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp
    assert history[1]["buffer"] == json.loads(before)["summary"]
    saw = json.loads((tmp_path / "run" / "dagger-1" / "config.json").read_text())["train"]["samples"]
    assert saw == str(path)


def test_a_sample_list_naming_a_missing_episode_is_one_error(data, tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"episodes": [{"scenario": "merge", "split": "train",
                                                               "index": 999, "steps": [0]}]}))
    with pytest.raises(TrainingError, match="not in"):
        _splits(TrainConfig(data=str(data), logdir="unused", samples=str(tmp_path / "s.json")), stack=4)


@pytest.mark.parametrize("flags, message", [
    (["--dagger-rounds", "1", "--dagger-critical", "0"], "must be > 0"),
    (["--dagger-rounds", "1", "--dagger-critical", "1.5"], "must be <= 1"),
    (["--dagger-rounds", "1", "--dagger-buffer", "-1"], "must be >= 0"),
    (["--dagger-rounds", "1", "--dagger-buffer", "many"], "expected int"),
    (["--dagger-buffer", "100"], "need --dagger-rounds"),
])
def test_bad_flags_are_one_line_and_status_2(flags, message, tmp_path, capsys):
    try:
        status = main(["train-e2e", "--data", str(tmp_path), "--logdir", str(tmp_path / "run"), *flags])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(TrainingError, match="0 or more"):
        dagger.check_budget(DaggerConfig(train=TrainConfig(data="d", logdir="l"), rounds=1, scenarios=(), buffer=-1))


def test_the_flags_reach_the_config(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("steerbench.harness.collect.dataset_settings", lambda data: (None, ("merge",)))
    monkeypatch.setattr("steerbench.harness.dagger.run_dagger", lambda cfg: seen.append(cfg) or [])
    assert main(["train-e2e", "--data", str(tmp_path), "--logdir", str(tmp_path / "run"), "--dagger-rounds", "2",
                 "--dagger-buffer", "5000", "--dagger-critical", "0.25"]) == 0
    assert (seen[0].buffer, seen[0].critical) == (5000, 0.25)
    assert main(["train-e2e", "--data", str(tmp_path), "--logdir", str(tmp_path / "run"), "--dagger-rounds", "2"]) == 0
    assert (seen[1].buffer, seen[1].critical) == (0, 1.0)
