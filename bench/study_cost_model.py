"""The cost model of bench/study_cost.py: the hours and CPU-hours of a `steerbench scale` study
from one machine's measured rates (`Rates`), part by part (`project`).

Cost model (printed, one row per part; every trained model runs its full budget: early
stopping is counted as not happening, so the projection is an upper bound). With S scenarios,
nominal episode lengths T_s (steps), N_max the largest N, k seeds, E evaluation episodes per
scenario, B = Budget(frames=N, passes, min_steps, samples) of steerbench.study.models:
- data: sum_s max(4 N_max / S, 16 T_s) train frames (sim.composition: each of a scenario's two
  strata pools >= 4x its frames and >= 8 episodes) + 2 x heldout x sum_s T_s, at collection frames/s;
- network X at N, per seed: U = B.e2e_steps() = max(min_steps, ceil(passes N / 64)) updates,
  U x 64 / train_sps[X], plus ceil(U / I) held-out checks of 2 x heldout x sum_s T_s frames at
  infer_sps[X], I = min(1000, max(50, ceil(N / 64))) (agents.e2e_schedule.plan);
- DA-RB on X at N, per seed: rounds x (rollouts x S episodes + U updates as above) + (rounds + 1) x 5 x
  S closed-loop check episodes; episodes at the e2e family's rate, T_s steps each (the expert's
  labelling and the critical-state scoring are left out: < 2% of an env step, bench/agent_cost.py);
- detector (lanes) at N, per seed: epochs = B.epochs(least) = min(40, max(least, ceil(samples / N)))
  epochs of N frames at train_sps plus (epochs + 1) x 2 x eval_frames held-out frames at infer_sps;
- evaluation: the references once and every copy (curve x N x seed) on E x S episodes, T_s steps
  each, at its family's rate (e2e S, L and DA-RB at e2e M's; modular with map lanes at the
  learned-lanes one's, an upper bound). Hours are this machine's, the parts run one after another;
  CPU-hours = hours x the cores a part keeps busy (workers for episodes, torch threads for training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from steerbench.perception.detector_data import nominal_steps
from steerbench.sim.scenarios import SUITE
from steerbench.study.models import Budget

BATCH = 64  # the networks' batch (TrainConfig.batch)
CHECKS = 5  # DA-RB's closed-loop check episodes per scenario and round (DaggerConfig.eval_episodes)
FAMILIES = ("expert", "modular", "e2e")  # evaluation rates: the expert, modular (learned det. + lanes), e2e M


@dataclass(frozen=True)
class Rates:
    """What one run measured on this machine."""

    collect_fps: float  # expert collection frames/s, fast core, `workers` processes
    train_sps: dict[str, float]  # training samples/s: "S", "M", "L", "detector", "lanes"
    infer_sps: dict[str, float]  # held-out (no-grad) samples/s, same keys
    eval_sps: dict[str, float]  # evaluation steps/s per family (FAMILIES)
    workers: int = 2  # processes of collection and evaluation
    threads: int = 1  # torch threads of training


@dataclass(frozen=True)
class Study:
    """A `steerbench scale` study, in the terms of its flags (steerbench/cli/study.py)."""

    frames: tuple[int, ...] = (300, 1000, 3000, 10000)  # dataset sizes N
    nets: tuple[str, ...] = ("S", "M", "L")
    max_frames: dict[str, int] = field(default_factory=dict)  # a network's largest N (absent: all of `frames`)
    seeds: int = 3  # training seeds
    episodes: int = 10  # evaluation episodes per scenario
    scenarios: tuple[str, ...] = tuple(SUITE)
    passes: float = 20.0
    min_steps: int = 2000
    samples: int = 30000  # the detector's and lane model's samples (more epochs at small N)
    detector_epochs: int = 3  # scale's least epochs of the learned detector
    lane_epochs: int = 10  # and of the lane model
    eval_frames: int = 300  # their held-out frames per split (Budget.detector_eval_frames)
    heldout_episodes: int = 4  # train-dev and dev episodes per scenario
    dagger: tuple[str, ...] = ("M",)
    dagger_rounds: int = 2
    dagger_episodes: int = 10
    detector: bool = True  # the modular curve with map lanes
    pixels: bool = True  # the pixels-only modular curve

    def sizes(self, model: str) -> list[int]:
        """The N at which `model` (a net size, or the modular curves: any other name) is trained."""
        top = self.max_frames.get(model, max(self.frames))
        return [n for n in sorted(self.frames) if n <= top]

    def budget(self, n: int) -> Budget:
        return Budget(scenarios=self.scenarios, frames=n, passes=self.passes, min_steps=self.min_steps,
                      samples=self.samples, detector_epochs=self.detector_epochs, lane_epochs=self.lane_epochs)


@dataclass(frozen=True)
class Part:
    """One row of the cost model."""

    name: str
    copies: int  # models (or runs) it stands for
    work: str  # what they do, in numbers
    hours: float  # on this machine, all copies
    cores: int  # cores kept busy

    @property
    def cpu_hours(self) -> float:
        return self.hours * self.cores


def heldout_frames(study: Study) -> int:
    """Frames of one held-out split (train-dev or dev), full-length episodes."""
    return study.heldout_episodes * sum(nominal_steps(s, "train") for s in study.scenarios)


def collected_frames(study: Study) -> int:
    """Train frames the largest N's composition pools hold, plus the two held-out splits."""
    top = max(max(study.sizes(m)) for m in (*study.nets, "modular"))
    share = top / len(study.scenarios)
    train = sum(max(math.ceil(4 * share), 16 * nominal_steps(s, "train")) for s in study.scenarios)
    return train + 2 * heldout_frames(study)


