"""Viewpoint augmentation in the training loop (`train-e2e --viewpoint SHARE`).

`e2e_viewpoint.augment` displaces a batch seen through one camera geometry; a training batch
mixes scenarios whose ego sits at different places in the frame (highway: 0.3 of the width,
roundabout and racetrack: the centre). `Displacer` groups a batch's samples by their scenario's
geometry and displaces each group with the same generator, so a run stays deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from steerbench.sim.scenarios import get_scenario
from steerbench.sim.types import CameraConfig

from .e2e_viewpoint import Viewpoint, WarpGeometry, augment


@dataclass(frozen=True)
class Displacer:
    """Displaces training batches: `geometry[k]` is the frame geometry of scenario k, `scenario`
    the scenario number of every sample of the dataset (its position in `ImitationDataset.index`)."""

    viewpoint: Viewpoint
    geometry: tuple[WarpGeometry, ...]
    scenario: np.ndarray  # (samples,) int

    @classmethod
    def for_dataset(cls, root: Path, scenarios: Sequence[str], scenario_of_sample: Sequence[str],
                    viewpoint: Viewpoint) -> "Displacer":
        """From a dataset's manifest (its camera) and each sample's scenario name."""
        camera = json.loads((Path(root) / "manifest.json").read_text())["env"]["camera"]
        names = list(dict.fromkeys(scenarios))
        geometry = tuple(WarpGeometry.from_camera(CameraConfig(
            width=int(camera["width"]), height=int(camera["height"]), scaling=float(camera["scaling"]),
            centering=tuple(camera.get("centering") or get_scenario(name).centering))) for name in names)
        number = {name: k for k, name in enumerate(names)}
        return cls(viewpoint, geometry, np.array([number[s] for s in scenario_of_sample], dtype=np.int64))

    def __call__(self, frames: torch.Tensor, speed: torch.Tensor, steering: torch.Tensor, positions: np.ndarray,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's frames and steering labels with a share of its samples displaced;
        `positions` are its samples' positions in the dataset."""
        frames, steering = frames.clone(), steering.clone()
        groups = self.scenario[np.asarray(positions, dtype=np.int64)]
        for k in np.unique(groups):
            rows = torch.from_numpy(np.flatnonzero(groups == k))
            frames[rows], steering[rows] = augment(frames[rows], speed[rows].float(), steering[rows].float(),
                                                   self.geometry[k], gen, self.viewpoint)
        return frames, steering
