"""The files `steerbench train-detector` writes besides its checkpoints (config.json and
metrics.json, strict JSON: NaN becomes null), and metrics.json as a Markdown table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from steerbench.sim.storage import atomic_write_json


def write_json(path: Path, obj: dict) -> None:
    """`obj` as indented strict JSON (`plain`), written atomically."""
    atomic_write_json(path, plain(obj), indent=2, allow_nan=False)


def plain(x: Any) -> Any:
    """JSON-ready: NumPy numbers as Python ones, NaN (no match, no error) as null."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def results_table(metrics: dict) -> str:
    """metrics.json's held-out results as a Markdown table: each split, then per scenario."""
    lines = ["| split | detector | frames | true boxes | precision | recall | AP | loc err m |",
             "|---|---|---|---|---|---|---|---|"]
    for split, r in metrics["splits"].items():
        rows = []
        for detector, q in (("learned", r), ("classical", r.get("classical"))):  # the baseline on the same frames
            if q is not None:
                rows += [(split, detector, q)]
                rows += [(f"{split} {name}", detector, s) for name, s in q["by_scenario"].items()]
        for label, detector, q in rows:
            lines.append(f"| {label} | {detector} | {q['frames']} | {q['n_true']} | {_fmt(q['precision'])} | "
                         f"{_fmt(q['recall'])} | {_fmt(q['ap'])} | {_fmt(q['loc_error_m'])} |")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"
