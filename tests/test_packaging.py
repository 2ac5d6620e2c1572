"""The folders install under one umbrella name, so generic names cannot collide."""

import importlib
import importlib.util
from pathlib import Path

import steerbench


def test_umbrella_packages_map_to_top_level_folders():
    root = Path(steerbench.__file__).resolve().parent.parent
    for name, folder in [("sim", "sim"), ("agents", "agents"), ("planning", "planning"), ("perception", "perception")]:
        module = importlib.import_module(f"steerbench.{name}")
        assert Path(module.__file__).resolve().parent == root / folder


def test_no_generic_top_level_names_are_installed():
    for generic in ("sim", "planning", "perception"):
        spec = importlib.util.find_spec(generic)
        assert spec is None or "steerbench" not in str(spec.origin)


def test_gymnasium_ids_are_registered_on_import():
    import gymnasium as gym

    import steerbench.sim  # noqa: F401

    assert "steerbench/highway-v0" in gym.registry
