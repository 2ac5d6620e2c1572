"""train-lanes --extra-data: every train frame of another dataset (another road layout) joins the
training set, its held-out frames do not, the extra data is part of the run's configuration, and
data that cannot join is a one-line error."""

import dataclasses

import pytest
from test_lane_model import EXPERT, SCENARIO, data, tiny_config  # noqa: F401 - the module's fixture

from steerbench.cli import main
from steerbench.harness.collect import CollectConfig, collect
from steerbench.perception.lane_data import joined, select_lane_frames
from steerbench.perception.lane_model import LaneModelError
from steerbench.perception.lane_train import train_lanes
from steerbench.perception.types import FrameGeometry
from steerbench.sim.runner import EnvSettings
from steerbench.sim.scenario_options import parse_options


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """Another merge layout: one train and one train-dev episode with two cars on the main road."""
    root = tmp_path_factory.mktemp("extra") / "data"
    env = EnvSettings(fast=True, scenario_options=parse_options(["merge.highway_vehicles=2"], [SCENARIO]))
    for split in ("train", "train-dev"):
        collect(CollectConfig(teacher=EXPERT, scenarios=(SCENARIO,), split=split, episodes=1, out=root, env=env,
                              progress=False))
    return root


def test_extra_train_frames_join_and_are_part_of_the_configuration(data, sparse, tmp_path):  # noqa: F811
    base = train_lanes(tiny_config(data, tmp_path / "base", epochs=1))
    extra_frames = len(select_lane_frames(sparse, "train", (SCENARIO,), None))
    more = train_lanes(tiny_config(data, tmp_path / "more", epochs=1, extra_data=(str(sparse),)))
    assert more["train_frames"] == base["train_frames"] + extra_frames
    assert more["held_out_frames"] == base["held_out_frames"]  # the extra train-dev episode is not measured
    assert more["history"][0]["train"] != base["history"][0]["train"]
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "more", epochs=2))
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "base", epochs=2, extra_data=(str(sparse),)))


def test_frames_of_another_scenario_camera_or_sampling_do_not_join(data, sparse):  # noqa: F811
    base = select_lane_frames(data, "train", (SCENARIO,), 12)
    other = select_lane_frames(sparse, "train", (SCENARIO,), 12)
    both = joined(base, [other])
    assert len(both) == 24 and (both.frames[12:] == other.frames).all() and both.scenarios == base.scenarios
    with pytest.raises(LaneModelError, match="trains only merge"):
        joined(base, [dataclasses.replace(other, scenarios=("highway",))])
    with pytest.raises(LaneModelError, match="another camera"):
        joined(base, [dataclasses.replace(other, geometries=(FrameGeometry(scaling=3.0),))])
    with pytest.raises(LaneModelError, match="another camera"):
        joined(base, [dataclasses.replace(other, s=other.s + 1.0)])


def test_extra_data_without_the_runs_scenarios_is_a_one_line_error(data, tmp_path, capsys):  # noqa: F811
    root = tmp_path / "highway"
    short = EnvSettings(fast=True, scenario_options=parse_options(["highway.duration=2"], ["highway"]))
    collect(CollectConfig(teacher=EXPERT, scenarios=("highway",), episodes=1, out=root, env=short, progress=False))
    code = main(["train-lanes", "--data", str(data), "--extra-data", str(root), "--scenarios", SCENARIO,
                 "--epochs", "1", "--logdir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds no train episodes of merge" in err and len(err.splitlines()) == 1
    # no dataset at all: the command line refuses it (tests/steerbench/cli/test_cli.py)
