"""`steerbench compare`: the study's contestants on the same episodes of both splits, one report.

Steps: find or train each learned contestant's models (one per training seed; see models.py),
evaluate every copy on the same seeds of each split (a normal, resumable eval run in the same
directory), then summarise per contestant (design.py, stats.py) into `report.md`, `compare.json`,
PNG figures under `figures/` and TensorBoard (report.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from steerbench.agents.registry import AgentSpec
from steerbench.harness import rundir
from steerbench.harness.backends import Backend
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.results import ResultsStore, row_key
from steerbench.sim.runner import EnvSettings
from steerbench.sim.stress import get_condition, unchanged, with_condition
from steerbench.study.contestants import Contestant
from steerbench.study.design import PRIMARY, Entry, Pair, cells, modular_vs_e2e
from steerbench.study.models import EVAL_INDEX, Budget, Models, Timing
from steerbench.study.report import INTERVALS, PAIRS, StudyData, figures, markdown, write_tensorboard
from steerbench.study.stress_report import StressData, stress_data, stress_json


@dataclass(frozen=True)
class CompareConfig:
    """`steerbench compare`: every contestant (a learned one once per training seed) on the same
    episodes of each split; models missing from `models` are trained with `budget`."""

    contestants: tuple[Contestant, ...]
    scenarios: tuple[str, ...]
    budget: Budget  # what is trained when a model is missing
    splits: tuple[str, ...] = ("train", "test")
    episodes: int = 10  # per scenario and split
    seed: int = EVAL_INDEX  # index of the first episode: past the models' training data
    train_seeds: tuple[int, ...] = (0, 1, 2)  # one copy of each learned contestant per seed
    workers: int = 1
    logdir: Path = Path("runs/compare")
    models: Path | None = None  # default: LOGDIR/models
    env: EnvSettings = EnvSettings()
    progress: bool = True
    command: str = ""  # the command line, quoted in the report
    backend: Backend = Backend()  # where evaluation runs (the budget's for data collection)
    # stress conditions (sim/stress.py), each evaluated on the test split with its overrides, in
    # LOGDIR/stress-<name>/, by the same copies on the same episodes; needs "test" in `splits`
    stress: tuple[str, ...] = ()


@dataclass
class CompareOutcome:
    """What `run_compare` returns: the run directory, report.md's path, the study's numbers and the time
    each part took."""

    run_dir: Path
    report: Path
    data: StudyData
    timings: list[Timing] = field(default_factory=list)


def run_compare(cfg: CompareConfig) -> CompareOutcome:
    """Find or train every contestant's models, evaluate every copy on the same episodes of each split,
    and write report.md, compare.json, the figures and TensorBoard.

    Resumable: models found in the models directory are reused and the evaluations are ordinary eval
    runs in `logdir`. Raises what training raises (TrainingError, DatasetError) and what `run_eval`
    raises (AgentError, RunDirError).
    """
    run_dir = Path(cfg.logdir)
    for name in cfg.stress:
        get_condition(name)  # an unknown name fails before any work
    if cfg.stress and "test" not in cfg.splits:
        raise ValueError("stress conditions are evaluated against the test split: add it to the splits")
    models = Models(cfg.models or run_dir / "models", cfg.budget, cfg.env)
    copies = [(c, seed, spec) for c in cfg.contestants for seed, spec in c.instances(models, cfg.train_seeds)]
    specs = tuple(spec for _, _, spec in copies)
    for split in cfg.splits:
        start = time.perf_counter()
        out = run_eval(EvalConfig(agents=specs, scenarios=cfg.scenarios, split=split, episodes=cfg.episodes,
                                  seed=cfg.seed, workers=cfg.workers, logdir=run_dir, env=cfg.env,
                                  progress=cfg.progress, backend=cfg.backend))
        models.timings.append(Timing(f"evaluate {split} split ({out.ran} episodes run now)",
                                     (time.perf_counter() - start) if out.ran else 0.0, out.ran > 0))
    evaluate_stress(cfg, specs, models.timings)
    data = study_data(cfg, run_dir, copies, models.timings)
    return CompareOutcome(run_dir, write_report(data, run_dir, cfg), data, models.timings)


def stress_dir(run_dir: Path, name: str) -> Path:
    """Where a stress condition's evaluation lives: its own run directory, since a run directory refuses to
    mix scenario options."""
    return Path(run_dir) / f"stress-{name}"


def stressed_scenarios(cfg: CompareConfig, name: str) -> tuple[str, ...]:
    """The scenarios of the run that condition `name` changes (the others would repeat the test split)."""
    left = unchanged(name, cfg.scenarios)
    return tuple(s for s in cfg.scenarios if s not in left)


def evaluate_stress(cfg: CompareConfig, specs: tuple[AgentSpec, ...], timings: list[Timing]) -> None:
    """Each stress condition on the test split: the run's overrides with the condition's on top, the same
    copies and episode indices, in `stress_dir`; resumable like every eval run."""
    for name in cfg.stress:
        scenarios = stressed_scenarios(cfg, name)
        if not scenarios:
            continue
        env = dataclasses.replace(cfg.env, fast=cfg.env.fast,
                                  scenario_options=with_condition(cfg.env.scenario_options, name, cfg.scenarios))
        start = time.perf_counter()
        out = run_eval(EvalConfig(agents=specs, scenarios=scenarios, split="test", episodes=cfg.episodes,
                                  seed=cfg.seed, workers=cfg.workers, logdir=stress_dir(cfg.logdir, name), env=env,
                                  progress=cfg.progress, backend=cfg.backend))
        timings.append(Timing(f"evaluate stress {name} on the test split ({out.ran} episodes run now)",
                              (time.perf_counter() - start) if out.ran else 0.0, out.ran > 0))


def stress_of(cfg: CompareConfig, entries: tuple[Entry, ...], rows: tuple[dict, ...]) -> StressData | None:
    """The stress section's numbers from each condition's run directory (configured episodes only), or None
    without conditions."""
    if not cfg.stress:
        return None
    labels = {label for e in entries for label in e.labels}
    indices = range(cfg.seed, cfg.seed + cfg.episodes)
    found = {}
    for name in cfg.stress:
        path = stress_dir(cfg.logdir, name) / "results.jsonl"
        wanted = {(label, s, "test", i) for label in labels for s in stressed_scenarios(cfg, name) for i in indices}
        found[name] = tuple(r for r in ResultsStore(path) if row_key(r) in wanted) if path.exists() else ()
    test_rows = tuple(r for r in rows if r["split"] == "test")
    return stress_data(entries, cfg.scenarios, test_rows, found, {n: unchanged(n, cfg.scenarios) for n in cfg.stress})


def entries_of(copies: list[tuple[Contestant, int | None, AgentSpec]], run_dir: Path) -> tuple[Entry, ...]:
    """One Entry per contestant (first-seen order) from its evaluated copies (contestant, training seed
    or None, spec), with the inputs the run directory recorded for them."""
    inputs = {label: meta["inputs"] for label, meta in rundir.agents_of(run_dir).items()}
    entries = []
    for c in dict.fromkeys(c for c, _, _ in copies):
        mine = [(seed, spec) for cc, seed, spec in copies if cc == c]
        seeds = tuple(s for s, _ in mine if s is not None)
        entries.append(Entry(c.name, c.family, inputs.get(mine[0][1].label, "?"),
                             tuple(spec.label for _, spec in mine), seeds))
    return tuple(entries)


def study_data(cfg: CompareConfig, run_dir: Path, copies: list, timings: list[Timing]) -> StudyData:
    """The study's numbers from the run's results.jsonl, over the configured episodes only: every cell,
    and the modular-vs-e2e pairs with their primary contrasts Holm-corrected."""
    entries = entries_of(copies, run_dir)
    labels = {label for e in entries for label in e.labels}
    wanted = {(label, s, split, i) for label in labels for s in cfg.scenarios for split in cfg.splits
              for i in range(cfg.seed, cfg.seed + cfg.episodes)}
    rows = tuple(r for r in ResultsStore(run_dir / "results.jsonl") if row_key(r) in wanted)
    return StudyData(entries, cfg.scenarios, cfg.splits, tuple(cells(rows, entries, cfg.scenarios, cfg.splits)),
                     tuple(modular_vs_e2e(rows, entries, cfg.scenarios, cfg.splits)), rows, tuple(timings),
                     header_text(cfg), stress_of(cfg, entries, rows))


def header_text(cfg) -> str:
    """Date, machine and command of a study run (`cfg`: a compare or scale configuration)."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node() or 'unknown host'}, {platform.processor() or platform.machine()}, " \
              f"{_cores()} cores, {device}"
    return (f"Made {when} on {machine}.\n\nCommand: `{cfg.command or '(called from Python)'}`\n\n"
            f"Episodes: {cfg.episodes} per scenario and split (indices {cfg.seed}..{cfg.seed + cfg.episodes - 1}), "
            f"training seeds {', '.join(map(str, cfg.train_seeds))}.")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_report(data: StudyData, run_dir: Path, cfg: CompareConfig) -> Path:
    """Write report.md, compare.json, the figures and TensorBoard; return report.md's path."""
    figs = figures(data, run_dir / "figures")
    md = markdown(data, figs, run_dir)
    path = run_dir / "report.md"
    path.write_text(md)
    (run_dir / "compare.json").write_text(json.dumps(compare_json(data), indent=2))
    write_tensorboard(data, run_dir, md, figs)
    return path


