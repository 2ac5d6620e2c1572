"""The lane model's flags on the command line: train-lanes' and compare's/scale's lane budget
(patience, the measured recipe, extra lane data, named commands) reach their configs, and extra
data that is no dataset is refused before any work."""

import pytest
from test_cli import _capture, _Captured

from steerbench.cli import main


def test_train_lanes_patience_defaults_to_the_configs_and_can_be_given(monkeypatch, tmp_path):
    from steerbench.perception.lane_train import LaneTrainConfig

    seen = _capture(monkeypatch, "steerbench.perception.lane_train.train_lanes")
    for extra, expected in (([], LaneTrainConfig.patience), (["--patience", "4"], 4)):
        with pytest.raises(_Captured):
            main(["train-lanes", "--data", str(tmp_path), "--logdir", str(tmp_path / "run"), *extra])
        assert seen.pop().patience == expected
    assert LaneTrainConfig.patience >= 10  # at 3 a seed of the README's recipe stopped at epoch 16 of 30


def test_compare_trains_the_measured_lane_budget_and_scale_the_least(monkeypatch):
    seen = _capture(monkeypatch, "steerbench.study.compare.run_compare")
    with pytest.raises(_Captured):
        main(["compare", "--contestants", "modular-learned-learned"])
    b = seen.pop().budget
    assert (b.lane_frames, b.lane_epochs, b.lane_dagger_rounds) == (20000, 30, 0)
    seen = _capture(monkeypatch, "steerbench.study.scale.run_scale")
    with pytest.raises(_Captured):
        main(["scale"])
    b = seen.pop().budget
    assert (b.lane_epochs, b.lane_dagger_rounds, b.lane_extra_data) == (10, 0, ())


def test_extra_lane_data_and_named_commands_reach_train_lanes_compare_and_scale(monkeypatch, tmp_path):
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.jsonl").write_text("")
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    seen = _capture(monkeypatch, "steerbench.perception.lane_train.train_lanes")
    with pytest.raises(_Captured):
        main(["train-lanes", "--data", "D", "--logdir", "L", "--extra-data", a, "--extra-data", b,
              "--named-commands"])
    cfg = seen.pop()
    assert cfg.extra_data == (a, b) and cfg.named_commands
    for command, target in (("compare", "steerbench.study.compare.run_compare"),
                            ("scale", "steerbench.study.scale.run_scale")):
        seen = _capture(monkeypatch, target)
        with pytest.raises(_Captured):
            main([command, "--lane-extra-data", a, "--lane-named-commands"])
        budget = seen.pop().budget
        assert budget.lane_extra_data == (a,) and budget.lane_named_commands



@pytest.mark.parametrize("command", [["compare", "--lane-extra-data"], ["train-lanes", "--data", "D", "--extra-data"]])
def test_extra_lane_data_that_is_no_dataset_is_refused_before_any_work(command, tmp_path, capsys):
    assert main([*command, str(tmp_path / "none"), "--logdir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a steerbench dataset" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
