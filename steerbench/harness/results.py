"""`results.jsonl`: one JSON row per finished episode, appended one at a time.

Each row is written with a single `write(2)` on a file opened with O_APPEND and then fsync'ed, so
a killed process (even by SIGKILL) leaves whole rows behind; a torn last line, should a disk or
file system ever produce one, is cut off when the file is next opened, and only that episode is
run again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from steerbench.sim.errors import SteerbenchError

Key = tuple[str, str, str, int]


class CorruptResultsError(SteerbenchError, ValueError):
    """results.jsonl holds an unreadable row before its last line (a torn last line is cut instead)."""

    pass


def row_key(row: dict) -> Key:
    """(agent, scenario, split, index): an episode's identity in a run; each key is run once."""
    return (row["agent"], row["scenario"], row["split"], int(row["index"]))


class ResultsStore:
    """The rows of one results.jsonl: loaded when it exists (a torn last line cut off, `repaired` then
    True), appended to one durable row at a time. CorruptResultsError for a bad row elsewhere."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict] = []
        self.repaired = False
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            if not line.strip():
                good_end += len(line) + (1 if i < len(lines) - 1 else 0)
                continue
            last = i == len(lines) - 1  # no newline after it: possibly torn
            try:
                row = json.loads(line)
                row_key(row)
            except (ValueError, KeyError, TypeError):
                if last:
                    self._truncate(good_end)
                    return
                raise CorruptResultsError(f"{self.path}: line {i + 1} is not a valid result row") from None
            if last:  # a complete row without its newline: keep it, add the newline
                self.rows.append(row)
                with open(self.path, "ab") as f:
                    f.write(b"\n")
                return
            self.rows.append(row)
            good_end += len(line) + 1

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)
        self.repaired = True

    def keys(self) -> set[Key]:
        """The keys of the rows recorded so far."""
        return {row_key(r) for r in self.rows}

    def append(self, row: dict) -> None:
        """Write `row` as one line (a single O_APPEND write, then fsync) and keep it. ValueError for a row
        that holds NaN or infinity; OSError for a short write."""
        line = (json.dumps(row, allow_nan=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows.append(row)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)
