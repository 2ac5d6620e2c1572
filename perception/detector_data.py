"""The learned detector's frames: which frames of a `steerbench collect` dataset it trains and is
measured on, in one documented order (see `select_frames`), with each vehicle's drawn and true
position, and the collection that makes enough of them exist (`ensure_frames`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from steerbench.sim.composition import (
    Composition,
    CompositionError,
    compose,
    shares,  # also imported from here: lane_data, agents.e2e_train
)
from steerbench.sim.dataset import DatasetError, DatasetIndex, load_episode
from steerbench.sim.episodes import DAGGER
from steerbench.sim.scenarios import get_scenario

from .classical import to_gray
from .learned import DetectorError
from .metrics import expected
from .types import FrameGeometry


@dataclass(frozen=True)
class Boxes:
    """The vehicles of one frame."""

    drawn_px: np.ndarray  # (K, 2) centre of the box as rendered (mean of its corners) [px]
    true_px: np.ndarray  # (K, 2) the vehicle's position projected to pixels [px]
    true_m: np.ndarray  # (K, 2) the vehicle's position in the ego frame [m]
    size_m: np.ndarray  # (K, 2) length, width [m]
    heading: np.ndarray  # (K,) relative to the ego [rad]
    expected: np.ndarray  # (K,) bool: perception.metrics expects it to be detected


@dataclass(frozen=True)
class FrameSet:
    """Labelled grey frames of one split, from one or more scenarios, with their boxes."""

    split: str
    frames: np.ndarray  # (N, H, W) uint8 grey
    scenario: np.ndarray  # (N,) index into `scenarios`
    scenarios: tuple[str, ...]
    geometries: tuple[FrameGeometry, ...]  # one per scenario
    boxes: tuple[Boxes, ...]  # one per frame
    episodes: tuple[int, ...] = ()  # dataset indices of the episodes the frames come from

    def __len__(self) -> int:
        return len(self.frames)


def nominal_steps(scenario: str, split: str, policy_hz: int = 5) -> int:
    """Steps of an episode that runs its whole duration (an early end makes fewer)."""
    spec = get_scenario(scenario)
    config = spec.env_class_for(split).default_config()
    config.update(spec.split(split).config)
    return int(round(config["duration"] * policy_hz))


def _rows(root: Path, split: str, scenario: str) -> list[dict]:
    try:
        rows = DatasetIndex(root).rows if (Path(root) / "index.jsonl").exists() else []
    except DatasetError as exc:
        raise DetectorError(str(exc)) from None
    return sorted((r for r in rows if r["split"] == split and r["scenario"] == scenario), key=lambda r: r["index"])


def usable_frames(rows: Sequence[dict], stride: int) -> int:
    """Frames that episodes (index rows) give when every `stride`-th step is taken."""
    return sum(math.ceil(r["steps"] / stride) for r in rows)


Collector = Callable[[str, str, int, int], None]  # (scenario, split, episodes, missing) -> None


def ensure_frames(root: Path, split: str, scenarios: Sequence[str], frames: int, stride: int,
                  collect_episodes: Collector, policy_hz: int = 5) -> None:
    """Have episodes 0.. of `split` hold each scenario's share of `frames` (every `stride`-th step):
    `collect_episodes(scenario, split, n, missing)` must make episodes 0..n-1 exist, `missing` of
    them not recorded yet (it is only called when some are). First ceil(share / frames per full
    episode) episodes, then more while episodes that ended early leave the share short."""
    for scenario, share in shares(frames, scenarios).items():
        per_episode = math.ceil(nominal_steps(scenario, split, policy_hz) / stride)
        episodes = math.ceil(share / per_episode)
        while True:
            recorded = {r["index"] for r in _rows(root, split, scenario)}
            missing = sum(1 for i in range(episodes) if i not in recorded)
            if missing:
                collect_episodes(scenario, split, episodes, missing)
            have = usable_frames([r for r in _rows(root, split, scenario) if r["index"] < episodes], stride)
            if have >= share:
                break
            episodes += math.ceil((share - have) / per_episode)


def policy_hz_of(root: Path) -> int:
    """The policy rate a dataset was collected at (its manifest.json; 5, the default, when it
    does not say); DetectorError for a missing or corrupt manifest."""
    path = Path(root) / "manifest.json"
    try:
        return int(json.loads(path.read_text())["env"].get("policy_hz", 5))
    except FileNotFoundError:
        raise DetectorError(f"{root} is not a steerbench dataset (no manifest.json)") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DetectorError(f"{path} is corrupt or lacks the environment settings") from None


def camera_of(root: Path) -> dict:
    """The camera settings a dataset was collected with (its manifest.json); DetectorError otherwise."""
    path = Path(root) / "manifest.json"
    try:
        camera = json.loads(path.read_text())["env"]["camera"]
        return {"width": int(camera["width"]), "height": int(camera["height"]), "scaling": float(camera["scaling"]),
                "centering": camera.get("centering")}
    except FileNotFoundError:
        raise DetectorError(f"{root} is not a steerbench dataset (no manifest.json)") from None
    except (ValueError, KeyError, TypeError):
        raise DetectorError(f"{path} is corrupt or lacks the camera settings") from None


def geometry_for(camera: dict, scenario: str) -> FrameGeometry:
    """The frame geometry of `scenario` under `camera` (its own centering unless the camera fixes one)."""
    centering = camera["centering"] or get_scenario(scenario).centering
    return FrameGeometry(camera["width"], camera["height"], camera["scaling"], tuple(centering))


def composed_steps(root: Path, split: str, scenarios: Sequence[str], frames: int, stride: int,
                   rule: Composition) -> dict[tuple[str, int], list[int]]:
    """The steps of each (scenario, episode index) that sim.composition's mix for `frames` takes
    from the expert episodes of `split` (DAgger rollouts are not expert data); a CompositionError
    when the data is too small."""
    rows = [r for s in scenarios for r in _rows(root, split, s) if not DAGGER.holds(split, r["index"])]
    chosen: dict[tuple[str, int], list[int]] = {}
    for pick in compose(rows, frames, scenarios, rule, stride):
        chosen.setdefault((pick.scenario, pick.index), []).append(pick.step)
    return chosen


def select_frames(root: Path, split: str, scenarios: Sequence[str], frames: int, stride: int = 1,
                  composition: Composition | None = None) -> FrameSet:
    """The first `frames` frames of `split` in the documented order (module docstring), or with a
    `composition` the frames of that mix (`composed_steps`)."""
    root = Path(root)
    camera = camera_of(root)
    geometries = tuple(geometry_for(camera, s) for s in scenarios)
    try:
        chosen = None if composition is None else composed_steps(root, split, scenarios, frames, stride, composition)
    except CompositionError as exc:
        raise DetectorError(str(exc)) from None
    out_frames, out_scenario, out_boxes, used = [], [], [], set()
    for k, (scenario, share) in enumerate(shares(frames, scenarios).items()):
        g, taken = geometries[k], 0
        for row in _rows(root, split, scenario):
            if taken >= share:
                break
            if chosen is not None and (scenario, row["index"]) not in chosen:
                continue
            try:
                ep = load_episode(root, row)
            except DatasetError as exc:
                raise DetectorError(str(exc)) from None
            used.add(int(row["index"]))
            steps = range(0, len(ep.speed), stride) if chosen is None else chosen[(scenario, row["index"])]
            for t in steps:
                if taken >= share:
                    break
                px, m = ep.boxes_at(t)
                drawn = px.mean(axis=1) if len(px) else np.zeros((0, 2))
                out_frames.append(to_gray(ep.frames[t]))
                out_scenario.append(k)
                out_boxes.append(Boxes(
                    drawn_px=drawn.astype(np.float64), true_px=g.to_pixels(m[:, :2]).reshape(-1, 2),
                    true_m=m[:, :2].astype(np.float64), size_m=m[:, 2:4].astype(np.float64),
                    heading=m[:, 4].astype(np.float64), expected=expected(drawn, g.width, g.height),
                ))
                taken += 1
        if taken < share:
            raise DetectorError(f"{root} holds {taken} usable {scenario}/{split} frames, {share} needed; "
                                "collect more episodes")
    return FrameSet(split, np.stack(out_frames), np.array(out_scenario), tuple(scenarios), geometries, tuple(out_boxes),
                    tuple(sorted(used)))
