"""--scenario-opt: overrides change what they say, are recorded, refuse to mix in one run
directory, and are one-line errors with exit status 2 when bad."""

import json

import pytest

from steerbench.cli import main
from steerbench.sim.env import SteerEnv
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenario_options import ScenarioOptionError, parse_options
from steerbench.sim.storage import settings_from_json, settings_json


def _lanes(env: SteerEnv) -> int:
    env.reset(seed=0)
    net = env.core.road.network
    a = next(iter(net.graph))
    return len(net.graph[a][next(iter(net.graph[a]))])


@pytest.mark.parametrize("split", ["train", "test"])
def test_overrides_change_what_they_say_in_every_split(split):
    options = parse_options(["highway.lanes_count=5", "highway.brightness=0.5", "highway.radius_range=250,260"],
                            ["highway"])
    env = SteerEnv("highway", split, scenario_options=options)
    assert _lanes(env) == 5 and env.look.brightness == 0.5
    assert env.core.config["radius_range"] == [250.0, 260.0]
    assert _lanes(SteerEnv("highway", split)) == (3 if split == "train" else 4)  # without: the split's own
    other = SteerEnv("merge", split, scenario_options=options)  # another scenario's options do not apply
    assert other.look.brightness == (1.0 if split == "train" else 0.8)


def test_settings_without_options_store_as_before():
    assert "scenario_options" not in settings_json(EnvSettings())  # old run directories still resume
    stored = settings_json(EnvSettings(scenario_options=parse_options(["racetrack.duration=20"], ["racetrack"])))
    assert stored["scenario_options"] == [["racetrack", "duration", 20]]
    assert settings_from_json(stored).scenario_options == (("racetrack", "duration", 20),)


def test_overrides_are_recorded_and_refuse_to_mix(tmp_path, capsys):
    base = ["eval", "--agent", "idle", "--scenarios", "highway", "--episodes", "1", "--fast-sim",
            "--logdir", str(tmp_path), "--no-progress"]
    assert main(base + ["--scenario-opt", "highway.lanes_count=4"]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["env"]["scenario_options"] == [["highway", "lanes_count", 4]]
    capsys.readouterr()
    assert main(base) == 2 and "other settings" in capsys.readouterr().err
    assert main(base + ["--scenario-opt", "highway.lanes_count=5"]) == 2
    assert main(base + ["--scenario-opt", "highway.lanes_count=4"]) == 0  # the same: resumes
    assert "0 episodes run" in capsys.readouterr().out


@pytest.mark.parametrize("opt, message", [
    ("highway.lanes=5", "has no parameter 'lanes'; did you mean 'lanes_count'"),
    ("highway.policy_frequency=2", "has no parameter 'policy_frequency'"),  # the harness's, not the scenario's
    ("highway.lanes_count=five", "bad --scenario-opt 'highway.lanes_count=five'"),
    ("highway.lanes_count=4.5", "the default is int 3"),
    ("highway.radius_range=300", "expected 2 comma-separated numbers"),
    ("highway.neighbour_vehicles_connected_lanes=maybe", "expected true or false"),
    ("merge.lanes_count=5", "names scenario 'merge', which is not among --scenarios"),
    ("lanes_count=5", "expected NAME.KEY=VALUE"),
])
def test_a_bad_override_is_one_line_and_exit_2(opt, message, tmp_path, capsys):
    code = main(["eval", "--agent", "idle", "--scenarios", "highway", "--scenario-opt", opt,
                 "--logdir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ScenarioOptionError):
        parse_options([opt], ["highway"])


@pytest.mark.parametrize(("split", "lanes"), [("train", 2), ("test", 4)])
def test_the_racetrack_oval_replaces_either_splits_track_with_its_own_lanes(split, lanes):
    options = parse_options(["racetrack.oval=true", f"racetrack.oval_lanes={lanes}", "racetrack.oval_length=150"],
                            ["racetrack"])
    env = SteerEnv("racetrack", split, scenario_options=options, fast=True)
    env.reset(seed=3)
    straight = env.core.road.network.graph["a"]["b"]
    assert len(straight) == lanes and straight[0].length == pytest.approx(151.0)  # the oval's first straight
    stock = SteerEnv("racetrack", split, fast=True)
    stock.reset(seed=3)
    assert len(stock.core.road.network.graph["a"]["b"]) == (2 if split == "train" else 3)  # the split's own track
    env.step(env.action_space.sample() * 0)  # it drives


@pytest.mark.parametrize("text", ["racetrack.oval_lanes=7", "racetrack.oval_lanes=1", "racetrack.oval_length=20"])
def test_an_oval_out_of_its_range_is_a_one_line_error(text, tmp_path, capsys):
    with pytest.raises(ScenarioOptionError, match="is between"):
        parse_options([text], ["racetrack"])
    code = main(["eval", "--agent", "idle", "--scenarios", "racetrack", "--scenario-opt", text, "--episodes", "1",
                 "--logdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is between" in err and len(err.splitlines()) == 1
