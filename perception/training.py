"""The loop scaffold that `train-e2e` (agents/e2e_train.py), `train-detector`
(perception/learned_train.py) and `train-lanes` (perception/lane_train.py) share; their losses,
data, metrics and logs stay with them.

Shared, and only this: the device choice; a run directory with `checkpoints/best.pt` and
`checkpoints/last.pt`, written atomically with `torch.save` and read back with
`weights_only=True`; resuming from `last.pt` (weights, optimiser, torch's RNG and the
early-stopping record) when the training configuration stored there matches; the record itself
(`TrainState`: epochs done, best score, epochs without improvement, history) and the rule that
ends the loop (`EarlyStopping`); the TensorBoard writer with its `hparams` text.

It lives in perception, the lowest layer that trains a network, so that agents can use it
without perception importing upward.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from steerbench.sim.storage import atomic_write

RESUME_CONFLICT = "{logdir} holds a run with another configuration{differ}; use another --logdir"


def resolve_device(name: str = "auto") -> str:
    """The torch device to train on: `auto` is CUDA when available, else the CPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


# The run directory is where a run is, not what it is: a run moved or copied elsewhere resumes
# there. Runs recorded before this still hold it in `last.pt`, so it is dropped on both sides.
NOT_COMPARED = ("logdir",)


def comparable_config(cfg: Any, ignore: Iterable[str]) -> str:
    """A training configuration (a dataclass) as `last.pt` stores it to check a resume against:
    every field but those in `ignore` (the ones a resumed run may change) and the run directory,
    as sorted JSON."""
    d = dataclasses.asdict(cfg)
    for k in (*ignore, *NOT_COMPARED):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=list)


