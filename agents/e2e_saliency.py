"""What the end-to-end network looks at: input frames and gradient saliency in TensorBoard.

Saliency is the absolute gradient of the steering output with respect to the newest input frame
(Simonyan et al., 2014), smoothed by a 3 x 3 box and normalised per frame, drawn as a heat map
over the frame (4x upscaled). A network that steers by the lane markings and the cars lights
them up; one that stares at the frame's corners has learned something else.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

SCALE = 4


def saliency(net: torch.nn.Module, frames: torch.Tensor, speed: torch.Tensor, command: torch.Tensor) -> np.ndarray:
    """(B, H, W) in [0, 1]: |d steering / d newest frame|, per frame normalised."""
    net.eval()
    x = frames.float().requires_grad_(True)
    net(x, speed, command)[:, -1].sum().backward()
    g = x.grad.abs()[:, -1]  # the newest frame of each stack
    g = g.sum(-1) if g.dim() == 4 else g  # RGB: over the channels
    out = np.stack([cv2.blur(m, (3, 3)) for m in g.cpu().numpy()])
    return out / np.maximum(out.reshape(len(out), -1).max(axis=1), 1e-12)[:, None, None]


def heat_overlay(frame: np.ndarray, sal: np.ndarray) -> np.ndarray:
    """(H*SCALE, W*SCALE, 3) uint8 RGB: the frame with the saliency as a JET heat map."""
    rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
    heat = cv2.applyColorMap((sal * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    mixed = cv2.addWeighted(rgb.astype(np.uint8), 0.5, heat, 0.5, 0.0)
    return cv2.resize(mixed, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)


def log_inputs_and_saliency(writer, net: torch.nn.Module, data: Dataset, device: str, step: int, n: int = 4) -> None:
    """`inputs/frames` and `saliency/steering` for `n` samples spread over `data`."""
    if not len(data):
        return
    idx = np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int)
    frames, speed, command, _ = (torch.stack(t) for t in zip(*(data[int(i)] for i in idx)))
    sal = saliency(net, frames.to(device), speed.to(device), command.to(device))
    newest = frames[:, -1].numpy().astype(np.uint8)
    inputs = np.stack([cv2.resize(f if f.ndim == 3 else np.repeat(f[..., None], 3, 2), None, fx=SCALE, fy=SCALE,
                                  interpolation=cv2.INTER_NEAREST) for f in newest])
    writer.add_images("inputs/frames", inputs, step, dataformats="NHWC")
    writer.add_images("saliency/steering", np.stack([heat_overlay(f, s) for f, s in zip(newest, sal)]), step,
                      dataformats="NHWC")
