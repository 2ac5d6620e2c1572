"""The lane model's frames: which frames of a `steerbench collect` dataset it trains and is
measured on, with their lane labels (docs/dataset.md "Lane labels").

Order, as the learned detector's (perception/detector_data.py): the scenarios in the order
given, within a scenario its episodes by index and their steps in order, every `stride`-th
step. Train frames: all of them, or with a budget an equal share per scenario (the first ones
one more while it does not divide), an error when a scenario holds less. Held-out frames: at
most a share of the budget per scenario, what the dataset holds (they are collected separately).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from steerbench.sim.composition import Composition, CompositionError
from steerbench.sim.dataset import LANE_LABELS_VERSION, DatasetError, DatasetIndex, load_episode
from steerbench.sim.episodes import DAGGER
from steerbench.sim.scenarios import SUITE, get_scenario

from .classical import to_gray
from .detector_data import camera_of, composed_steps, geometry_for, policy_hz_of, shares
from .lane_model import LaneModelError
from .learned import DetectorError
from .odometry import turned
from .types import FrameGeometry

RolloutSteps = dict[tuple[str, int], list[int]]  # (scenario, episode index) -> steps, maybe repeated

NO_LABELS = ("{root} was collected without lane labels (before steerbench collect wrote them); "
             "re-collect it with steerbench collect")
OLD_LABELS = ("{root}: episode {path} has lane labels of version {version} (version {current} bridges the "
              "roundabout's joins, sim.dataset.LANE_LABELS_VERSION); re-collect it with steerbench collect "
              "into another --out")


@dataclass(frozen=True)
class LaneFrameSet:
    """Grey frames of one split with their lane labels."""

    split: str
    frames: np.ndarray  # (N, H, W) uint8 grey
    scenario: np.ndarray  # (N,) index into `scenarios`
    scenarios: tuple[str, ...]
    geometries: tuple[FrameGeometry, ...]  # one per scenario
    s: np.ndarray  # (K,) [m] arc lengths of the samples
    centres: np.ndarray  # (N, 3, K, 2) float32 ego frame [m], NaN: no sample
    valid: np.ndarray  # (N, 3) bool
    width: np.ndarray  # (N, 3) float32 [m], NaN where not valid
    command: np.ndarray  # (N,) int64 navigation command (index into get_scenario(name).commands)
    episodes: tuple[int, ...] = ()  # dataset indices of the episodes the frames come from
    turned: np.ndarray | None = None  # (N,) float32 [rad] dead-reckoned heading since the episode began

    def __post_init__(self) -> None:
        if self.turned is None:  # a set made by hand (tests): no turn
            object.__setattr__(self, "turned", np.zeros(len(self.frames), np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def ego_px(self) -> np.ndarray:
        """(N, 2) each frame's ego pixel (its scenario's geometry)."""
        return np.stack([g.ego_px for g in self.geometries])[self.scenario].astype(np.float32)


def rows_of(root: Path, split: str, scenario: str | None = None) -> list[dict]:
    """The index rows of `split` (and `scenario`), by index; LaneModelError for a missing or corrupt index."""
    root = Path(root)
    if not (root / "index.jsonl").exists():
        raise LaneModelError(f"{root} is not a steerbench dataset (no index.jsonl)")
    try:
        rows = DatasetIndex(root).rows
    except DatasetError as exc:
        raise LaneModelError(str(exc)) from None
    return sorted((r for r in rows if r["split"] == split and (scenario is None or r["scenario"] == scenario)),
                  key=lambda r: r["index"])


def scenarios_of(root: Path, split: str = "train") -> tuple[str, ...]:
    """The scenarios `split` holds episodes of, in the suite's order."""
    present = {r["scenario"] for r in rows_of(root, split)}
    return tuple(s for s in SUITE if s in present)