def compare_json(d: StudyData) -> dict:
    """The content of compare.json: the statistics used, the contestants, every cell and pair, and the
    timings."""
    return {
        "statistics": {"intervals": INTERVALS, "pairs": PAIRS, "primary": PRIMARY, "correction": "holm",
                       "alpha": 0.05, "primary_contrasts": sum(p.test.primary for p in d.pairs)},
        "contestants": [{"name": e.name, "family": e.family, "inputs": e.inputs, "labels": list(e.labels),
                         "training_seeds": list(e.seeds)} for e in d.entries],
        "cells": [{"contestant": c.contestant, "scenario": c.scenario, "split": c.split, "n": c.n,
                   "interval": c.interval, "metrics": {m: est.as_dict() for m, est in c.metrics.items()},
                   "seeds": {m: s.as_dict() for m, s in c.seeds.items()}} for c in d.cells],
        "pairs": [{"modular": p.a, "e2e": p.b, "scenario": p.scenario, "split": p.split, "metric": p.metric,
                   **p.test.as_dict(), **_needed(p, d.pairs)} for p in d.pairs],
        "timings": [t.as_dict() for t in d.timings],
        **({"stress": stress_json(d.stress)} if d.stress else {}),
    }


def _needed(p: Pair, pairs: Sequence[Pair]) -> dict:
    """For an unresolved primary contrast, what would resolve it (as in the report's table)."""
    if not p.test.primary or p.test.significant() or not p.test.levels:
        return {}
    alpha = 0.05 / sum(q.test.primary for q in pairs)
    return {"needed_for_80pct_power": {**p.test.needed(alpha).as_dict(), "alpha": alpha}}
