"""The end-to-end contestant: drives with a checkpoint from `steerbench train-e2e`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from steerbench.perception.learned import episode_torch
from steerbench.sim.types import CameraConfig, EpisodeInfo, Observation

from .base import AgentInfo
from .e2e_train import load_network


@dataclass(frozen=True)
class E2EOptions:
    """The e2e agent's options; `checkpoint` is required (ValueError without it)."""

    checkpoint: str = ""  # path to best.pt or last.pt of a train-e2e run (required)
    device: str = "cpu"  # torch device for inference

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("the e2e agent needs a checkpoint: --agent-opt e2e.checkpoint=PATH")


class E2EAgent:
    """Drives with a `steerbench train-e2e` checkpoint: frames, speed and command in, steering out
    (and acceleration for a network trained with `--full`).

    The weights are loaded when it is built (`weights_only`: no code is unpickled); a missing or
    unreadable checkpoint raises TrainingError then (AgentError when built through AgentSpec). Its
    frames must match the training camera (`check_camera`).
    """

    Options = E2EOptions
    info = AgentInfo("e2e", "pixels", "PilotNet-class network cloned from the expert (train-e2e)")

    def __init__(self, options: E2EOptions) -> None:
        self.net, self.config = load_network(Path(options.checkpoint))  # weights_only: never unpickles code
        self.net.to(options.device)
        self.device = options.device
        self.checkpoint = options.checkpoint

    def check_camera(self, camera: CameraConfig) -> None:
        """Called by the harness before the first episode: the network reads only the frames it
        was trained on, so another stack, size or colour is one error now, not one per episode."""
        c = self.config
        trained = _frames(c.stack, c.width, c.height, c.channels == 3)
        given = _frames(camera.stack, camera.width, camera.height, camera.color)
        if given != trained:
            raise ValueError(f"checkpoint {self.checkpoint} was trained on {trained}; this run's camera gives "
                             f"{given} (set --stack, --frame-size and --color as in training)")

    def reset(self, episode: EpisodeInfo) -> None:
        """Nothing to reset: the network sees only the current frame stack."""
        pass  # stateless: the frame stack carries the history

    @torch.no_grad()
    def act(self, obs: Observation) -> np.ndarray:
        """The network's action, deterministic (`episode_torch`). A one-output network gives
        `[0, steering]` (acceleration 0: in `steering` mode the cruise control replaces it); a two-output
        one `[acceleration, steering]`. ValueError when the frames' shape is not the training one."""
        c = self.config
        expected = (c.stack, c.height, c.width) + ((3,) if c.channels == 3 else ())
        if obs.frames.shape != expected:
            raise ValueError(f"checkpoint expects frames {expected}, got {obs.frames.shape}")
        with episode_torch():  # the same bits in every process (perception/learned.py)
            out = self.net(
                torch.from_numpy(np.ascontiguousarray(obs.frames))[None].to(self.device),
                torch.tensor([obs.speed], device=self.device), torch.tensor([obs.command], device=self.device),
            )[0].cpu().numpy()
        return np.array([0.0, out[0]]) if c.outputs == 1 else out.astype(np.float64)


def _frames(stack: int, width: int, height: int, color: bool) -> str:
    return f"{stack} frames of {width}x{height} {'RGB' if color else 'grayscale'}"
