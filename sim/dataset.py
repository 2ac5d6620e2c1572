"""The on-disk dataset shared by the learned detector and the end-to-end network.

Layout of a dataset directory (documented in docs/dataset.md):

* `chunks/<scenario>/<split>/<index>.npz`: one episode; only the newest frame of each step is
  stored (stacks are rebuilt at training time), with the teacher's clean action, the action
  actually executed (noise injected, DART-style), speed, command and vehicle boxes, and any
  per-step arrays the caller's `extras` hook adds (`steerbench collect`: lane labels, which
  older datasets lack);
* `index.jsonl`: one row per finished chunk with its SHA-256; a chunk is written to a temporary
  name and renamed before its row is appended, so readers never see half a chunk, a truncated
  or altered chunk fails its checksum, and an interrupted collection resumes from the index;
* `manifest.json`: the camera and environment settings and counts per scenario and split.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .env import SteerEnv
from .errors import SteerbenchError
from .storage import atomic_write
from .types import EpisodeInfo, Observation

FORMAT_VERSION = 1  # lane labels (LANE_ARRAYS) were added without a bump: a chunk may lack them
LANE_ARRAYS = ("lane_s", "lane_centres", "lane_valid", "lane_width")  # optional, docs/dataset.md
# What planning/lane_labels.py's labels mean, in each index row's `lane_labels` (a row without one: 1).
# 1: a lane jumped across the gap where highway-env joins two segments apart (the roundabout's
# entries and exits); 2: it follows the lane on to where it crosses the next (as the map lanes do).
LANE_LABELS_VERSION = 2


class DatasetError(SteerbenchError, ValueError):
    """A missing, corrupt or inconsistent dataset (one line for the user)."""


@dataclass(frozen=True)
class Episode:
    """One chunk, loaded."""

    scenario: str
    split: str
    index: int
    seed: int
    frames: np.ndarray  # (T, H, W) or (T, H, W, 3) uint8, the newest frame of each step
    speed: np.ndarray  # (T,) float32 [m/s]
    command: np.ndarray  # (T,) int16
    action: np.ndarray  # (T, 2) float32, the teacher's clean label
    executed: np.ndarray  # (T, 2) float32, what was applied (noise included)
    box_step: np.ndarray  # (N,) int32: the step each box belongs to
    boxes_px: np.ndarray  # (N, 4, 2) float32 corners in pixels (u, v)
    boxes_m: np.ndarray  # (N, 5) float32: x, y [m] in the ego frame (x ahead, y right), length, width, heading [rad]
    # Lane labels (docs/dataset.md); None in datasets collected before they were added.
    lane_s: np.ndarray | None = None  # (K,) float32 [m] arc lengths of the samples, from abreast of the ego
    lane_centres: np.ndarray | None = None  # (T, 3, K, 2) float32 ego frame [m], (left, ego, right), NaN: no lane
    lane_valid: np.ndarray | None = None  # (T, 3) bool: the lane exists abreast of the ego
    lane_width: np.ndarray | None = None  # (T, 3) float32 [m], NaN where not valid

    def boxes_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.box_step == step
        return self.boxes_px[sel], self.boxes_m[sel]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chunk_path(root: Path, scenario: str, split: str, index: int) -> Path:
    return Path(root) / "chunks" / scenario / split / f"{index:06d}.npz"


def _ego_frame_boxes(env: SteerEnv, step: int) -> tuple[list, list, list]:
    """Boxes of the vehicles visible in the newest frame: pixel corners and ego-frame metres."""
    truth, pose, cam = env.ground_truth(), env.pose, env.camera_config
    steps, px, metres = [], [], []
    for v in truth.others:
        corners = env.camera.vehicle_box(v.x, v.y, v.heading, v.length, v.width, pose)
        if (corners[:, 0].max() < 0 or corners[:, 1].max() < 0
                or corners[:, 0].min() > cam.width or corners[:, 1].min() > cam.height):
            continue
        x, y = truth.ego.to_local(v.position)[0]
        rel_heading = (v.heading - truth.ego.heading + np.pi) % (2 * np.pi) - np.pi
        steps.append(step)
        px.append(corners)
        metres.append([x, y, v.length, v.width, rel_heading])
    return steps, px, metres


def record_episode(
    env: SteerEnv, teacher: Any, seed: int, make_info: Callable[[SteerEnv], EpisodeInfo],
    noise_std: float, observe: Callable[[SteerEnv, dict], Observation],
    driver: Any = None, observe_driver: Callable[[SteerEnv, dict], Observation] | None = None,
    extras: Callable[[SteerEnv], dict[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Roll out `teacher`; record the newest frame, labels and the clean teacher action per step.
    Steering noise N(0, noise_std) is added to the executed action only (DART-style recovery
    data), drawn from a generator seeded by the episode's seed. With a `driver` (DAgger's
    student), the driver's action is executed and the teacher only labels the states it visits.
    `extras(env)`, called at each step in the state of that step's frame, returns arrays of the
    same keys and shapes every step; each key is stacked into a (T, ...) array of the chunk."""
    obs, _ = env.reset(seed=seed)
    info = make_info(env)
    teacher.reset(info)
    if driver is not None:
        driver.reset(info)
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {
        k: [] for k in ("frames", "speed", "command", "action", "executed", "box_step", "boxes_px", "boxes_m")
    }
    extra: dict[str, list] = {}
    done, step = False, 0
    while not done:
        o = observe(env, obs)
        action = np.asarray(teacher.act(o), dtype=np.float64)
        executed = action.copy() if driver is None else _drive(driver, observe_driver(env, obs))
        if noise_std > 0:
            executed[1] = np.clip(executed[1] + rng.normal(0.0, noise_std), -1.0, 1.0)
        b_step, b_px, b_m = _ego_frame_boxes(env, step)
        cols["frames"].append(obs["frames"][-1])
        cols["speed"].append(o.speed)
        cols["command"].append(o.command)
        cols["action"].append(action)
        cols["box_step"] += b_step
        cols["boxes_px"] += b_px
        cols["boxes_m"] += b_m
        if extras is not None:
            _append_extras(extra, extras(env), step, cols)
        obs, _, term, trunc, step_info = env.step(executed)
        cols["executed"].append(step_info["applied_action"])
        done, step = term or trunc, step + 1
    h, w = env.camera_config.height, env.camera_config.width
    arrays = {
        "frames": np.stack(cols["frames"]).astype(np.uint8),
        "speed": np.asarray(cols["speed"], np.float32),
        "command": np.asarray(cols["command"], np.int16),
        "action": np.asarray(cols["action"], np.float32),
        "executed": np.asarray(cols["executed"], np.float32),
        "box_step": np.asarray(cols["box_step"], np.int32),
        "boxes_px": np.asarray(cols["boxes_px"], np.float32).reshape(-1, 4, 2),
        "boxes_m": np.asarray(cols["boxes_m"], np.float32).reshape(-1, 5),
        "frame_size": np.array([h, w], np.int32),
    }
    arrays.update({k: np.stack(v) for k, v in extra.items()})
    return arrays