def network_seconds(study: Study, rates: Rates, size: str, n: int) -> tuple[int, float]:
    """Updates and seconds of one network at N (its full step budget and its held-out checks)."""
    updates = study.budget(n).e2e_steps(BATCH)
    interval = min(updates, min(1000, max(50, math.ceil(n / BATCH))))
    checks = math.ceil(updates / interval)
    return updates, updates * BATCH / rates.train_sps[size] + checks * 2 * heldout_frames(study) / rates.infer_sps[size]


def perception_seconds(study: Study, rates: Rates, model: str, n: int) -> tuple[int, float]:
    """Epochs and seconds of one detector or lane model at N."""
    least = study.detector_epochs if model == "detector" else study.lane_epochs
    epochs = study.budget(n).epochs(least)
    return epochs, epochs * n / rates.train_sps[model] + (epochs + 1) * 2 * study.eval_frames / rates.infer_sps[model]


def episode_seconds(study: Study, rates: Rates, family: str, per_scenario: int) -> float:
    """`per_scenario` full-length episodes of every scenario at `family`'s rate."""
    return per_scenario * sum(nominal_steps(s, "train") for s in study.scenarios) / rates.eval_sps[family]


def project(study: Study, rates: Rates) -> list[Part]:
    """The cost model (module docstring): one Part per row."""
    k, env_cores = study.seeds, rates.workers
    parts = [Part("data collection", 1, f"{collected_frames(study)} frames",
                  collected_frames(study) / rates.collect_fps / 3600, env_cores)]
    copies: list[tuple[str, int]] = []  # (family, copies) evaluated
    for size in study.nets:
        for n in study.sizes(size):
            updates, s = network_seconds(study, rates, size, n)
            parts.append(Part(f"e2e-{size} N={n}", k, f"{updates} updates x {BATCH}", k * s / 3600, rates.threads))
            copies.append(("e2e", k))
    for size in study.dagger:
        for n in study.sizes(size):
            updates, train_s = network_seconds(study, rates, size, n)
            trainings = study.dagger_rounds + (size not in study.nets)  # round 0 is e2e-<size> itself
            rollouts = study.dagger_rounds * study.dagger_episodes + (study.dagger_rounds + 1) * CHECKS
            roll_s = episode_seconds(study, rates, "e2e", rollouts)
            s = trainings * train_s + roll_s
            parts.append(Part(f"DA-RB e2e-{size} N={n}", k, f"{trainings} x {updates} updates, "
                              f"{rollouts} episodes x {len(study.scenarios)} scenarios", k * s / 3600,
                              max(rates.threads, env_cores)))
            copies.append(("e2e", k))
    modular = [m for m, on in (("detector", study.detector or study.pixels), ("lanes", study.pixels)) if on]
    for model in modular:
        for n in study.sizes("modular"):
            epochs, s = perception_seconds(study, rates, model, n)
            parts.append(Part(f"{model} N={n}", k, f"{epochs} epochs x {n} frames", k * s / 3600, rates.threads))
    copies += [("modular", k)] * len(study.sizes("modular")) * (int(study.detector) + int(study.pixels))
    copies += [("expert", 1), ("modular", 1)]  # the references: expert, modular with ground-truth detection
    for family in FAMILIES:
        count = sum(c for f, c in copies if f == family)
        if count:
            parts.append(Part(f"evaluate {family}", count, f"{study.episodes} episodes x {len(study.scenarios)} "
                              f"scenarios each", count * episode_seconds(study, rates, family, study.episodes) / 3600,
                              env_cores))
    return parts


def table(parts: Sequence[Part]) -> str:
    rows = ["| part | copies | work per copy | hours | cores | CPU-hours |", "|---|---|---|---|---|---|"]
    rows += [f"| {p.name} | {p.copies} | {p.work} | {p.hours:.3f} | {p.cores} | {p.cpu_hours:.3f} |" for p in parts]
    rows.append(f"| total | | | {sum(p.hours for p in parts):.3f} | | {sum(p.cpu_hours for p in parts):.3f} |")
    return "\n".join(rows)
