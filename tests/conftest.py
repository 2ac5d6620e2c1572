import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # test-only agents (agents_for_tests) by module:Class, in workers too
sys.path.insert(0, str(HERE.parent / "examples"))
sys.path.insert(0, str(HERE.parent / "bench"))  # the benchmarks' shared benchlib, as `python bench/x.py` sees it


@pytest.fixture(scope="session")
def envs():
    """One SteerEnv per (scenario, split), shared: construction costs a pygame surface."""
    from steerbench.sim.env import SteerEnv

    cache = {}

    def get(scenario, split="train", **kw):
        key = (scenario, split, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = SteerEnv(scenario, split, **kw)
        return cache[key]

    yield get
    for env in cache.values():
        env.close()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Networks this small gain little from a second thread and lose much on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
