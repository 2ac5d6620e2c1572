"""One allocation of episode indices (sim/episodes.py): every command's defaults come from it,
and no two purposes share an episode, DAgger up to its last round included."""

from __future__ import annotations

import itertools

import pytest

from steerbench import cli
from steerbench.agents.e2e_train import TrainConfig
from steerbench.agents.errors import TrainingError
from steerbench.harness.dagger import DaggerConfig, check_budget
from steerbench.sim import episodes as ep
from steerbench.sim.scenarios import episode_seed


class Captured(Exception):
    def __init__(self, cfg):
        self.cfg = cfg


def _capture(monkeypatch, module: str, name: str):
    def grab(cfg, *a, **k):
        raise Captured(cfg)

    monkeypatch.setattr(f"steerbench.{module}.{name}", grab)


def _cfg(argv: list[str]):
    with pytest.raises(Captured) as got:
        cli.main(argv)
    return got.value.cfg


def _seeds(split: str, first: int, count: int) -> set[int]:
    return {episode_seed(split, i) for i in range(first, first + count)}


def _defaults(monkeypatch) -> dict[str, tuple[str, set[int]]]:
    """(purpose, seeds) of every command's default episodes (largest counts the flags allow are
    checked against the ranges separately)."""
    out = {}
    _capture(monkeypatch, "harness.evaluate", "run_eval")
    for split in ("train", "train-dev", "dev", "test"):
        c = _cfg(["eval", "--agent", "expert", "--split", split, "--episodes", "50"])
        out[f"eval {split}"] = ("evaluation", _seeds(split, c.seed, c.episodes))
    _capture(monkeypatch, "study.ceiling", "run_ceiling")
    c = _cfg(["ceiling", "--episodes", "50"])
    out["ceiling"] = ("evaluation", _seeds(c.split, c.seed, c.episodes))
    _capture(monkeypatch, "study.diagnose", "run_diagnose")
    c = _cfg(["diagnose", "--agent", "e2e", "--episodes", "50"])
    for split in ("train", "train-dev", "dev", "test"):
        out[f"diagnose {split}"] = ("evaluation", _seeds(split, c.seed, c.episodes))
    _capture(monkeypatch, "study.compare", "run_compare")
    c = _cfg(["compare", "--contestants", "expert", "--episodes", "50"])
    for split in c.splits:
        out[f"compare {split}"] = ("evaluation", _seeds(split, c.seed, c.episodes))
    _capture(monkeypatch, "study.scale", "run_scale")
    c = _cfg(["scale", "--frames", "300", "--episodes", "50"])
    out["scale"] = ("evaluation", _seeds(c.split, c.seed, c.episodes))
    _capture(monkeypatch, "harness.collect", "collect")
    for split, purpose in (("train", "training"), ("train-dev", "selection"), ("dev", "selection")):
        c = _cfg(["collect", "--out", "x", "--split", split, "--episodes", "50"])
        out[f"collect {split}"] = (purpose, _seeds(split, c.seed, c.episodes))
        out[f"models {split}"] = (purpose, _seeds(split, ep.data_start(split), 50))
    for r in range(1, ep.MAX_DAGGER_ROUNDS + 1):
        out[f"dagger round {r}"] = ("dagger", _seeds("train", ep.dagger_start(r), ep.DAGGER_ROUND_STRIDE))
    out["dagger check"] = ("dagger-check", _seeds("train", ep.DAGGER_CHECK.start, 50))
    return out


def test_purposes_never_share_a_seed():
    def seeds(r: ep.IndexRange) -> set[int]:
        return {
            s for split in r.splits for s in range(episode_seed(split, r.start), episode_seed(split, r.stop - 1) + 1)
        }

    for a, b in itertools.combinations(ep.PURPOSES, 2):
        assert not seeds(a) & seeds(b), (a.purpose, b.purpose)


def test_every_command_default_lies_in_its_purpose_and_purposes_are_disjoint(monkeypatch):
    defaults = _defaults(monkeypatch)
    ranges = {r.purpose: r for r in ep.PURPOSES}
    for name, (purpose, seeds) in defaults.items():
        for seed in seeds:
            split, index = ("train", "train-dev", "dev", "test")[seed // 1_000_000], seed % 1_000_000
            assert ep.purpose_of(split, index) == purpose, (name, split, index)
        assert ranges[purpose]
    for (a, (pa, sa)), (b, (pb, sb)) in itertools.combinations(defaults.items(), 2):
        if pa != pb:
            assert not sa & sb, (a, b)


def test_dagger_cannot_leave_its_range(tmp_path):
    base = TrainConfig(data=str(tmp_path), logdir=str(tmp_path / "run"))
    check_budget(
        DaggerConfig(train=base, rounds=ep.MAX_DAGGER_ROUNDS, scenarios=("merge",), episodes=ep.DAGGER_ROUND_STRIDE)
    )
    with pytest.raises(TrainingError, match="at most 20 DAgger rounds"):
        check_budget(DaggerConfig(train=base, rounds=ep.MAX_DAGGER_ROUNDS + 1, scenarios=("merge",)))
    with pytest.raises(TrainingError, match="rollouts per scenario"):
        check_budget(DaggerConfig(train=base, rounds=1, scenarios=("merge",), episodes=ep.DAGGER_ROUND_STRIDE + 1))
    assert ep.dagger_start(ep.MAX_DAGGER_ROUNDS) + ep.DAGGER_ROUND_STRIDE <= ep.DAGGER.stop <= ep.DAGGER_CHECK.start
