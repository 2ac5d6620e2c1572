"""The end-to-end network: PilotNet-class CNN with speed fusion and a command-branched head.

Frames (a stack, grayscale or RGB) go through PilotNet's convolutional trunk (Bojarski et al.,
2016: three 5x5 stride-2 and two 3x3 convolutions), scaled to three sizes. The ego speed joins
after the trunk; the navigation command selects one of several output branches (conditional
imitation learning, Codevilla et al., 2018), so "turn left" and "turn right" from the same
pixels do not average into going straight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # name: (conv channels, fully connected widths)
    "S": ((12, 18, 24, 32, 32), (64, 32)),
    "M": ((24, 36, 48, 64, 64), (100, 50)),  # PilotNet's own widths
    "L": ((32, 48, 64, 96, 128), (256, 128)),
}
SPEED_SCALE = 30.0  # [m/s] speeds are divided by this before entering the network


@dataclass(frozen=True)
class NetConfig:
    """The network's shape, stored in every checkpoint: ValueError for an unknown size or a count < 1."""

    size: str = "M"  # S, M or L
    stack: int = 4  # frames per observation
    channels: int = 1  # 1 grayscale, 3 RGB
    height: int = 64
    width: int = 128
    commands: int = 3  # output branches
    outputs: int = 1  # 1: steering; 2: acceleration and steering (full mode)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        if min(self.stack, self.channels, self.commands, self.outputs) < 1:
            raise ValueError("stack, channels, commands and outputs must be >= 1")

    def as_dict(self) -> dict:
        """The fields as a plain dict (what a checkpoint stores under "config")."""
        return asdict(self)


class PilotNet(nn.Module):
    """The PilotNet-class network of the module docstring, built from a NetConfig."""

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        conv, fc = SIZES[config.size]
        layers, c_in = [], config.stack * config.channels
        for i, c_out in enumerate(conv):
            k, s = (5, 2) if i < 3 else (3, 1)
            layers += [nn.Conv2d(c_in, c_out, k, stride=s), nn.ELU()]
            c_in = c_out
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_feat = self.trunk(torch.zeros(1, config.stack * config.channels, config.height, config.width)).shape[1]
        self.fuse = nn.Sequential(
            nn.Linear(n_feat + 1, fc[0]), nn.ELU(), nn.Dropout(0.2), nn.Linear(fc[0], fc[1]), nn.ELU()
        )
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Linear(fc[1], 16), nn.ELU(), nn.Linear(16, config.outputs)) for _ in range(config.commands)
        )

    def forward(self, frames: torch.Tensor, speed: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
        """frames (B, stack, H, W[, 3]) uint8; speed (B,) m/s; command (B,) int -> (B, outputs) in [-1, 1]."""
        x = frames.float() / 255.0
        if x.dim() == 5:  # (B, stack, H, W, 3) -> (B, stack * 3, H, W)
            x = x.permute(0, 1, 4, 2, 3).flatten(1, 2)
        h = self.fuse(torch.cat([self.trunk(x), (speed.float() / SPEED_SCALE)[:, None]], dim=1))
        out = torch.stack([branch(h) for branch in self.branches], dim=1)  # (B, commands, outputs)
        idx = command.long()
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.commands):
            raise ValueError(f"command out of range [0, {self.config.commands}): {idx.tolist()}")
        return torch.tanh(out[torch.arange(len(idx)), idx])


def parameter_count(model: nn.Module) -> int:
    """Number of parameters of `model` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
