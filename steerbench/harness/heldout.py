"""Is an agent being evaluated on the episodes its checkpoint was trained or selected on?

`train-e2e` and `train-detector` record in every best.pt the (split, index) runs of the episodes
that the weights were fitted to and early-stopped on (sim.episodes.SeenRecord). `eval` reads the
record of every checkpoint an agent's options name and, where the episodes asked for fall in it,
prints a one-line warning and keeps it in config.json: such a score is a training score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from steerbench.agents.registry import AgentSpec
from steerbench.sim.episodes import EVAL_START, SeenRecord, seen_among


@dataclass(frozen=True)
class SeenWarning:
    """An agent's checkpoint saw `episodes` of the episodes asked for, with indices `first` .. `last`."""

    agent: str
    checkpoint: str
    split: str
    episodes: int  # how many of the asked-for episodes the checkpoint saw
    first: int
    last: int

    def line(self) -> str:
        """The one-line warning printed on stderr."""
        return (f"warning: agent {self.agent!r} is evaluated on {self.episodes} {self.split} episode(s) its "
                f"checkpoint {self.checkpoint} was trained or selected on (indices {self.first}-{self.last}); "
                f"these scores are training scores (held-out episodes start at --first-episode {EVAL_START})")

    def as_dict(self) -> dict:
        """The warning as config.json keeps it (under `evaluated_on_own_data`)."""
        return {"agent": self.agent, "checkpoint": self.checkpoint, "split": self.split, "episodes": self.episodes,
                "first": self.first, "last": self.last}


def seen_record(path: Path) -> SeenRecord:
    """The checkpoint's record of its data (empty for a checkpoint that has none or cannot be read:
    loading errors are the agent's to report, in one line, when it is built)."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours to report here
        return {}
    record = blob.get("episodes") if isinstance(blob, dict) else None
    return record if isinstance(record, dict) else {}


def seen_warnings(agents: Sequence[AgentSpec], split: str, indices: range) -> list[SeenWarning]:
    """One warning per file an agent's options name whose recorded training or early-stopping episodes
    include some of `indices` on `split` (files that are not checkpoints have no record)."""
    out = []
    for spec in agents:
        for path in spec.files().values():  # a file without a record (not a checkpoint) has none to warn of
            seen = seen_among(seen_record(path), split, indices)
            if seen:
                out.append(SeenWarning(spec.label, str(path), split, len(seen), min(seen), max(seen)))
    return out
