"""The lane model's viewpoint training (train-lanes --viewpoint, --viewpoint-rotate): it resumes as an
uninterrupted run trains, and its share and its turn are part of the run's configuration."""

import pytest
from test_lane_model import data, tiny_config  # noqa: F401 - the module's fixture, and its tiny settings

from steerbench.perception.lane_model import LaneModelError
from steerbench.perception.lane_train import train_lanes


def test_viewpoint_training_resumes_as_uninterrupted_and_is_its_own_configuration(data, tmp_path):  # noqa: F811
    plain = train_lanes(tiny_config(data, tmp_path / "plain", epochs=1))
    whole = train_lanes(tiny_config(data, tmp_path / "whole", epochs=2, viewpoint=0.5))
    assert whole["history"][0]["train"] != plain["history"][0]["train"]  # displaced frames were trained on
    train_lanes(tiny_config(data, tmp_path / "split", epochs=1, viewpoint=0.5))
    resumed = train_lanes(tiny_config(data, tmp_path / "split", epochs=2, viewpoint=0.5))
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in whole["history"]]
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "whole", epochs=3, viewpoint=0.25))
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "whole", epochs=3, viewpoint=0.5, viewpoint_rotate=30.0))
    turned = train_lanes(tiny_config(data, tmp_path / "turned", epochs=1, viewpoint=0.5, viewpoint_rotate=30.0))
    assert turned["history"][0]["train"] != whole["history"][0]["train"]  # the turn is a training setting
