"""What a resume compares: every setting but the ones a resumed run may change and the run's own
directory, so that a run moved or copied elsewhere resumes there."""

import json
from dataclasses import dataclass

from steerbench.perception.training import comparable_config, config_difference, same_config


@dataclass(frozen=True)
class Cfg:
    data: str
    logdir: str
    lr: float = 1e-3
    epochs: int = 10


def test_the_run_directory_is_not_part_of_a_runs_identity():
    here = comparable_config(Cfg("d", "runs/a"), ("epochs",))
    assert same_config(here, comparable_config(Cfg("d", "elsewhere/a", epochs=30), ("epochs",)))
    # a `last.pt` written before the run directory was dropped still holds it
    recorded = json.dumps({"data": "d", "logdir": "runs/old", "lr": 1e-3}, sort_keys=True)
    assert same_config(recorded, here)


def test_other_settings_and_unreadable_records_still_differ():
    here = comparable_config(Cfg("d", "runs/a"), ("epochs",))
    other = comparable_config(Cfg("d", "runs/b", lr=0.5), ("epochs",))
    assert not same_config(other, here)
    assert not same_config(comparable_config(Cfg("other-data", "runs/a"), ("epochs",)), here)
    assert config_difference(other, here) == "lr: stored 0.5, now 0.001"  # the directory is not named
    for stored in (None, "not json", "[1, 2]"):
        assert not same_config(stored, here)
