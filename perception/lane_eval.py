"""What the lane model is trained on (its losses) and how it is measured on held-out frames:
the ego lane's lateral error ahead, its heading error at the ego, the neighbours' validity;
and metrics.json's results as a table (`steerbench train-lanes`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .lane_model import EGO, LaneNet, centres

AHEAD_M = (5.0, 10.0, 20.0)  # [m] arc lengths at which the ego lane's lateral error is measured
HEADING_HALF_M = 2.5  # [m] the heading at the ego is the chord from s = -2.5 to s = +2.5
NEIGHBOURS = (0, 2)  # left, right


def losses(out: dict[str, torch.Tensor], s: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
           width: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss terms of a batch and their sum `total`: `coords`, the L1 [m] of x and y over the
    samples the labels have (finite); `exists`, BCE of each sample's existence on valid lanes;
    `valid`, BCE of each lane's validity; `width`, L1 [m] of valid lanes' widths."""
    finite = torch.isfinite(target[..., 0])
    pred = centres(out, s)
    err = (pred - torch.nan_to_num(target)).abs().sum(-1)
    coords = (err * finite).sum() / finite.sum().clamp(min=1)
    on_valid = valid[..., None].expand_as(finite).float()
    bce = nn.functional.binary_cross_entropy_with_logits(out["exists"], finite.float(), reduction="none")
    exists = (bce * on_valid).sum() / on_valid.sum().clamp(min=1)
    valid_loss = nn.functional.binary_cross_entropy_with_logits(out["valid"], valid.float())
    w_err = (out["width"] - torch.nan_to_num(width)).abs() * valid
    width_loss = w_err.sum() / valid.sum().clamp(min=1)
    total = coords + exists + valid_loss + width_loss
    return {"total": total, "coords": coords, "exists": exists, "valid": valid_loss, "width": width_loss}


@torch.no_grad()
def predict_arrays(net: LaneNet, frames: np.ndarray, ego_px: np.ndarray, scaling: float, device: str,
                   command: np.ndarray | None = None, turned: np.ndarray | None = None,
                   batch: int = 256) -> dict[str, np.ndarray]:
    """The raw outputs over many frames (eval mode; `command`, (N,) int, each frame's navigation
    command, required by a network conditioned on it, and `turned`, (N,) [rad], by one with
    odometry): `centres` (N, 3, K, 2), `exists`, `valid` (logits), `width`, as NumPy."""
    net.eval()
    s = torch.as_tensor(net.config.s, dtype=torch.float32, device=device)
    parts: dict[str, list] = {"centres": [], "exists": [], "valid": [], "width": []}
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch])).to(device)
        e = torch.from_numpy(np.ascontiguousarray(ego_px[i:i + batch], dtype=np.float32)).to(device)
        c = None if command is None else torch.from_numpy(np.asarray(command[i:i + batch], np.int64)).to(device)
        h = None if turned is None else torch.from_numpy(np.asarray(turned[i:i + batch], np.float32)).to(device)
        out = net(x, e, scaling, c, h)
        parts["centres"].append(centres(out, s).cpu().numpy())
        for k in ("exists", "valid", "width"):
            parts[k].append(out[k].cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def sample_index(s: np.ndarray, at: float) -> int:
    """The index of the sample at arc length `at` [m]; ValueError when there is none."""
    i = int(np.argmin(np.abs(np.asarray(s) - at)))
    if abs(float(s[i]) - at) > 1e-4:
        raise ValueError(f"the lane samples have no arc length {at:g} m")
    return i


def error_stats(errors: np.ndarray) -> dict:
    """`median`, `p90` and `n` of the finite errors (NaN and 0 when there are none)."""
    errors = errors[np.isfinite(errors)]
    if not len(errors):
        return {"median": math.nan, "p90": math.nan, "n": 0}
    return {"median": float(np.median(errors)), "p90": float(np.percentile(errors, 90)), "n": int(len(errors))}


def lane_quality(pred_centres: np.ndarray, pred_valid: np.ndarray, true_centres: np.ndarray, true_valid: np.ndarray,
                 s: np.ndarray) -> dict:
    """Held-out quality of predictions against labels (both (N, 3, K, 2) ego frame [m], valid (N, 3) bool):

    * `lateral_<d>m`: |predicted - true y| of the ego lane at arc length d (5, 10, 20 m), over
      the frames whose label has that sample (a prediction is compared at the same arc length);
    * `heading_deg`: |predicted - true| direction of the ego lane's chord from s = -2.5 to +2.5 m;
    * `neighbour_valid_acc`: share of the left and right lanes whose validity is right;
    each error as `median`, `p90` and `n` (frames counted)."""
    out: dict = {"frames": int(len(true_centres))}
    ego_p, ego_t = pred_centres[:, EGO], true_centres[:, EGO]
    for d in AHEAD_M:
        i = sample_index(s, d)
        out[f"lateral_{d:g}m"] = error_stats(np.abs(ego_p[:, i, 1] - ego_t[:, i, 1]))
    lo, hi = sample_index(s, -HEADING_HALF_M), sample_index(s, HEADING_HALF_M)

    def direction(c: np.ndarray) -> np.ndarray:
        d = c[:, hi] - c[:, lo]
        return np.arctan2(d[:, 1], d[:, 0])

    diff = direction(ego_p) - direction(ego_t)
    out["heading_deg"] = error_stats(np.degrees(np.abs((diff + np.pi) % (2 * np.pi) - np.pi)))
    right = pred_valid[:, NEIGHBOURS] == true_valid[:, NEIGHBOURS]
    out["neighbour_valid_acc"] = float(right.mean()) if right.size else math.nan
    return out


def quality_by_scenario(pred_centres: np.ndarray, pred_valid: np.ndarray, true_centres: np.ndarray,
                        true_valid: np.ndarray, s: np.ndarray, scenario: np.ndarray, names: tuple[str, ...]) -> dict:
    """`lane_quality` over all frames, with `by_scenario` entries for each scenario present."""
    result = lane_quality(pred_centres, pred_valid, true_centres, true_valid, s)
    result["by_scenario"] = {
        name: lane_quality(pred_centres[sel], pred_valid[sel], true_centres[sel], true_valid[sel], s)
        for k, name in enumerate(names) if (sel := scenario == k).any()}
    return result


def results_table(metrics: dict) -> str:
    """metrics.json's held-out results as a Markdown table: each split, then per scenario; the
    last column is the lateral error at 10 m with the ego 1.5 m off its lane's centre
    (perception.lane_displace.displaced_quality)."""
    heads = [f"lat {d:g} m" for d in AHEAD_M]
    lines = ["| split | frames | " + " | ".join(f"{h} med / p90" for h in heads) +
             " | heading deg med / p90 | neighbour valid acc | lat 10 m, ego off centre med / p90 |",
             "|---|---|" + "---|" * (len(AHEAD_M) + 3)]
    for split, r in metrics["splits"].items():
        off = r.get("displaced") or {}  # runs from before the measurement have none
        rows = [(split, r, off)] + [(f"{split} {name}", q, off.get("by_scenario", {}).get(name, {}))
                                    for name, q in r["by_scenario"].items()]
        for label, q, moved in rows:
            cells = [_pair(q[f"lateral_{d:g}m"]) for d in AHEAD_M] + [_pair(q["heading_deg"]),
                                                                        _fmt(q["neighbour_valid_acc"])]
            cells.append(_pair(moved["lateral_10m"]) if moved else "-")
            lines.append(f"| {label} | {q['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pair(stat: dict) -> str:
    return f"{_fmt(stat['median'])} / {_fmt(stat['p90'])}"


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"
