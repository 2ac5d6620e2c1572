"""Training samples for the end-to-end network, from a `steerbench collect` dataset.

Each sample is the observation the teacher saw (the frame stack rebuilt from the stored newest
frames), its speed and command, and the teacher's clean action as the target. Frames stay uint8
in memory (20k frames of 128 x 64 are 160 MB).

A sample list (`TrainConfig.samples`, `ImitationDataset.selected`) names the episodes to train on
and which of their steps; DAgger's replay buffer (harness/dagger.py) is one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from steerbench.sim.dataset import iter_episodes, stack_frames

from .errors import TrainingError


class ImitationDataset(Dataset):
    """The samples of a dataset's episodes (of `split`, or all), `stack` frames each; the target
    is the steering (`outputs=1`) or acceleration and steering (`outputs=2`)."""

    def __init__(self, root: Path, split: str | None = None, stack: int = 4, outputs: int = 1) -> None:
        if outputs not in (1, 2):
            raise ValueError("outputs must be 1 (steering) or 2 (acceleration and steering)")
        self.root = Path(root)
        self.episodes = list(iter_episodes(root, split))
        self.stack, self.outputs = stack, outputs
        pairs = [(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep.speed))]
        self.index = np.array(pairs, dtype=np.int64).reshape(-1, 2)  # (episode, step) of each sample

    def selected(self, path: Path) -> np.ndarray:
        """The samples a sample list keeps, as a mask over `index`: a JSON object whose `episodes`
        are `{"scenario", "split", "index", "steps"}`, `steps` a list of steps or "all"; an
        episode it does not name keeps none. TrainingError when the file cannot be read or names
        an episode or step this dataset lacks."""
        try:
            listed = json.loads(Path(path).read_text())["episodes"]
            picks = {(str(e["scenario"]), str(e["split"]), int(e["index"])):
                     e["steps"] if e["steps"] == "all" else [int(t) for t in e["steps"]] for e in listed}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrainingError(f"cannot read the sample list {path}: {exc}") from None
        keep = np.zeros(len(self.index), dtype=bool)
        found = {(ep.scenario, ep.split, ep.index): e for e, ep in enumerate(self.episodes)}
        for key, steps in picks.items():
            name = "/".join(map(str, key))
            if key not in found:
                raise TrainingError(f"sample list {path} names episode {name}, not in {self.root}")
            mine = np.flatnonzero(self.index[:, 0] == found[key])  # in step order: the index lists steps 0..T-1
            if steps != "all" and any(not 0 <= t < len(mine) for t in steps):
                raise TrainingError(f"sample list {path}: episode {name} has {len(mine)} steps")
            keep[mine if steps == "all" else mine[steps]] = True
        return keep

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        e, t = self.index[i]
        ep = self.episodes[e]
        frames = torch.from_numpy(np.ascontiguousarray(stack_frames(ep.frames, int(t), self.stack)))
        target = ep.action[t, 1:] if self.outputs == 1 else ep.action[t]
        speed, command = torch.tensor(float(ep.speed[t])), torch.tensor(int(ep.command[t]))
        return frames, speed, command, torch.from_numpy(target.copy())
