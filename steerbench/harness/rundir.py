"""Run directories: `config.json` records what made the results beside it.

A run directory may be extended (more agents, scenarios, splits or episodes) but never mixed:
re-using it with other environment settings, or an agent label with other options or with other
contents of the files its options name (weights retrained at the same checkpoint path), is refused.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from steerbench.agents.registry import CODE, changed_files
from steerbench.sim.errors import SteerbenchError
from steerbench.sim.storage import atomic_write_json, check_stored, settings_json

PACKAGES = ("steerbench", "torch", "gymnasium", "highway-env", "numpy", "opencv-python-headless", "tensorboard")


class RunDirError(SteerbenchError, ValueError):
    """A run directory that cannot be used: not creatable or writable, or holding results made with
    other settings, or by another agent under the same label."""

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
    env = settings_json(cfg.env)
    config = check_stored(
        path, "env", env, RunDirError, hint="use another --logdir",
        conflict=lambda stored: f"{run_dir} holds results made with other settings ({stored}); use another --logdir",
    ) or {"env": env, "agents": {}, "invocations": []}
    for label, meta in agents.items():
        meta = _jsonable(meta)
        old = config["agents"].get(label)
        if old and (old["target"], old["options"]) != (meta["target"], meta["options"]):
            raise RunDirError(
                f"{run_dir} already has an agent {label!r} with other options {old['options']}; "
                "give this one another label (--agent NEW=SPEC) or use another --logdir"
            )
        if old and old.get("checkpoints") is not None:  # None: recorded before checkpoints were hashed
            _check_files(run_dir, label, meta, old["checkpoints"], meta.get("checkpoints", {}))
        config["agents"][label] = meta
    config["invocations"].append(
        {"scenarios": list(cfg.scenarios), "split": cfg.split, "episodes": cfg.episodes, "seed": cfg.seed,
         "workers": cfg.workers, "agents": [a.label for a in cfg.agents], **(notes or {})}
    )
    config["git_sha"] = _git_sha()
    config["versions"] = _versions()
    atomic_write_json(path, config, indent=2)
    return config


def _check_files(run_dir: Path, label: str, meta: dict, old: dict[str, str], new: dict[str, str]) -> None:
    changed = changed_files(old, new)
    if changed:
        key = changed[0]
        path = meta["options"].get(key)
        what = (f"module {key[len(CODE):]}'s source" if key.startswith(CODE)
                else f"{key} {path}" if path else f"default {key}")
        raise RunDirError(
            f"{run_dir} already has an agent {label!r} whose {what} had other contents "
            f"(sha256 {_short(old.get(key))} then, {_short(new.get(key))} now); give this one another label "
            "(--agent NEW=SPEC) or use another --logdir"
        )


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "none: no such file"


def agents_of(run_dir: Path) -> dict[str, dict]:
    """Label -> the agent's record in the run's config.json (inputs, target, options, ...); {} without
    one."""
    path = Path(run_dir) / "config.json"
    return json.loads(path.read_text())["agents"] if path.exists() else {}
