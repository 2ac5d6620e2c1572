"""How each network of a `scale` run was trained: updates run, the best one, passes over its data
and wall time, read back from its run directory (train-e2e's config.json, last.pt and the
models directory's finished.json), so scale.md shows whether every N was trained to convergence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from steerbench.agents.e2e_train import load_checkpoint
from steerbench.agents.errors import TrainingError
from steerbench.harness.summary import table


@dataclass(frozen=True)
class Trained:
    """One trained network: what its run directory says."""

    model: str  # the curve (e2e-M, e2e-M-dagger, ...)
    frames: int  # N
    seed: int
    steps: int  # updates run (for DAgger: its last round's)
    best_step: int  # the update after which train-dev was best (its checkpoint)
    budget: int  # the step budget (0: trained by epochs)
    passes: float  # updates x batch / train samples
    seconds: float  # training wall time (0 when not known)


def trained(model: str, frames: int, seed: int, run: Path) -> Trained | None:
    """The record of the train-e2e run in `run`, None when it has none (not an e2e run)."""
    try:
        settings = json.loads((run / "config.json").read_text())
        history = load_checkpoint(run / "checkpoints" / "last.pt")["state"]
    except (OSError, ValueError, KeyError, TrainingError):
        return None
    state = json.loads(history)
    records, batch = state["history"], settings["train"]["batch"]
    samples = max(1, settings.get("train_samples", 0))
    per_epoch = -(-samples // batch)
    step_of = (lambda h: h["step"]) if records and "step" in records[-1] else (lambda h: h["epoch"] * per_epoch)
    best = min(records, key=lambda h: h["train_dev_l1"]) if records else None
    steps = step_of(records[-1]) if records else 0
    return Trained(model, frames, seed, steps, step_of(best) if best else 0, settings["train"].get("steps", 0),
                   steps * batch / samples, _seconds(run, records))


def _seconds(run: Path, records: Sequence[dict]) -> float:
    """The models directory's record of the training time (for DAgger: all its rounds), else the
    periods' own."""
    try:
        return float(json.loads((run / "finished.json").read_text())["training_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return float(sum(h.get("seconds", 0.0) for h in records))


def training_table(rows: Sequence[Trained]) -> str:
    """Markdown: one row per trained network."""
    ordered = sorted(rows, key=lambda r: (r.model, r.frames, r.seed))
    body = [[r.model, str(r.frames), str(r.seed), f"{r.steps:,}", f"{r.best_step:,}",
             f"{r.budget:,}" if r.budget else "epochs", f"{r.passes:.1f}", f"{r.seconds / 60:.1f}"] for r in ordered]
    return table(["model", "N", "seed", "steps run", "best step", "step budget", "passes over its N", "minutes"], body,
                 markdown=True)
