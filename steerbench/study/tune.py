"""`steerbench tune`: a sweep of the end-to-end network's hyper-parameters and training-set size
on Ray Tune (docs/tune.md).

Why Tune here and not in `compare`/`scale`: those train a handful of fixed models and spend their
time in closed-loop episodes, which the episode backends spread already. A sweep is many
independent trainings judged by one number (train-dev L1) as they go: what Tune schedules, stops
early (ASHA) and places on a cluster's CPUs or GPUs.

Every trial is an ordinary `train-e2e` run in LOGDIR/trials/<name>, named by its
hyper-parameters, so running the same command again resumes each trial from its last epoch and
reports its whole curve again: a finished sweep costs seconds to re-read.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from steerbench.agents.e2e_train import TrainConfig
from steerbench.agents.errors import TrainingError
from steerbench.harness.backends import BackendError, connect_ray
from steerbench.harness.summary import table

METRIC = "train_dev_l1"
TUNE_MISSING = "steerbench tune needs Ray Tune, which is not installed: pip install 'steerbench[ray]'"


@dataclass(frozen=True)
class Trial:
    """One point of the sweep's grid."""

    size: str
    lr: float
    batch: int
    frames: int  # first N train frames (0: all)

    @property
    def name(self) -> str:
        """`<size>-lr<lr>-b<batch>-n<frames or all>`: the trial's directory under LOGDIR/trials."""
        return f"{self.size}-lr{self.lr:g}-b{self.batch}-n{self.frames or 'all'}"


@dataclass(frozen=True)
class SweepConfig:
    """`steerbench tune`: the grid sizes x lrs x batches x frames, one train-e2e run per trial."""

    data: Path  # a `steerbench collect` dataset, readable at the same path on every node
    logdir: Path = Path("runs/tune")
    sizes: tuple[str, ...] = ("S", "M")
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    batches: tuple[int, ...] = (64,)
    frames: tuple[int, ...] = (0,)  # data-size axis; 0: the whole train split
    epochs: int = 10
    patience: int = 3
    # A step budget instead of epochs (train-e2e --steps; docs/e2e.md), as `scale` trains: each
    # measurement period counts as an "epoch" for Tune and ASHA.
    steps: int = 0
    eval_every: int = 0  # updates between train-dev measurements (0: one pass over the data, 50-1000)
    schedule: str = "constant"  # the learning rate over the budget: constant or cosine
    channels_last: bool = False  # the trials train in channels-last layout, as `scale` does (train-e2e --channels-last)
    viewpoint: float = 0.0  # share of samples seen from a displaced ego (train-e2e --viewpoint; 0: off)
    seed: int = 0
    asha: bool = True  # stop trials whose train-dev L1 trails the others' at the same epoch
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # a running Ray cluster; None: a local instance
    progress: bool = True

    def trials(self) -> list[Trial]:
        """Every trial of the grid."""
        return [Trial(*t) for t in itertools.product(self.sizes, self.lrs, self.batches, self.frames)]

    def train_config(self, trial: Trial) -> TrainConfig:
        """The train-e2e configuration of one trial, in LOGDIR/trials/<name>."""
        return TrainConfig(data=str(self.data), logdir=str(self.logdir / "trials" / trial.name),
                           size=trial.size, epochs=self.epochs, batch=trial.batch, lr=trial.lr, seed=self.seed,
                           patience=self.patience, frames=trial.frames, steps=self.steps,
                           eval_every=self.eval_every, schedule=self.schedule, channels_last=self.channels_last,
                           viewpoint=self.viewpoint, progress=False)

    @property
    def budget(self) -> str:
        """The training budget in words (tune.md)."""
        if self.steps:
            return (f"a budget of {self.steps} updates ({self.schedule} learning rate), early stopping on "
                    "train-dev")
        return f"{self.epochs} epochs at most, patience {self.patience}"


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended."""

    trial: Trial
    epochs: int  # epochs it trained (fewer than asked: early stopping or ASHA)
    best: float  # best train-dev L1
    final_train: float  # train L1 of its last epoch
    error: str = ""  # why it failed, if it did


def _run_trial(config: dict[str, Any], sweep: SweepConfig) -> None:
    """A Tune trainable: one train-e2e run, reporting each epoch's losses to Tune."""
    import torch
    from ray import tune

    from steerbench.agents.e2e_train import train

    torch.set_num_threads(max(1, int(sweep.cpus_per_trial)))  # not every core of the node per trial
    trial = Trial(**config)
    train(sweep.train_config(trial), on_epoch=lambda h: tune.report(
        {METRIC: h["train_dev_l1"], "train_l1": h["train_l1"], "epoch": h["epoch"]}))


