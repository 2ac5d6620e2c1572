"""A scenario plug-in: a five-lane dense highway, built from the suite's highway environment.

    steerbench eval --agent expert --scenarios examples.dense_highway:dense_highway --episodes 5
    steerbench scenarios        # lists it too once a package declares it as an entry point:
    # [project.entry-points."steerbench.scenarios"]
    # dense-highway = "examples.dense_highway:dense_highway"

A scenario is a function returning a `ScenarioSpec`: an environment class of the suite (or a
subclass of one), the overrides of its `default_config()` for the train and the test
distribution, and how the camera sees each split. Its results carry the name that found it
(`examples.dense_highway:dense_highway`, or the entry point's name), so workers find it again.
"""

from steerbench.sim import envs
from steerbench.sim.scenarios import STOCK_LOOK, TEST_LOOK, ScenarioSpec, SplitSpec


def dense_highway() -> ScenarioSpec:
    return ScenarioSpec(
        name="dense-highway",  # replaced by the name it is found under
        env_class=envs.CurvyHighwayEnv,
        summary="curved 5-lane highway in dense traffic",
        train=SplitSpec({"lanes_count": 5, "vehicles_count": 40}, STOCK_LOOK, "5 lanes, 40 cars, 30% slow"),
        test=SplitSpec({"lanes_count": 5, "vehicles_count": 50, "slow_fraction": 0.4}, TEST_LOOK,
                       "5 lanes, 50 cars, 40% slow"),
    )
