"""Fixtures of the perception tests."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every perception test trains or runs a small network: one torch thread (tests/conftest.py)."""
    yield