def _append_extras(extra: dict[str, list], row: dict[str, np.ndarray], step: int, builtin: dict) -> None:
    """One step of the `extras` hook: the same keys every step, none of the built-in arrays'."""
    if step == 0:
        clash = set(row) & (set(builtin) | {"frame_size"})
        if clash:
            raise ValueError(f"extras may not replace the built-in arrays {sorted(clash)}")
        extra.update({k: [] for k in row})
    elif set(row) != set(extra):
        raise ValueError(f"extras returned keys {sorted(row)} at step {step}, {sorted(extra)} before")
    for k, v in row.items():
        extra[k].append(np.asarray(v))


def _drive(driver: Any, obs: Observation) -> np.ndarray:
    """The driver's action; a broken one (NaN, wrong shape) is a bug of the student, not data."""
    action = np.asarray(driver.act(obs), dtype=np.float64).reshape(-1)
    if action.shape != (2,) or not np.isfinite(action).all():
        raise DatasetError(f"the driver returned an invalid action {action!r}")
    return np.clip(action, -1.0, 1.0)


def write_chunk(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write atomically (temporary name, fsync, rename); return the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays), durable=True)
    return sha256(path)


class DatasetIndex:
    """`index.jsonl`: append-only rows of finished chunks (one `write` per row)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / "index.jsonl"
        self.rows: list[dict] = []
        if self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    self.rows.append(json.loads(line))
                except ValueError:
                    raise DatasetError(f"{self.path}: line {n} is corrupt") from None

    def keys(self) -> set[tuple[str, str, int]]:
        return {(r["scenario"], r["split"], r["index"]) for r in self.rows}

    def append(self, row: dict) -> None:
        data = (json.dumps(row, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows.append(row)


def load_episode(root: Path, row: dict, verify: bool = True) -> Episode:
    path = Path(root) / row["path"]
    if not path.exists():
        raise DatasetError(f"missing chunk {path}")
    if verify and sha256(path) != row["sha256"]:
        raise DatasetError(f"chunk {path} fails its checksum (truncated or altered)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read chunk {path}: {exc}") from None
    return Episode(
        scenario=row["scenario"], split=row["split"], index=row["index"], seed=row["seed"],
        frames=arrays["frames"], speed=arrays["speed"], command=arrays["command"],
        action=arrays["action"], executed=arrays["executed"], box_step=arrays["box_step"],
        boxes_px=arrays["boxes_px"], boxes_m=arrays["boxes_m"],
        **{k: arrays.get(k) for k in LANE_ARRAYS},
    )


def iter_episodes(root: Path, split: str | None = None, verify: bool = True) -> Iterator[Episode]:
    root = Path(root)
    if not (root / "index.jsonl").exists():
        raise DatasetError(f"{root} is not a steerbench dataset (no index.jsonl)")
    for row in DatasetIndex(root).rows:
        if split is None or row["split"] == split:
            yield load_episode(root, row, verify)


def stack_frames(frames: np.ndarray, step: int, stack: int) -> np.ndarray:
    """The observation stack at `step`, rebuilt as the environment builds it (the first frame
    repeated before the episode's start)."""
    idx = np.clip(np.arange(step - stack + 1, step + 1), 0, None)
    return frames[idx]
