"""The learned lanes with and without the marking check (perception/lane_refine.py), on held-out frames.

On the held-out frames `train-lanes` measures (every 4th step of a dataset's train-dev and dev
episodes, at most `--eval-frames` per split, an equal share per scenario), the lane model's
prediction as the agent gets it (samples predicted not to exist left out), then the same after
`refine_lanes`. Prints per split and scenario: frames, the ego lane's lateral error 10 m ahead
(median / 90th percentile, metres, as train-lanes' table) before and after, the share of frames
more than 1 m off before and after, the share the check moved, and its median CPU time per frame.

Usage: python bench/lane_refine.py --data DATA --checkpoint LANES [--eval-frames 300] [--splits train-dev,dev]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from steerbench.perception.lane_data import scenarios_of, select_lane_frames
from steerbench.perception.lane_eval import sample_index
from steerbench.perception.lane_model import EGO, LaneModelError, load_lane_model
from steerbench.perception.lane_refine import refine_lanes


def measure(data: Path, checkpoint: str, split: str, eval_frames: int) -> list[dict]:
    """One row per scenario of `split` in `data`: the errors at 10 m before and after the check."""
    held = select_lane_frames(data, split, scenarios_of(data, split), eval_frames, stride=4, strict=False)
    k10 = sample_index(held.s, 10.0)
    rows = []
    for k, name in enumerate(held.scenarios):
        sel = np.flatnonzero(held.scenario == k)
        geometry = held.geometries[k]
        model = load_lane_model(checkpoint, geometry)
        preds = model.predict_batch(held.frames[sel], held.command[sel] if model.commands else None,
                                    held.turned[sel] if model.odometry else None)
        before, after, moved, times = [], [], 0, []
        for i, p in zip(sel, preds):
            start = time.perf_counter()
            lanes, changed = refine_lanes(held.frames[i], p.centres, p.s, float(p.width[EGO]), geometry)
            times.append(time.perf_counter() - start)
            moved += changed
            truth = held.centres[i, EGO, k10, 1]
            before.append(abs(p.centres[EGO, k10, 1] - truth))
            after.append(abs(lanes[EGO, k10, 1] - truth))
        rows.append({"split": split, "scenario": name, "frames": len(sel), "before": np.array(before),
                     "after": np.array(after), "moved": moved / max(len(sel), 1), "ms": 1e3 * float(np.median(times))})
    return rows


def _stats(errors: np.ndarray) -> str:
    e = errors[np.isfinite(errors)]
    if not len(e):
        return "- / - | -"
    return f"{np.median(e):.2f} / {np.percentile(e, 90):.2f} | {np.mean(e > 1.0):.0%}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--eval-frames", type=int, default=300, help="held-out frames per split, at most")
    p.add_argument("--splits", default="train-dev,dev")
    args = p.parse_args(argv)
    try:
        rows = [r for split in args.splits.split(",") for r in measure(args.data, args.checkpoint, split,
                                                                        args.eval_frames)]
    except LaneModelError as exc:
        raise SystemExit(f"error: {exc}") from None
    print("| split | scenario | frames | lat 10 m med / p90, model | > 1 m, model | lat 10 m med / p90, checked "
          "| > 1 m, checked | frames moved | ms per frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['split']} | {r['scenario']} | {r['frames']} | {_stats(r['before'])} | {_stats(r['after'])} "
              f"| {r['moved']:.0%} | {r['ms']:.2f} |")


if __name__ == "__main__":
    main()
