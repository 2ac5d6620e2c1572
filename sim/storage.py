"""Files steerbench writes and reads back: never half-written, and refused when they hold
settings other than the ones asked for.

Torch-free (a checkpoint's bytes come from a `write` callback), so that every layer can use it:
datasets, run directories, manifests and checkpoints all go through `atomic_write`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import IO, Any, Callable

from .runner import EnvSettings
from .types import CameraConfig


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any], durable: bool = False) -> None:
    """Write `path` through a temporary name and a rename, so a kill mid-write never leaves a
    broken file; `durable` also syncs the bytes to disk before the rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: Path, obj: Any, **dumps: Any) -> None:
    atomic_write_text(path, json.dumps(obj, **dumps))


def load_json(path: Path, error: type[Exception], hint: str = "") -> Any:
    """The JSON stored at `path`, or None when there is no such file; a corrupt one raises
    `error` with a one-line message (`hint` says what to do instead)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise error(f"{path} is corrupt" + (f"; {hint}" if hint else "")) from None


def check_stored(path: Path, key: str, current: Any, error: type[Exception], conflict: Callable[[Any], str],
                 hint: str = "") -> dict | None:
    """Stored settings must match to resume: the JSON object at `path` (None when there is none
    yet), whose `key` must equal `current`; otherwise `error(conflict(stored value))`."""
    stored = load_json(path, error, hint)
    if stored is not None and stored.get(key) != current:
        raise error(conflict(stored.get(key)))
    return stored


def settings_json(env: EnvSettings) -> dict:
    """EnvSettings as config.json and manifest.json store them (the fast-core flag is not part of
    their identity, so it is not stored; no scenario options are stored as none, so that runs and
    datasets made before the options existed resume)."""
    stored = json.loads(json.dumps(dataclasses.asdict(env), default=str))
    if not stored.get("scenario_options"):
        stored.pop("scenario_options", None)
    return stored


def settings_from_json(stored: dict) -> EnvSettings:
    """EnvSettings back from `settings_json` (JSON turned tuples into lists); ValueError when
    the stored settings do not fit this version of steerbench."""
    try:
        stored = dict(stored)
        camera = CameraConfig(**{k: _tuples(v) for k, v in dict(stored.pop("camera", {})).items()})
        return EnvSettings(camera=camera, **{k: _tuples(v) for k, v in stored.items()})
    except TypeError as exc:
        raise ValueError(f"stored environment settings do not fit this version of steerbench: {exc}") from None


def _tuples(v: Any) -> Any:
    return tuple(map(_tuples, v)) if isinstance(v, list) else v