def stored_config(stored: Any) -> dict | None:
    """A `comparable_config` string read back, without the fields no longer compared (None when
    it is missing or unreadable)."""
    try:
        d = json.loads(stored)
    except (TypeError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    return {k: v for k, v in d.items() if k not in NOT_COMPARED}


def same_config(stored: Any, current: str) -> bool:
    """`last.pt`'s `train_config` and this run's `comparable_config` describe the same run."""
    old = stored_config(stored)
    return old is not None and old == stored_config(current)


def config_difference(stored: Any, current: str | None) -> str:
    """The settings in which two `comparable_config` strings differ, as "a: stored x, now y; ..."
    ("" when either is missing or unreadable, or none differs). A setting left out of one of
    them (a run from before it existed, or one a trainer records only when on) shows as "default"."""
    old, new = stored_config(stored), stored_config(current)
    if old is None or new is None:
        return ""

    def shown(d: dict, k: str) -> str:
        return json.dumps(d[k], default=list) if k in d else "default"

    return "; ".join(f"{k}: stored {shown(old, k)}, now {shown(new, k)}"
                     for k in sorted(old.keys() | new.keys()) if shown(old, k) != shown(new, k))


@dataclass
class TrainState:
    """What a run has done so far; `last.pt` stores it as JSON (`to_json`) for a resume.

    `best_epoch` is None for a trainer that does not record it (its `last.pt` has no such key);
    `extra` holds a trainer's own entries, stored after the common ones.
    """

    best: float  # the best early-stopping score so far; starts at a value any score beats
    epoch: int = 0  # epochs done
    stale: int = 0  # epochs since the last improvement
    history: list[dict] = field(default_factory=list)  # one record per epoch, the trainer's own
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, keys in the order stored runs have them (so last.pt's bytes stay the same)."""
        d: dict[str, Any] = {"epoch": self.epoch, "best": self.best}
        if self.best_epoch is not None:
            d["best_epoch"] = self.best_epoch
        d.update(stale=self.stale, history=self.history, **self.extra)
        return d

    def to_json(self) -> str:
        """The record as `last.pt` stores it."""
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> "TrainState":
        """The record back from `to_json`."""
        d = json.loads(text)
        return cls(best=d.pop("best"), epoch=d.pop("epoch"), stale=d.pop("stale"), history=d.pop("history"),
                   best_epoch=d.pop("best_epoch", None), extra=d)


@dataclass(frozen=True)
class EarlyStopping:
    """Train up to `epochs` epochs, stopping after `patience` epochs without a better score."""

    epochs: int
    patience: int
    higher_is_better: bool  # the score: average precision (higher) or a loss (lower)

    def running(self, state: TrainState) -> bool:
        """Whether another epoch is due."""
        return state.epoch < self.epochs and state.stale < self.patience

    def record(self, state: TrainState, epoch: int, score: float) -> bool:
        """Count `epoch` done with `score`; True when it improved on the best (strictly: a tie,
        or a NaN, is no improvement)."""
        improved = score > state.best if self.higher_is_better else score < state.best
        state.epoch = epoch
        state.stale = 0 if improved else state.stale + 1
        if improved:
            state.best = score
            if state.best_epoch is not None:
                state.best_epoch = epoch
        return improved


@dataclass(frozen=True)
class RunDir:
    """A training run's directory: `checkpoints/best.pt` (the best epoch's weights) and
    `checkpoints/last.pt` (everything a resume needs) under `logdir`."""

    logdir: Path

    @property
    def checkpoints(self) -> Path:
        """The checkpoint directory."""
        return self.logdir / "checkpoints"

    @property
    def best(self) -> Path:
        """The best epoch's weights."""
        return self.checkpoints / "best.pt"

    @property
    def last(self) -> Path:
        """What a resume needs."""
        return self.checkpoints / "last.pt"

    def create(self) -> None:
        """Make the checkpoint directory (OSError when it cannot be made)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)


def save_checkpoint(path: Path, blob: dict) -> None:
    """`torch.save` through a temporary file and a rename: a kill mid-write leaves the old file."""
    atomic_write(path, lambda f: torch.save(blob, f))


def read_checkpoint(path: Path, error: Callable[[str], Exception], missing: str,
                    directory: str | None = None) -> Any:
    """`torch.load(weights_only=True)` onto the CPU; every failure is `error` with one line:
    `missing` when there is no file, `directory` (when given) when `path` is a directory."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        if isinstance(exc, FileNotFoundError):
            raise error(missing) from None
        if isinstance(exc, IsADirectoryError) and directory is not None:
            raise error(directory) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(f"{path} is not a readable steerbench checkpoint ({first[:160]})") from None


def read_model_checkpoint(path: str | Path, kind: str, fmt: int, error: Callable[[str], Exception], name: str,
                          foreign: str) -> dict:
    """A trained model's checkpoint (`kind`, checkpoint format `fmt`), read with `weights_only=True`;
    every problem is `error` in one line: `name` says what was looked for ("no {name} checkpoint"),
    `foreign` what a file of another kind is not ("{path} is not a {foreign}")."""
    path = Path(path)
    blob = read_checkpoint(path, error, f"no {name} checkpoint at {path}",
                           directory=f"{path} is a directory, not a {name} checkpoint")
    if not isinstance(blob, dict) or blob.get("kind") != kind or not isinstance(blob.get("model"), dict):
        raise error(f"{path} is not a {foreign}")
    if blob.get("format") != fmt:
        raise error(f"{path} has checkpoint format {blob.get('format')!r}; this version reads {fmt}")
    return blob


def network_from(blob: dict, make: Callable[[dict], torch.nn.Module], error: Callable[[str], Exception],
                 path: str | Path, what: str) -> torch.nn.Module:
    """`make(blob["config"])` with the checkpoint's weights, in eval mode; `error` in one line
    ("{path} does not fit the {what}") when the weights or the configuration do not fit."""
    try:
        net = make(blob["config"])
        net.load_state_dict(blob["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(f"{path} does not fit the {what} ({first[:160]})") from None
    return net.eval()


def resume(run: RunDir, load: Callable[[Path], dict], same_run: Callable[[dict], bool],
           error: Callable[[str], Exception], net: torch.nn.Module,
           opt: torch.optim.Optimizer, current: str | None = None) -> TrainState | None:
    """Continue the run in `run` from its `last.pt`: weights, optimiser and torch's RNG restored,
    its record returned; None when there is no `last.pt` yet. A `last.pt` for which `same_run`
    is false (another configuration) raises `error`: resuming it would mix two runs. With
    `current` (this run's `comparable_config`) the error names the settings that differ."""
    if not run.last.exists():
        return None
    blob = load(run.last)
    if not same_run(blob):
        differ = config_difference(blob.get("train_config"), current)
        raise error(RESUME_CONFLICT.format(logdir=run.logdir, differ=f" ({differ})" if differ else ""))
    net.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    state = TrainState.from_json(blob["state"])
    torch.set_rng_state(blob["rng"])
    return state


def save_last(run: RunDir, net: torch.nn.Module, opt: torch.optim.Optimizer, state: TrainState, train_config: str,
              meta: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> None:
    """Write `last.pt`: the trainer's `meta`, the weights and the optimiser, its `extra`, then
    what `resume` reads (`train_config` from `comparable_config`, the record, torch's RNG). The
    two mappings keep each trainer's keys where its format always had them."""
    blob = {**(meta or {}), "model": net.state_dict(), "optimizer": opt.state_dict(), **(extra or {}),
            "train_config": train_config, "state": state.to_json(), "rng": torch.get_rng_state()}
    save_checkpoint(run.last, blob)


def open_writer(logdir: Path, hparams: Mapping[str, Any]):
    """A TensorBoard writer on `logdir/tb`, the run's settings as its `hparams` text."""
    from torch.utils.tensorboard import SummaryWriter  # heavy; only when training

    writer = SummaryWriter(str(logdir / "tb"))
    writer.add_text("hparams", json.dumps(dict(hparams), indent=1, default=list))
    return writer