def run_sweep(cfg: SweepConfig) -> list[TrialOutcome]:
    """Run every trial on Ray Tune and return their outcomes.

    ASHA stops trailing trials unless `asha` is off or there is one trial. Finished trials are read
    again and interrupted ones resumed. TrainingError without a dataset at `data`; BackendError when
    Ray Tune is not installed or nothing listens at `address`.
    """
    if not (cfg.data / "manifest.json").is_file():
        raise TrainingError(f"no dataset at {cfg.data} (make one with steerbench collect --out DIR)")
    # Absolute now, on the driver: Tune starts each trial in a directory of its own.
    cfg = dataclasses.replace(cfg, data=cfg.data.resolve(), logdir=cfg.logdir.resolve())
    try:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise BackendError(TUNE_MISSING) from None
    connect_ray(cfg.address)

    trials = cfg.trials()
    space = {"size": tune.grid_search(list(cfg.sizes)), "lr": tune.grid_search(list(cfg.lrs)),
             "batch": tune.grid_search(list(cfg.batches)), "frames": tune.grid_search(list(cfg.frames))}
    # With a step budget an "epoch" is a measurement period, and a period has at least one update.
    periods = cfg.steps or cfg.epochs
    scheduler = (ASHAScheduler(time_attr="epoch", max_t=periods, grace_period=min(2, periods),
                               reduction_factor=2) if cfg.asha and len(trials) > 1 else None)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_run_trial, sweep=cfg),
                            {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}),
        param_space=space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="min", scheduler=scheduler),
        run_config=tune.RunConfig(name="tune", storage_path=str(cfg.logdir / "ray"),
                                  verbose=1 if cfg.progress else 0),
    )
    return [_outcome(r) for r in tuner.fit()]


def _outcome(result: Any) -> TrialOutcome:
    trial = Trial(**result.config)
    df = result.metrics_dataframe
    if df is None or METRIC not in df:
        return TrialOutcome(trial, 0, math.nan, math.nan, _one_line(result.error) or "no epoch reported")
    return TrialOutcome(trial, int(df["epoch"].max()), float(df[METRIC].min()), float(df["train_l1"].iloc[-1]),
                        _one_line(result.error))


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return ""
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def ranked(outcomes: Sequence[TrialOutcome]) -> list[TrialOutcome]:
    """Best train-dev L1 first, failed trials (no L1) last."""
    return sorted(outcomes, key=lambda o: (math.isnan(o.best), o.best))


def sweep_table(outcomes: Sequence[TrialOutcome], markdown: bool) -> str:
    """The ranked trials as a table (markdown or plain text)."""
    rows = [[str(i + 1), o.trial.size, f"{o.trial.lr:g}", str(o.trial.batch), str(o.trial.frames or "all"),
             str(o.epochs), "-" if math.isnan(o.best) else f"{o.best:.4f}",
             "-" if math.isnan(o.final_train) else f"{o.final_train:.4f}", o.error or ""]
            for i, o in enumerate(ranked(outcomes))]
    head = ["rank", "size", "lr", "batch", "frames", "epochs", "best train-dev L1", "last train L1", "error"]
    return table(head, rows, markdown=markdown)


def write_outputs(cfg: SweepConfig, outcomes: Sequence[TrialOutcome], command: str) -> None:
    """Write LOGDIR/tune.md, tune.csv and one HParams row per trial under LOGDIR/tb."""
    best = ranked(outcomes)[0] if outcomes else None
    lines = ["# Hyper-parameter sweep (Ray Tune)", "", f"Command: `{command}`", "",
             f"Dataset: `{cfg.data}`; {cfg.budget}, "
             f"{'ASHA early stopping' if cfg.asha else 'no early stopping across trials'}.", "",
             sweep_table(outcomes, markdown=True), ""]
    if best is not None and not math.isnan(best.best):
        checkpoint = cfg.logdir / "trials" / best.trial.name / "checkpoints" / "best.pt"
        lines += [f"Best: `{best.trial.name}`, checkpoint `{checkpoint}`."]
    (cfg.logdir / "tune.md").write_text("\n".join(lines) + "\n")
    with open(cfg.logdir / "tune.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "lr", "batch", "frames", "epochs", "best_train_dev_l1", "last_train_l1", "error"])
        for o in ranked(outcomes):
            w.writerow(
                [o.trial.size, o.trial.lr, o.trial.batch, o.trial.frames, o.epochs, o.best, o.final_train, o.error]
            )
    _tensorboard(cfg, outcomes)


def _tensorboard(cfg: SweepConfig, outcomes: Sequence[TrialOutcome]) -> None:
    """One HParams row per trial under LOGDIR/tb/<trial> (each trial's curves are in its own tb/)."""
    from torch.utils.tensorboard import SummaryWriter

    for o in outcomes:
        if math.isnan(o.best):
            continue
        path = cfg.logdir / "tb" / o.trial.name
        if path.exists():  # rewritten whole: a re-read sweep leaves one row per trial
            for f in path.glob("events.out.tfevents.*"):
                os.remove(f)
        with SummaryWriter(str(path)) as w:
            w.add_hparams(
                dataclasses.asdict(o.trial),
                {"hparam/best_train_dev_l1": o.best, "hparam/epochs": float(o.epochs)},
                run_name=".",
            )
