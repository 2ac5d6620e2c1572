"""Run directories: `config.json` records what made the results beside it.

A run directory may be extended (more agents, scenarios, splits or episodes) but never mixed:
re-using it with other environment settings, or an agent label with other options, is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("steerbench", "torch", "gymnasium", "highway-env", "numpy", "opencv-python-headless", "tensorboard")


class RunDirError(ValueError):
    pass


def _git_sha() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def prepare(run_dir: Path, cfg: Any, agents: dict[str, dict], notes: dict | None = None) -> dict:
    """Create or extend `run_dir`, checking that it holds compatible results; `notes` (warnings
    about this invocation) are kept with it in config.json."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create log directory {run_dir}: {exc.strerror or exc}") from None
    if not os.access(run_dir, os.W_OK):
        raise RunDirError(f"log directory {run_dir} is not writable")
    path = run_dir / "config.json"
    env = _jsonable(dataclasses.asdict(cfg.env))
    config = {"env": env, "agents": {}, "invocations": []}
    if path.exists():
        try:
            config = json.loads(path.read_text())
        except ValueError:
            raise RunDirError(f"{path} is corrupt; use another --logdir") from None
        if config.get("env") != env:
            raise RunDirError(
                f"{run_dir} holds results made with other settings ({config.get('env')}); use another --logdir"
            )
    for label, meta in agents.items():
        meta = _jsonable(meta)
        old = config["agents"].get(label)
        if old and (old["target"], old["options"]) != (meta["target"], meta["options"]):
            raise RunDirError(
                f"{run_dir} already has an agent {label!r} with other options {old['options']}; "
                "give this one another label (--agent NEW=SPEC) or use another --logdir"
            )
        config["agents"][label] = meta
    config["invocations"].append(
        {"scenarios": list(cfg.scenarios), "split": cfg.split, "episodes": cfg.episodes, "seed": cfg.seed,
         "workers": cfg.workers, "agents": [a.label for a in cfg.agents], **(notes or {})}
    )
    config["git_sha"] = _git_sha()
    config["versions"] = _versions()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, path)  # atomic: a kill never leaves half a config
    return config


def agents_of(run_dir: Path) -> dict[str, dict]:
    path = Path(run_dir) / "config.json"
    return json.loads(path.read_text())["agents"] if path.exists() else {}
