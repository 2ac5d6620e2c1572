"""Training by a step budget (`train-e2e --steps`): how many updates, when train-dev is measured,
when to stop and the learning rate at every step.

With a step budget the unit of training is an update, not a pass over the data: a study that
trains on 300 frames and on 100,000 frames gives each model the updates it needs (issue 14's
"converged at every N"), where a fixed number of epochs gives the small set too few updates and
the large set too few passes. The loop measures train-dev every `interval` steps (one "period",
the record `TrainState` keeps as an epoch), stops after `patience` steps without a better
train-dev loss, and keeps the best period's weights.

Each period draws its samples from its own seeded generator (fresh permutations of the train
set, concatenated until the period is full), so a resumed run draws what an uninterrupted one
would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("constant", "cosine")
FINAL_LR_SHARE = 0.05  # the cosine schedule ends at this share of the peak learning rate
WARMUP_SHARE = 0.02  # its linear warm-up takes this share of the budget


@dataclass(frozen=True)
class StepPlan:
    """The step budget of one run, resolved against its train set."""

    steps: int  # most updates
    interval: int  # updates between train-dev measurements (one period)
    patience: int  # updates without a better train-dev loss before stopping
    lr: float  # peak learning rate
    schedule: str = "constant"

    @property
    def periods(self) -> int:
        """Most periods (the last one may be shorter than `interval`)."""
        return math.ceil(self.steps / self.interval)

    @property
    def patience_periods(self) -> int:
        """Periods without improvement before stopping (at least one)."""
        return max(1, math.ceil(self.patience / self.interval))

    def steps_in(self, period: int) -> int:
        """Updates in period `period` (1-based)."""
        return min(self.interval, self.steps - (period - 1) * self.interval)

    def lr_at(self, step: int) -> float:
        """The learning rate of update `step` (0-based): constant, or a linear warm-up then cosine
        decay to FINAL_LR_SHARE of the peak at the end of the budget."""
        if self.schedule == "constant":
            return self.lr
        warmup = max(1, round(WARMUP_SHARE * self.steps))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, self.steps - warmup))
        floor = FINAL_LR_SHARE * self.lr
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def plan(steps: int, interval: int, patience: int, lr: float, schedule: str, train_samples: int,
         batch: int) -> StepPlan:
    """The plan for `steps` updates; `interval` 0 is one pass over the train set (at least 50 and
    at most 1000 updates), `patience` 0 is 5 intervals or a fifth of the budget, whichever is more."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    every = interval or min(1000, max(50, math.ceil(train_samples / batch)))
    every = min(every, steps)
    wait = patience or max(5 * every, steps // 5)
    return StepPlan(steps=steps, interval=every, patience=wait, lr=lr, schedule=schedule)


def period_order(n: int, count: int, gen: torch.Generator) -> list[int]:
    """`count` sample positions in [0, n): whole random permutations, concatenated, the last cut."""
    order: list[int] = []
    while len(order) < count:
        order += torch.randperm(n, generator=gen).tolist()
    return order[:count]