def select_lane_frames(root: Path, split: str, scenarios: Sequence[str], frames: int | None, stride: int = 1,
                       strict: bool = True, composition: Composition | None = None,
                       rollouts: bool = False, rollout_steps: RolloutSteps | None = None) -> LaneFrameSet:
    """The frames of `split` in the module docstring's order: all (`frames` None) or a share of
    `frames` per scenario, exactly (`strict`) or at most; with a `composition` (and `frames`)
    the frames of that mix (perception.detector_data.composed_steps). With `rollouts`, the
    budget is of the collected episodes and every DAgger rollout (sim.episodes.DAGGER) in the
    data comes on top, whole, or with `rollout_steps` the steps it lists of the rollouts it
    lists, in its order, a step listed twice taken twice (steerbench.harness.lane_dagger)."""
    root = Path(root)
    try:
        camera, dt = camera_of(root), 1.0 / policy_hz_of(root)
        chosen = (None if composition is None or frames is None
                  else composed_steps(root, split, scenarios, frames, stride, composition))
    except (DetectorError, CompositionError) as exc:
        raise LaneModelError(str(exc)) from None
    geometries = tuple(geometry_for(camera, s) for s in scenarios)
    budget = shares(frames, scenarios) if frames is not None else {s: None for s in scenarios}
    cols: dict[str, list] = {k: [] for k in ("frames", "scenario", "centres", "valid", "width", "command", "turned")}
    grid: list[np.ndarray] = []
    used = set()
    for k, (scenario, share) in enumerate(budget.items()):
        rows = rows_of(root, split, scenario)
        on_policy = [rollouts and DAGGER.holds(split, r["index"]) for r in rows]
        planned = [(row, steps, True) for row, steps in
                   _budgeted([r for r, o in zip(rows, on_policy) if not o], share, stride, chosen, scenario)]
        planned += [(row, steps, False) for row, steps in
                    _listed([r for r, o in zip(rows, on_policy) if o], scenario, rollout_steps)]
        taken = 0
        for row, steps, budgeted in planned:
            ep = _labelled_episode(root, row, grid)
            steps = np.arange(0, len(ep.speed), stride) if steps is None else steps
            used.add(int(row["index"]))
            cols["frames"] += [to_gray(ep.frames[t]) for t in steps]
            cols["scenario"] += [k] * len(steps)
            for key, values in (("centres", ep.lane_centres), ("valid", ep.lane_valid), ("width", ep.lane_width),
                                ("command", ep.command), ("turned", turned(ep.speed, ep.executed[:, -1], dt))):
                cols[key].append(values[steps])
            taken += len(steps) if budgeted else 0
        _check_taken(root, split, scenario, share, taken, strict)
    if not cols["frames"]:
        raise LaneModelError(f"{root} holds no {split} frames of {', '.join(scenarios)}; collect them with "
                             f"steerbench collect --split {split}")
    return LaneFrameSet(split, np.stack(cols["frames"]), np.asarray(cols["scenario"], np.int64), tuple(scenarios),
                        geometries, np.asarray(grid[0], np.float32), np.concatenate(cols["centres"]).astype(np.float32),
                        np.concatenate(cols["valid"]).astype(bool), np.concatenate(cols["width"]).astype(np.float32),
                        command=np.concatenate(cols["command"]).astype(np.int64), episodes=tuple(sorted(used)),
                        turned=np.concatenate(cols["turned"]).astype(np.float32))


def _budgeted(rows: list[dict], share: int | None, stride: int,
              chosen: dict[tuple[str, int], list[int]] | None, scenario: str) -> list[tuple[dict, np.ndarray | None]]:
    """Which steps of which `rows` a scenario's `share` takes, in order (None: every `stride`-th
    step of the episode); reads the episodes' lengths from the index."""
    plan, taken = [], 0
    for row in rows:
        if share is not None and taken >= share:
            break
        if chosen is not None and (scenario, row["index"]) not in chosen:
            continue
        steps = (np.arange(0, int(row["steps"]), stride) if chosen is None
                 else np.asarray(chosen[(scenario, row["index"])], dtype=np.int64))
        if share is not None:
            steps = steps[:share - taken]
        elif chosen is None:
            steps = None
        plan.append((row, steps))
        taken += int(row["steps"]) if steps is None else len(steps)
    return plan


