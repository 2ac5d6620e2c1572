"""The learned lane model: a small CNN that reads the lane labels of docs/dataset.md off one frame.

Input: the newest frame, grey, normalised as the learned detector's (minus the frame's median
grey, / 64), plus two coordinate channels: each pixel's place relative to the ego's pixel, in
metres / 32 (the ego sits at 30% of the width on highway and merge and in the middle elsewhere;
without them a network that sees no scenario name could not tell one from the other).
Six 3 x 3 convolutions with batch norm and ReLU (strides 2, 2, 1, 2, 1, 2: 1/16 of the frame,
a 4 x 8 grid for 64 x 128 frames; the stride-2 stem's kernel still sees every pixel of a 1 px
marking), a 1 x 1 convolution to 16 channels, then two fully
connected layers (512 -> 128 -> outputs): the lanes are long curves across the whole frame,
so the last layers are global and keep where things are (a pooled feature would not).
With `commands` > 0 the navigation command's one-hot (all zeros for a command outside
[0, commands)) joins the 512 features before the hidden layer: the ego lane's label follows the
route through junctions, and only the command says which branch that is. With `branched`, each
command has a fully connected head of its own on the shared features, and the command picks it.
With `odometry`, the ego's dead-reckoned heading since the episode began (perception/odometry.py,
radians / pi) joins the features too: which roundabout exit is the commanded one depends on how
far round the ring the car has come, which one frame does not show.

Output, for each of the 3 lanes (left, ego, right; rows as `planning.lane_labels`) and each of
the label's K arc lengths `s` (-5 to 60 m every 2.5 m): the sample's x - s and y in the ego
frame [m] (x ahead, y right: a curve shortens x against s, so x is regressed too) and a logit
that the sample exists (the lane ends, or leaves the labelled range); per lane a validity
logit (the lane exists abreast of the ego) and its width [m]. The last layer's bias starts the
lanes straight ahead 4 m apart and 4 m wide, highway-env's lane, the ego's valid.

Checkpoints (from `steerbench train-lanes`) hold the state dict and plain configuration and
load with `torch.load(weights_only=True)`; every problem with one is a one-line `LaneModelError`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from steerbench.sim.errors import SteerbenchError

from .classical import newest, to_gray
from .lane_types import LaneCurve, LaneEstimate
from .learned import NORM_SCALE, episode_torch, parameter_count
from .training import network_from, read_model_checkpoint
from .types import FrameGeometry

__all__ = ["CHECKPOINT_FORMAT", "LaneModelError", "LaneNet", "LaneNetConfig", "LanePrediction", "LearnedLanes",
           "build_lane_network", "load_lane_checkpoint", "load_lane_model", "parameter_count"]

CHECKPOINT_FORMAT = 1
LANES = 3  # left, ego, right (planning.lane_labels LEFT, EGO, RIGHT)
EGO = 1
COORD_SCALE_M = 32.0  # [m] the coordinate channels are metres from the ego / this
DEFAULT_WIDTH_M = 4.0  # [m] highway-env's lane width: where the untrained width and spacing start


class LaneModelError(SteerbenchError, ValueError):
    """A missing, corrupt or incompatible lane-model checkpoint, or unusable lane data (one line)."""


@dataclass(frozen=True)
class LaneNetConfig:
    """The network's shape and the samples it predicts; saved in every checkpoint."""

    s: tuple[float, ...]  # [m] arc lengths of the samples (the dataset's lane_s)
    channels: tuple[int, int, int, int] = (16, 24, 32, 48)  # widths at 1/2, 1/4, 1/8, 1/16
    squeeze: int = 16  # channels of the 1 x 1 convolution before the fully connected layers
    hidden: int = 128  # width of the hidden fully connected layer
    grid: tuple[int, int] = (4, 8)  # (rows, columns) the last feature map is pooled to
    commands: int = 0  # navigation commands the network is conditioned on (one-hot); 0: none
    branched: bool = False  # one fully connected head per command, the command picks it (else the one-hot joins)
    odometry: bool = False  # the dead-reckoned heading since the episode began joins the features (radians / pi)
    # the commands by name ("follow", "exit 1 (east)", ...; `commands` of them): a scenario's command
    # index is mapped to its name's position (LearnedLanes.command_for); empty: the index is the command
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.s) < 3 or len(self.channels) != 4 or min(self.channels) < 1 or self.squeeze < 1 \
                or self.hidden < 1 or len(self.grid) != 2 or min(self.grid) < 1 or self.commands < 0:
            raise ValueError("s needs 3 or more samples; channels 4 positive widths; squeeze, hidden, grid positive; "
                             "commands 0 or more")
        if self.branched and self.commands < 1:
            raise ValueError("a branched lane network needs 1 or more commands")
        if self.names and len(self.names) != self.commands:
            raise ValueError(f"{len(self.names)} command names for {self.commands} commands")

    @property
    def k(self) -> int:
        """Samples per lane."""
        return len(self.s)

    def as_dict(self) -> dict:
        """Plain (JSON-ready) form, as checkpoints store it."""
        d = asdict(self)
        d.update(s=[float(v) for v in self.s], channels=list(self.channels), grid=list(self.grid),
                 names=list(self.names))
        if not self.names:  # as checkpoints from before the names store it
            del d["names"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LaneNetConfig":
        """Back from `as_dict`; a dict without `commands` (every checkpoint from before the
        command input) is a network without it (0), one without `branched` or `odometry` has neither."""
        return cls(s=tuple(float(v) for v in d["s"]), channels=tuple(int(c) for c in d["channels"]),
                   squeeze=int(d["squeeze"]), hidden=int(d["hidden"]), grid=tuple(int(g) for g in d["grid"]),
                   commands=int(d.get("commands", 0)), branched=bool(d.get("branched", False)),
                   odometry=bool(d.get("odometry", False)), names=tuple(str(n) for n in d.get("names", ())))


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class LaneNet(nn.Module):
    """(B, H, W) uint8 grey frames, (B, 2) ego pixels and, with `config.commands` > 0, (B,) int
    navigation commands -> dict of (B, 3, ...) lane outputs: `dx` and `y` (B, 3, K) [m],
    `exists` (B, 3, K) logits, `valid` (B, 3) logits, `width` (B, 3) [m]."""

    def __init__(self, config: LaneNetConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        self.features = nn.Sequential(
            _conv(3, c1, 2), _conv(c1, c2, 2), _conv(c2, c2), _conv(c2, c3, 2), _conv(c3, c3),
            _conv(c3, c4, 2), nn.Conv2d(c4, config.squeeze, 1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(config.grid), nn.Flatten())
        features = config.squeeze * config.grid[0] * config.grid[1] + int(config.odometry)
        if config.branched:  # as conditional imitation learning's branches (Codevilla et al., ICRA 2018)
            self.heads = nn.ModuleList(self._head(features) for _ in range(config.commands))
        else:
            self.head = self._head(features + config.commands)

    def _head(self, features: int) -> nn.Sequential:
        """features -> hidden -> the lanes' outputs, its last bias set to straight lanes 4 m apart."""
        k, per_lane = self.config.k, 3 * self.config.k + 2
        head = nn.Sequential(nn.Linear(features, self.config.hidden), nn.ReLU(inplace=True),
                             nn.Linear(self.config.hidden, LANES * per_lane))
        with torch.no_grad():
            bias = head[-1].bias.view(LANES, per_lane)
            bias.zero_()
            for lane in range(LANES):
                bias[lane, k:2 * k] = (lane - EGO) * DEFAULT_WIDTH_M  # y: straight lanes 4 m apart
                bias[lane, 2 * k:3 * k] = 2.0  # samples exist
            bias[EGO, 3 * k] = 2.0  # the ego's lane exists
            bias[:, -1] = DEFAULT_WIDTH_M
        return head

    def inputs(self, frames: torch.Tensor, ego_px: torch.Tensor, scaling: float) -> torch.Tensor:
        """uint8 (B, H, W) + (B, 2) ego pixels -> float (B, 3, H, W): normalised grey, then the
        pixel centres' offsets from the ego along u (ahead) and v (right), in metres / 32."""
        b, h, w = frames.shape
        x = frames.float().flatten(1)
        road = x.median(dim=1, keepdim=True).values
        grey = ((x - road) / NORM_SCALE).view(b, 1, h, w)
        ego = ego_px.to(grey.dtype).view(b, 2, 1, 1)
        u = torch.arange(w, dtype=grey.dtype, device=grey.device).view(1, 1, 1, w) + 0.5
        v = torch.arange(h, dtype=grey.dtype, device=grey.device).view(1, 1, h, 1) + 0.5
        scale = 1.0 / (scaling * COORD_SCALE_M)
        return torch.cat([grey, ((u - ego[:, :1]) * scale).expand(b, 1, h, w),
                          ((v - ego[:, 1:]) * scale).expand(b, 1, h, w)], dim=1)

    def one_hot(self, command: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(B, commands) one-hot of the commands, all zeros for one outside [0, commands);
        ValueError without commands (or with another batch size)."""
        n = self.config.commands
        if command is None:
            raise ValueError(f"the lane network is conditioned on the navigation command ({n} commands); "
                             "pass the command of every frame")
        command = torch.as_tensor(command, device=like.device).reshape(-1)
        if len(command) != batch:
            raise ValueError(f"the lane network got {len(command)} commands for {batch} frames")
        return (command[:, None] == torch.arange(n, device=like.device)).to(like.dtype)

    def turn_input(self, turned: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(B, 1) the dead-reckoned heading since the episode began [rad] / pi; ValueError without it."""
        if turned is None:
            raise ValueError("the lane network takes the ego's dead-reckoned heading since the episode began "
                             "(perception/odometry.py); pass `turned` for every frame")
        turned = torch.as_tensor(turned, device=like.device, dtype=like.dtype).reshape(-1)
        if len(turned) != batch:
            raise ValueError(f"the lane network got {len(turned)} headings for {batch} frames")
        return (turned / math.pi)[:, None]

    def forward(self, frames: torch.Tensor, ego_px: torch.Tensor, scaling: float,
                command: torch.Tensor | None = None, turned: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The lane outputs of a batch (class docstring); `command` (B,) int, required when the
        network is conditioned on it (`config.commands` > 0), ignored when not; `turned` (B,)
        [rad], required with `config.odometry`, ignored without."""
        x = self.features(self.inputs(frames, ego_px, scaling))
        if self.config.odometry:
            x = torch.cat([x, self.turn_input(turned, len(x), x)], dim=1)
        if self.config.branched:
            out = self._branch(x, self.one_hot(command, len(x), x))
        elif self.config.commands:
            out = self.head(torch.cat([x, self.one_hot(command, len(x), x)], dim=1))
        else:
            out = self.head(x)
        k = self.config.k
        out = out.view(-1, LANES, 3 * k + 2)
        return {"dx": out[..., :k], "y": out[..., k:2 * k], "exists": out[..., 2 * k:3 * k],
                "valid": out[..., 3 * k], "width": out[..., 3 * k + 1]}

    def _branch(self, x: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Each frame's output from its command's head; the heads' mean for a command outside
        [0, commands) (all-zero one-hot: no branch is preferred)."""
        every = torch.stack([head(x) for head in self.heads], dim=1)  # (B, commands, outputs)
        weights = torch.where(one_hot.sum(dim=1, keepdim=True) > 0, one_hot,
                              torch.full_like(one_hot, 1.0 / one_hot.shape[1]))
        return (weights.unsqueeze(-1) * every).sum(dim=1)


def centres(out: dict[str, torch.Tensor], s: torch.Tensor) -> torch.Tensor:
    """(B, 3, K, 2) predicted sample positions [m], ego frame (x = s + dx)."""
    return torch.stack([s.view(1, 1, -1) + out["dx"], out["y"]], dim=-1)


@dataclass(frozen=True)
class LanePrediction:
    """One frame's lanes as the labels have them (docs/dataset.md), ego frame [m]."""

    s: np.ndarray  # (K,) arc lengths of the samples
    centres: np.ndarray  # (3, K, 2) x, y of each sample; NaN where the sample is predicted not to exist
    valid: np.ndarray  # (3,) bool: the lane exists abreast of the ego
    valid_prob: np.ndarray  # (3,) its probability
    width: np.ndarray  # (3,) [m], NaN where not valid

    def estimate(self, behind_m: float = 5.0) -> LaneEstimate:
        """The same lanes as a `LaneEstimate` (perception/lane_types.py): each valid lane's
        existing samples from `behind_m` behind, up to where the lane turns 45 degrees from the
        ego's heading, fitted with a quadratic y(x); the ego's offset,
        heading and curvature from the ego lane's. Invalid when the ego lane is not."""
        curves = []
        for lane in (EGO, EGO - 1, EGO + 1):
            if not self.valid[lane]:
                continue
            pts = _along(self.centres[lane][(self.s >= -behind_m)])
            if len(pts) < 3:
                continue
            coef = np.polynomial.polynomial.polyfit(pts[:, 0], pts[:, 1], 2)
            curves.append(LaneCurve(offset=lane - EGO, coef=coef, x_range=(float(pts[:, 0].min()),
                                                                           float(pts[:, 0].max())),
                                    inferred=False))
        if not curves or curves[0].offset != 0:
            return LaneEstimate(valid=False)
        c = curves[0].coef
        return LaneEstimate(valid=True, offset_m=float(-c[0]), heading=float(-np.arctan(c[1])),
                            width_m=float(self.width[EGO]), curvature=float(2 * c[2] / (1 + c[1] ** 2) ** 1.5),
                            confidence=float(self.valid_prob[EGO]), lanes=tuple(curves))


def _along(pts: np.ndarray, max_slope: float = 1.0) -> np.ndarray:
    """The first run of existing samples (from behind the ego), cut where the lane stops going ahead
    within 45 degrees of the ego's heading (`max_slope`, as the pixel detector's traces): a lane
    that turns across the view is no function y(x)."""
    ok = np.isfinite(pts[:, 0])
    if not ok.any():
        return pts[:0]
    start = int(np.argmax(ok))
    end = start + 1
    while end < len(pts) and ok[end]:
        dx, dy = pts[end] - pts[end - 1]
        if dx <= 0 or abs(dy) > max_slope * dx:
            break
        end += 1
    return pts[start:end]


def decode(out: dict[str, torch.Tensor], s: np.ndarray) -> list[LanePrediction]:
    """Network outputs (a batch) -> one `LanePrediction` per frame."""
    xy = centres(out, torch.as_tensor(s, dtype=out["y"].dtype, device=out["y"].device)).detach().cpu().numpy()
    exists = (out["exists"] > 0).detach().cpu().numpy()
    prob = torch.sigmoid(out["valid"]).detach().cpu().numpy()
    width = out["width"].detach().cpu().numpy()
    result = []
    for b in range(len(xy)):
        valid = prob[b] > 0.5
        c = np.where((exists[b] & valid[:, None])[..., None], xy[b], np.nan)
        result.append(LanePrediction(s=np.asarray(s, np.float64), centres=c.astype(np.float64), valid=valid,
                                     valid_prob=prob[b].astype(np.float64),
                                     width=np.where(valid, width[b], np.nan).astype(np.float64)))
    return result


def network_command(known: Sequence[str], names: Sequence[str], command: int) -> int:
    """A network's command for a scenario's command `command` (its index in `names`, the scenario's
    command names): with `known`, the network's command names, the name's position there (-1, the
    heads' mean, for a name it never saw or an index outside `names`); without, the index itself."""
    if not known:
        return command
    return list(known).index(names[command]) if 0 <= command < len(names) and names[command] in known else -1


def load_lane_checkpoint(path: str | Path) -> dict:
    """A `train-lanes` checkpoint, read with `weights_only=True`; LaneModelError otherwise."""
    return read_model_checkpoint(path, "lanes", CHECKPOINT_FORMAT, LaneModelError, "lane-model",
                                 "lane-model checkpoint (train it with steerbench train-lanes)")


def build_lane_network(blob: dict, path: str | Path = "checkpoint") -> LaneNet:
    """The network of a loaded checkpoint, in eval mode; LaneModelError when the weights do not fit."""
    return network_from(blob, lambda c: LaneNet(LaneNetConfig.from_dict(c)), LaneModelError, path, "lane network")


class LearnedLanes:
    """Lanes from a `train-lanes` checkpoint (or a network, for training and tests).

    `geometry`: the camera of the frames to come; it must have the frame size and scale the
    network was trained on. None: the training camera's size and scale with `FrameGeometry`'s
    default centering (0.3, 0.5) (highway and merge; the other scenarios centre the ego, so pass
    their geometry)."""

    def __init__(self, net: LaneNet, frame: dict, geometry: FrameGeometry | None = None, device: str = "cpu",
                 source: str = "the lane network") -> None:
        height, width, scaling = int(frame["height"]), int(frame["width"]), float(frame["scaling"])
        g = geometry or FrameGeometry(width=width, height=height, scaling=scaling)
        if (g.width, g.height) != (width, height):
            raise LaneModelError(f"{source} was trained on {width}x{height} frames; "
                                 f"the geometry says {g.width}x{g.height}")
        if abs(g.scaling - scaling) > 1e-6:
            raise LaneModelError(f"{source} was trained at {scaling:g} px/m; the geometry says {g.scaling:g} px/m")
        self.net = net.to(device).eval()
        self.geometry = g
        self.device = device
        self.s = np.asarray(net.config.s, np.float64)

    @property
    def commands(self) -> int:
        """The navigation commands the network is conditioned on (0: none; it ignores a command)."""
        return self.net.config.commands

    def command_for(self, names: Sequence[str], command: int) -> int:
        """`network_command(self.net.config.names, names, command)`."""
        return network_command(self.net.config.names, names, command)

    @property
    def odometry(self) -> bool:
        """Whether the network takes the dead-reckoned heading since the episode began (`turned`)."""
        return self.net.config.odometry

    def predict(self, frames: np.ndarray, command: int | None = None, turned: float | None = None) -> LanePrediction:
        """The lanes of the newest frame of a stack ((stack, H, W[, 3]) or a single frame), made
        as in every episode (`episode_torch`: one thread, deterministic). `command`: the
        scenario's navigation command (its index in `get_scenario(name).commands`), required by
        a network conditioned on it (ValueError without), ignored by one that is not; `turned`
        [rad] likewise for a network with `odometry` (perception/odometry.py)."""
        with episode_torch():
            commands = None if command is None else np.array([command], np.int64)
            headings = None if turned is None else np.array([turned], np.float32)
            return self.predict_batch(to_gray(newest(np.asarray(frames)))[None], commands, headings)[0]

    def estimate(self, frames: np.ndarray, command: int | None = None, turned: float | None = None) -> LaneEstimate:
        """`predict(frames, command, turned).estimate()`: the lanes as the pixel lane detector returns them."""
        return self.predict(frames, command, turned).estimate()

    @torch.no_grad()
    def predict_batch(self, frames: np.ndarray, commands: np.ndarray | None = None,
                      turned: np.ndarray | None = None) -> list[LanePrediction]:
        """(B, H, W) grey uint8 frames, all with this geometry, and their (B,) navigation commands
        and headings (as `predict`'s) -> one prediction per frame."""
        frames = np.asarray(frames)
        g = self.geometry
        if frames.ndim != 3 or frames.shape[1:] != (g.height, g.width):
            raise ValueError(f"the lane model expects (B, {g.height}, {g.width}) grey frames, got {frames.shape}")
        if self.commands and commands is None:
            raise ValueError(f"this lane model is conditioned on the navigation command ({self.commands} commands); "
                             "pass the command")
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.uint8)).to(self.device)
        ego = torch.as_tensor(np.tile(g.ego_px, (len(frames), 1)), dtype=torch.float32, device=self.device)
        command = None if commands is None or not self.commands else \
            torch.as_tensor(np.asarray(commands, np.int64), device=self.device)
        heading = None if turned is None else torch.as_tensor(np.asarray(turned, np.float32), device=self.device)
        return decode(self.net(x, ego, g.scaling, command, heading), self.s)


def load_lane_model(path: str | Path, geometry: FrameGeometry | None = None, device: str = "cpu") -> LearnedLanes:
    """The predictor of a `train-lanes` checkpoint (`checkpoints/best.pt`); LaneModelError, one
    line, for a missing, corrupt or incompatible file."""
    blob = load_lane_checkpoint(path)
    frame = blob.get("frame")
    try:
        frame = {"height": int(frame["height"]), "width": int(frame["width"]), "scaling": float(frame["scaling"])}
    except (KeyError, TypeError, ValueError):
        raise LaneModelError(f"{path} has no valid frame description") from None
    return LearnedLanes(build_lane_network(blob, path), frame, geometry, device, source=str(path))
