"""The learned vehicle detector: a small CenterNet-style CNN (Zhou et al., 2019, "Objects as Points").

Input: the newest frame of an observation, grey (RGB is converted as the classical detector
does), normalised inside the network by subtracting the frame's median grey (the road) and
dividing by 64, so a darker or brighter road shifts nothing. A small encoder-decoder
(`CenterNetSmall`, about 109k parameters: a 3 x 3 stride-2 stem, stages at 1/2, 1/4 and 1/8,
nearest-neighbour upsampling with concatenated skips back to 1/`stride`, every convolution
3 x 3 with batch norm and ReLU) ends in one shared 3 x 3 layer and a 1 x 1 convolution to the
seven channels of four heads on the output grid (stride 2: 64 x 32 cells for 128 x 64 frames):

* `heatmap` (1 channel): the probability that a vehicle's drawn centre falls in the cell;
* `offset` (2): from the cell's centre to the vehicle's true centre projected to pixels, in
  cells (so it also learns the renderer's systematic shift of a drawn car against its position);
* `size` (2): log of length and width over `REFERENCE_SIZE_M` (5 x 2 m, a car), so an
  untrained head already says "a car";
* `heading` (2): (sin 2θ, cos 2θ) of the heading relative to the ego; a box has no front, so θ
  and θ + π give the same target.

Decoding: sigmoid, peaks are cells equal to the 3 x 3 max-pool of the heatmap (the usual
CenterNet NMS), at least `score_threshold`; the box comes from the regression heads at the peak.
Peaks at the ego's own place (within `ego_radius_px` of the ego's pixel) are dropped, as the
classical detector does: the ego is drawn like any other car. Boxes whose centre lies within
`BORDER_PX` of the frame's edge are dropped too: `perception.metrics` does not expect them.

Checkpoints (from `steerbench train-detector`) hold the state dict and plain configuration and
load with `torch.load(weights_only=True)`; every problem with one is a one-line `DetectorError`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from steerbench.sim.errors import SteerbenchError

from .classical import newest, to_gray
from .metrics import BORDER_PX
from .training import network_from, read_model_checkpoint
from .types import Detection, FrameGeometry

NORM_SCALE = 64.0  # [grey levels] the frame minus its median grey is divided by this
REFERENCE_SIZE_M = (5.0, 2.0)  # [m] length, width that the size head predicts the log ratio to
CHECKPOINT_FORMAT = 1


@contextmanager
def episode_torch() -> Iterator[None]:
    """Torch as every episode runs it, in whichever process: one thread, deterministic algorithms.

    Why: how a float reduction is split among threads can change its last bits, and a network
    that steers turns those bits into another episode; an episode must not depend on whether it
    ran in the driver (torch's default pool, one thread per core) or in a worker. Deterministic
    algorithms are on with `warn_only`: an op without a deterministic kernel (some CUDA ones)
    warns rather than failing the episode. The caller's settings come back afterwards, so that
    training in the same process keeps its threads. It lives here, in the lowest layer that uses
    torch, for the networks of every layer above (and the harness's job functions).
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads != 1:
        torch.set_num_threads(1)
    if not deterministic:
        _set_deterministic(True, warn_only=True)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)
        if not deterministic:
            _set_deterministic(False, warn_only=warn_only)


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    # torch.use_deterministic_algorithms also imports torch._inductor's config (1.3 s, once per
    # process) to set a flag that only torch.compile reads; episodes compile nothing.
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


class DetectorError(SteerbenchError, ValueError):
    """A missing, corrupt or incompatible detector checkpoint, or unusable detector data (one line).

    Its own type because `perception` may not import upwards from `agents` (where TrainingError
    lives); `steerbench train-detector` reports it as a TrainingError, the agent registry wraps
    it in an AgentError, both one line."""


@dataclass(frozen=True)
class DetectorNetConfig:
    """The network's shape; saved in every checkpoint."""

    channels: tuple[int, int, int, int] = (16, 16, 32, 64)  # widths at 1/2 (stem), 1/2, 1/4, 1/8
    head: int = 16  # channels of the decoder at the output stride and of the shared head layer
    stride: int = 2  # output grid step [px]: 2 or 4

    def __post_init__(self) -> None:
        if self.stride not in (2, 4):
            raise ValueError(f"stride must be 2 or 4, got {self.stride}")
        if len(self.channels) != 4 or min(self.channels) < 1 or self.head < 1:
            raise ValueError("channels needs 4 positive widths and head must be positive")

    def as_dict(self) -> dict:
        """Plain (JSON-ready) form, as checkpoints store it."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorNetConfig":
        """Back from `as_dict`."""
        return cls(channels=tuple(d["channels"]), head=int(d["head"]), stride=int(d["stride"]))


HEADS = {"heatmap": 1, "offset": 2, "size": 2, "heading": 2}  # output channels, in this order


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class CenterNetSmall(nn.Module):
    """(B, H, W) uint8 grey frames -> dict of head maps, each (B, C, H / stride, W / stride).

    A 3 x 3 stride-2 stem (its kernel still sees every pixel of a one-pixel outline), stages at
    1/2, 1/4 and 1/8, nearest-neighbour upsampling with concatenated skips back to 1/stride, and
    one shared 3 x 3 layer before a 1 x 1 convolution to the 7 head channels."""

    def __init__(self, config: DetectorNetConfig = DetectorNetConfig()) -> None:
        super().__init__()
        self.config = config
        c_stem, c2, c4, c8 = config.channels
        self.down2 = nn.Sequential(_conv(1, c_stem, 2), _conv(c_stem, c2))
        self.down4 = nn.Sequential(_conv(c2, c4, 2), _conv(c4, c4))
        self.down8 = nn.Sequential(_conv(c4, c8, 2), _conv(c8, c8))
        if config.stride == 2:
            self.up4 = _conv(c8 + c4, c4)
            self.up_out = _conv(c4 + c2, config.head)
        else:
            self.up4 = _conv(c8 + c4, config.head)
        self.head = nn.Sequential(nn.Conv2d(config.head, config.head, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(config.head, sum(HEADS.values()), 1))
        with torch.no_grad():
            self.head[-1].bias.zero_()
            self.head[-1].bias[0] = -2.19  # CenterNet: the heatmap starts at p = 0.1

    @staticmethod
    def normalise(frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W) -> float (B, 1, H, W): minus each frame's median grey (the road), / 64."""
        x = frames.float().flatten(1)
        road = x.median(dim=1, keepdim=True).values
        return ((x - road) / NORM_SCALE).view(frames.shape[0], 1, *frames.shape[1:])

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 (B, H, W) frames -> the heads (heatmap logits, offset, size, heading) on the output grid."""
        x2 = self.down2(self.normalise(frames))
        x4 = self.down4(x2)
        x8 = self.down8(x4)
        y = self.up4(torch.cat([nn.functional.interpolate(x8, size=x4.shape[-2:], mode="nearest"), x4], dim=1))
        if self.config.stride == 2:
            y = self.up_out(torch.cat([nn.functional.interpolate(y, size=x2.shape[-2:], mode="nearest"), x2], dim=1))
        out = self.head(y)
        return dict(zip(HEADS, torch.split(out, list(HEADS.values()), dim=1)))


def parameter_count(model: nn.Module) -> int:
    """Number of weights."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class DecodeOptions:
    """How network outputs become detections."""

    score_threshold: float = 0.3  # peaks below this are not detections
    max_detections: int = 50  # per frame, highest scores first
    ego_radius_px: float = 4.0  # a peak this close to the ego's pixel is the ego


def decode(out: dict[str, torch.Tensor], geometry: FrameGeometry, stride: int,
           options: DecodeOptions) -> list[list[Detection]]:
    """Network outputs (a batch) -> detections per frame."""
    heat = torch.sigmoid(out["heatmap"][:, 0])
    peaks = heat == nn.functional.max_pool2d(heat[:, None], 3, stride=1, padding=1)[:, 0]
    heat = torch.where(peaks, heat, torch.zeros_like(heat))
    offset, size, heading = (out[k].detach().cpu().numpy() for k in ("offset", "size", "heading"))
    heat_np = heat.detach().cpu().numpy()
    ego = geometry.ego_px
    s = geometry.scaling
    result = []
    for b in range(heat_np.shape[0]):
        rows, cols = np.nonzero(heat_np[b] >= options.score_threshold)
        scores = heat_np[b, rows, cols]
        order = np.argsort(-scores, kind="stable")[: options.max_detections]
        dets = []
        for i in order:
            r, c = rows[i], cols[i]
            cell_px = (np.array([c, r]) + 0.5) * stride
            if np.linalg.norm(cell_px - ego) <= options.ego_radius_px:
                continue
            uv = (np.array([c, r]) + 0.5 + offset[b, :, r, c]) * stride
            if not (BORDER_PX <= uv[0] <= geometry.width - BORDER_PX
                    and BORDER_PX <= uv[1] <= geometry.height - BORDER_PX):
                continue  # perception.metrics does not expect a vehicle there
            length, width = (ref * float(np.exp(np.clip(v, -5.0, 5.0)))
                             for ref, v in zip(REFERENCE_SIZE_M, size[b, :, r, c]))
            theta = 0.5 * float(np.arctan2(heading[b, 0, r, c], heading[b, 1, r, c]))
            theta = (theta + np.pi / 2) % np.pi - np.pi / 2
            dets.append(Detection(
                corners_px=box_corners(uv, length * s, width * s, theta), center_m=geometry.to_metres(uv)[0],
                length_m=length, width_m=width, heading=theta, score=float(np.clip(scores[i], 0.0, 1.0)),
            ))
        result.append(dets)
    return result


def box_corners(center: np.ndarray, length: float, width: float, theta: float) -> np.ndarray:
    """(4, 2) corners of an oriented box in pixels (u, v); θ from the u axis towards v."""
    c, s = np.cos(theta), np.sin(theta)
    half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [length / 2, width / 2]
    return np.asarray(center, np.float64) + half @ np.array([[c, s], [-s, c]])


def load_detector_checkpoint(path: str | Path) -> dict:
    """A `train-detector` checkpoint, read with `weights_only=True`; DetectorError otherwise."""
    return read_model_checkpoint(path, "detector", CHECKPOINT_FORMAT, DetectorError, "detector",
                                 "learned-detector checkpoint (train it with steerbench train-detector)")


def build_network(blob: dict, path: str | Path = "checkpoint") -> CenterNetSmall:
    """The network of a loaded checkpoint, in eval mode; DetectorError when the weights do not fit."""
    return network_from(blob, lambda c: CenterNetSmall(DetectorNetConfig.from_dict(c)), DetectorError, path,
                        "detector network")


class LearnedDetector:
    """Detections from a `train-detector` checkpoint.

    `geometry`: the camera of the frames to come (size, px/m, the ego's place); it must have the
    frame size and scale the checkpoint was trained on. None: the training camera's size and
    scale with `FrameGeometry`'s default centering (0.3, 0.5) (highway and merge; the other
    scenarios centre the ego, so pass their geometry). `score_threshold`: None takes the
    checkpoint's operating point (`DetectorTrainConfig.score_threshold`, 0.3 by default)."""

    def __init__(self, checkpoint_path: str | Path, geometry: FrameGeometry | None = None,
                 score_threshold: float | None = None, device: str = "cpu") -> None:
        blob = load_detector_checkpoint(checkpoint_path)
        if score_threshold is None:  # the operating point the checkpoint was evaluated at
            score_threshold = float(blob.get("decode", {}).get("score_threshold", DecodeOptions.score_threshold))
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        try:
            frame = blob["frame"]
            height, width, scaling = int(frame["height"]), int(frame["width"]), float(frame["scaling"])
        except (KeyError, TypeError, ValueError):
            raise DetectorError(f"{checkpoint_path} has no valid frame description") from None
        self.net = build_network(blob, checkpoint_path).to(device)
        g = geometry or FrameGeometry(width=width, height=height, scaling=scaling)
        if (g.width, g.height) != (width, height):
            raise DetectorError(f"{checkpoint_path} was trained on {width}x{height} frames; "
                                f"the geometry says {g.width}x{g.height}")
        if abs(g.scaling - scaling) > 1e-6:
            raise DetectorError(f"{checkpoint_path} was trained at {scaling:g} px/m; "
                                f"the geometry says {g.scaling:g} px/m")
        self.geometry = g
        self.device = device
        self.stride = self.net.config.stride
        self.options = DecodeOptions(score_threshold=score_threshold)

    def detect(self, frames: np.ndarray) -> list[Detection]:
        """Detections in the newest frame of a stack ((stack, H, W[, 3]) or a single frame), made
        as in every episode (`episode_torch`), wherever this detector runs."""
        with episode_torch():
            return self.detect_batch(to_gray(newest(np.asarray(frames)))[None])[0]

    @torch.no_grad()
    def detect_batch(self, frames: np.ndarray) -> list[list[Detection]]:
        """(B, H, W) grey uint8 frames, each a separate image -> detections per frame."""
        frames = np.asarray(frames)
        g = self.geometry
        if frames.ndim != 3 or frames.shape[1:] != (g.height, g.width):
            raise ValueError(f"the detector expects (B, {g.height}, {g.width}) grey frames, got {frames.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.uint8)).to(self.device)
        return decode(self.net(x), g, self.stride, self.options)