def _listed(rows: list[dict], scenario: str,
            steps: RolloutSteps | None) -> list[tuple[dict, np.ndarray | None]]:
    """The rollouts of `rows` with their steps: all of them whole (`steps` None), else those listed."""
    if steps is None:
        return [(row, None) for row in rows]
    return [(row, np.asarray(steps[(scenario, int(row["index"]))], np.int64)) for row in rows
            if (scenario, int(row["index"])) in steps]


def _labelled_episode(root: Path, row: dict, grid: list[np.ndarray]):
    """The episode of `row`; LaneModelError when it cannot be read, has no lane labels or older
    ones, or samples its lanes at other arc lengths than the first one (`grid` holds that one)."""
    try:
        ep = load_episode(root, row)
    except DatasetError as exc:
        raise LaneModelError(str(exc)) from None
    if ep.lane_centres is None:
        raise LaneModelError(NO_LABELS.format(root=root))
    version = row.get("lane_labels", 1)
    if version != LANE_LABELS_VERSION:
        raise LaneModelError(OLD_LABELS.format(root=root, path=row["path"], version=version,
                                               current=LANE_LABELS_VERSION))
    if not grid:
        grid.append(ep.lane_s)
    elif not np.array_equal(grid[0], ep.lane_s):
        raise LaneModelError(f"{root}: chunk {row['path']} has other lane sample arc lengths")
    return ep


def _check_taken(root: Path, split: str, scenario: str, share: int | None, taken: int, strict: bool) -> None:
    if strict and share is None and not taken:
        raise LaneModelError(f"{root} holds no {scenario}/{split} episodes; collect them with steerbench collect "
                             "or leave the scenario out")
    if strict and share is not None and taken < share:
        raise LaneModelError(f"{root} holds {taken} usable {scenario}/{split} frames, {share} needed; "
                             "collect more episodes or ask for fewer frames")


def joined(base: LaneFrameSet, others: Sequence[LaneFrameSet]) -> LaneFrameSet:
    """`base` followed by the frames of `others` (train frames of other datasets: other road
    layouts), their scenarios mapped onto base's; LaneModelError for a scenario base lacks, or a
    frame geometry or lane sampling other than base's."""
    parts = [base]
    for other in others:
        try:
            remap = np.array([base.scenarios.index(s) for s in other.scenarios], np.int64)
        except ValueError:
            raise LaneModelError(f"extra lane data of {', '.join(other.scenarios)}: the run trains only "
                                 f"{', '.join(base.scenarios)}") from None
        if any(base.geometries[k] != g for k, g in zip(remap, other.geometries)) or not np.array_equal(base.s, other.s):
            raise LaneModelError("extra lane data was collected with another camera or lane sampling than --data")
        parts.append(dataclasses.replace(other, scenario=remap[other.scenario]))
    if len(parts) == 1:
        return base
    cat = {key: np.concatenate([getattr(p, key) for p in parts])
           for key in ("frames", "scenario", "centres", "valid", "width", "command", "turned")}
    return dataclasses.replace(base, **cat)


def by_name(data: LaneFrameSet, names: Sequence[str]) -> LaneFrameSet:
    """`data` with each frame's command the position of its name in `names` (its scenario's
    command names, sim.scenarios), instead of its index among its scenario's commands."""
    table = [np.array([list(names).index(n) for n in get_scenario(s).commands], np.int64) for s in data.scenarios]
    command = np.array([table[k][c] for k, c in zip(data.scenario, data.command)], np.int64)
    return dataclasses.replace(data, command=command)
