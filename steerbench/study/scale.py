"""`steerbench scale`: Ng's data-scaling curve, measured.

For every dataset size N: the end-to-end networks (S, M, L by default) and the modular agent's
learned detector are trained on the same first N train frames (one documented order, see
`agents.e2e_train.first_frames`), then every model and two references (the expert and the modular
agent with ground-truth detection) drive the same episodes. Output in the run directory:
`scale.csv`, `figures/scaling.png` (driving score vs N, log x, 95% bands), `scale.md`
and TensorBoard runs `tb/scale/<model>` with the tag `scale/<split>/driving_score` (and `_low`,
`_high`) at step N, so the curves overlay; the references are drawn as flat lines there too.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from steerbench.harness.backends import Backend
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.results import ResultsStore
from steerbench.harness.summary import table
from steerbench.sim.runner import EnvSettings
from steerbench.study.compare import entries_of, header_text
from steerbench.study.contestants import Contestant, dagger_contestant, lineup
from steerbench.study.design import OVERALL, Cell, Entry, cell, pair
from steerbench.study.models import EVAL_INDEX, Budget, Models, Timing
from steerbench.study.stats import PairedTest, holm_family

from . import plots
from .scale_training import Trained, trained, training_table

REFERENCES = ("expert", "modular-gt-map")
MODULAR = "modular-learned-map"  # the modular curve with map lanes: its detector trains on the same N frames
PIXELS = "modular-learned-learned"  # the pixels-only modular curve: detector and lane model on the same N frames
PRIMARY = ("at each N, every network minus each modular curve (same N, same episodes), and for each curve its "
           "largest N minus the N before (still improving?), Holm-corrected together; the curves' other steps "
           "are exploratory")


@dataclass(frozen=True)
class ScaleConfig:
    """`steerbench scale`: at each dataset size N of `frames`, the networks `nets` (and the modular agent
    with its learned detector) trained on the first N train frames, all driving the same episodes of
    one split with the references."""

    frames: tuple[int, ...]  # dataset sizes N
    scenarios: tuple[str, ...]
    budget: Budget  # `frames` is set per N
    nets: tuple[str, ...] = ("S", "M", "L")
    detector: bool = True  # also the modular agent with the learned detector (lanes from the map)
    pixels: bool = True  # also the pixels-only modular agent (learned detector and learned lanes)
    dagger: tuple[str, ...] = ("M",)  # networks that also get a DA-RB curve (Budget.dagger_*)
    split: str = "train"
    episodes: int = 10
    seed: int = EVAL_INDEX  # index of the first episode: past the models' training data
    train_seeds: tuple[int, ...] = (0,)
    workers: int = 1
    logdir: Path = Path("runs/scale")
    models: Path | None = None  # default: LOGDIR/models
    env: EnvSettings = EnvSettings()
    progress: bool = True
    command: str = ""
    backend: Backend = Backend()  # where evaluation runs (the budget's for data collection)


@dataclass(frozen=True)
class Point:
    """One model at one dataset size: its driving-score cell and its paired tests."""

    model: str  # e2e-S, ..., modular-learned-map
    frames: int
    cell: Cell
    vs_previous: PairedTest | None = None  # driving score at this N minus at the N before, same episodes
    vs_modular: PairedTest | None = None  # an e2e model minus the modular agent at the same N, same episodes
    vs_pixels: PairedTest | None = None  # an e2e model minus the pixels-only modular agent, the same way


@dataclass
class ScaleOutcome:
    """What `run_scale` returns: every point, the references' cells and the timings."""

    run_dir: Path
    points: list[Point]
    references: dict[str, Cell]
    timings: list[Timing] = field(default_factory=list)
    training: list[Trained] = field(default_factory=list)  # how each network was trained


def _grown(base: Contestant, n: int) -> Contestant:
    return dataclasses.replace(base, name=f"{base.name}-n{n}")


def run_scale(cfg: ScaleConfig) -> ScaleOutcome:
    """Train what is missing at every N, evaluate every model and the references on the same episodes
    (one resumable eval run in `logdir`), Holm-correct the primary contrasts and write the outputs
    (scale.csv, scale.md, figures/scaling.png, TensorBoard)."""
    run_dir = Path(cfg.logdir)
    known, bases = lineup(), curves(cfg)
    timings: list[Timing] = []
    copies = [(known[r], None, spec) for r in REFERENCES for _, spec in known[r].instances(None, ())]
    for n in sorted(cfg.frames):
        models = Models(cfg.models or run_dir / "models", dataclasses.replace(cfg.budget, frames=n), cfg.env, timings)
        for base in bases:
            grown = _grown(base, n)
            copies += [(grown, seed, spec) for seed, spec in grown.instances(models, cfg.train_seeds)]
    start = time.perf_counter()
    out = run_eval(EvalConfig(agents=tuple(spec for _, _, spec in copies), scenarios=cfg.scenarios, split=cfg.split,
                              episodes=cfg.episodes, seed=cfg.seed, workers=cfg.workers, logdir=run_dir, env=cfg.env,
                              progress=cfg.progress, backend=cfg.backend))
    elapsed = time.perf_counter() - start if out.ran else 0.0
    timings.append(Timing(f"evaluate ({out.ran} episodes run now)", elapsed, out.ran > 0))
    entries = {e.name: e for e in entries_of(copies, run_dir)}
    rows = list(ResultsStore(run_dir / "results.jsonl"))
    wanted = [r for r in rows if r["split"] == cfg.split and cfg.seed <= r["index"] < cfg.seed + cfg.episodes
              and r["scenario"] in cfg.scenarios]
    points = declare_primary([_point(wanted, entries, b.name, n, sorted(cfg.frames), cfg.split)
                              for b in bases for n in sorted(cfg.frames)])
    refs = {r: cell(wanted, entries[r], OVERALL, cfg.split) for r in REFERENCES}
    outcome = ScaleOutcome(run_dir, points, refs, timings, _training(copies))
    write_outputs(outcome, cfg)
    return outcome


def _training(copies) -> list[Trained]:
    """The training record of every network copy (e2e and DAgger curves)."""
    out = []
    for contestant, seed, spec in copies:
        checkpoint = dict(spec.options).get("checkpoint")
        if contestant.family == "e2e" and checkpoint:
            model, n = contestant.name.rsplit("-n", 1)
            record = trained(model, int(n), seed, Path(checkpoint).parent.parent)
            out += [record] if record else []
    return out


def curves(cfg: ScaleConfig) -> list[Contestant]:
    """The curves of a scale run: each network (behaviour cloning), the DA-RB ones, then the
    modular agent with map lanes and the pixels-only one."""
    known = lineup()
    out = [known[f"e2e-{s}"] for s in cfg.nets] + [dagger_contestant(s) for s in cfg.dagger]
    return out + [known[m] for m, on in ((MODULAR, cfg.detector), (PIXELS, cfg.pixels)) if on]


def _point(rows: Sequence[dict], entries: dict[str, Entry], model: str, n: int, sizes: Sequence[int],
           split: str) -> Point:
    here = entries[f"{model}-n{n}"]
    k = sizes.index(n)
    before = pair(rows, here, entries[f"{model}-n{sizes[k - 1]}"], OVERALL, split).test if k else None

    def against(modular: str) -> PairedTest | None:
        other = entries.get(f"{modular}-n{n}")
        return pair(rows, here, other, OVERALL, split).test if other and model.startswith("e2e") else None

    return Point(model, n, cell(rows, here, OVERALL, split), before, against(MODULAR), against(PIXELS))


def declare_primary(points: Sequence[Point]) -> list[Point]:
    """`PRIMARY` marked and Holm-corrected: which tests count is fixed by the sizes and models."""
    largest = {p.model: max(q.frames for q in points if q.model == p.model) for p in points}
    slots = [(i, f) for i, p in enumerate(points) for f in ("vs_modular", "vs_pixels") if getattr(p, f) is not None]
    slots += [(i, "vs_previous") for i, p in enumerate(points)
              if p.vs_previous is not None and p.frames == largest[p.model]]
    tests = holm_family([getattr(points[i], f) for i, f in slots], [True] * len(slots))
    out = list(points)
    for (i, f), t in zip(slots, tests):
        out[i] = dataclasses.replace(out[i], **{f: t})
    return out


# -- outputs ----------------------------------------------------------------------------------
def write_outputs(out: ScaleOutcome, cfg: ScaleConfig) -> None:
    """Write scale.csv, figures/scaling.png, scale.md and the TensorBoard runs tb/scale/<model>."""
    _csv(out, out.run_dir / "scale.csv")
    figure = plots.scaling_chart(
        [plots.CurvePoint(p.model, p.frames, *_ds(p.cell)) for p in out.points],
        {_reference_label(r): c.metrics["driving_score"].mean for r, c in out.references.items()},
        out.run_dir / "figures" / "scaling.png",
        title=f"Driving score vs training frames ({cfg.split} split, {', '.join(cfg.scenarios)})")
    md = scale_markdown(out, cfg, figure)
    (out.run_dir / "scale.md").write_text(md)
    _tensorboard(out, cfg, md, figure)


def _ds(c: Cell) -> tuple[float, float, float]:
    e = c.metrics["driving_score"]
    return e.mean, e.low, e.high


def _reference_label(name: str) -> str:
    return {"expert": "expert (privileged)", "modular-gt-map": "modular, ground-truth detection"}.get(name, name)


def _csv(out: ScaleOutcome, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "frames", "driving_score", "ci_low", "ci_high", "success", "episodes", "training_seeds",
                    "interval"])
        for p in out.points:
            w.writerow([p.model, p.frames, *(f"{v:.4f}" for v in _ds(p.cell)),
                        f"{p.cell.metrics['success'].mean:.4f}", p.cell.n,
                        p.cell.seeds.get("driving_score").n if p.cell.seeds else 0, p.cell.interval])
        for name, c in out.references.items():
            w.writerow([name, "", *(f"{v:.4f}" for v in _ds(c)), f"{c.metrics['success'].mean:.4f}", c.n, 0,
                        c.interval])


def findings(out: ScaleOutcome) -> list[str]:
    """What the curves show, in words computed from the points (no claim the data cannot back)."""
    lines = []
    for model in dict.fromkeys(p.model for p in out.points):
        curve = sorted((p for p in out.points if p.model == model), key=lambda p: p.frames)
        against = [_crossing(curve, f, name) for f, name in (("vs_modular", "the modular agent with map lanes"),
                                                              ("vs_pixels", "the pixels-only modular agent"))]
        crossing = "".join(f"{c}; " for c in against if c) if model.startswith("e2e") else ""
        lines.append(f"- {model}: {crossing}{_trend(curve)}.")
    primary = sum(t is not None and t.primary for p in out.points for t in (p.vs_modular, p.vs_pixels, p.vs_previous))
    if primary:
        lines.append(f"- \"Resolved\" is decided on Holm's p over the {primary} primary contrasts, declared before "
                     f"the run: {PRIMARY}.")
    seeds = {p.cell.seeds["driving_score"].n if p.cell.seeds else 1 for p in out.points}
    if lines and max(seeds) < 2:
        lines.append("- Paired tests are over episodes of one trained model per point: they do not include the "
                     "variation between training seeds (`--train-seeds 0,1,2` measures it).")
    return lines


def _crossing(curve: Sequence[Point], field: str, name: str) -> str:
    """Where the e2e curve first reaches a modular one (`field` holds the paired tests), or the
    bound: no crossing up to the largest N, and the network's gain per decade of data there."""
    if all(getattr(p, field) is None for p in curve):
        return ""
    for p in curve:
        t = getattr(p, field)
        if t is not None and t.difference.mean >= 0:
            how = "resolved above it" if t.significant() else "not resolved apart"
            return f"first reaches {name} at N = {p.frames} ({_diff(t)}, {how})"
    last = curve[-1]
    t = getattr(last, field)
    how = "resolved" if t.significant() else "not resolved"
    return f"no crossing with {name} up to N = {last.frames} ({_diff(t)}, {how}){_per_decade(curve)}"


def _per_decade(curve: Sequence[Point]) -> str:
    """The network's gain per decade of data between its two largest N (the paired difference
    and its interval divided by the decades between them)."""
    if len(curve) < 2 or curve[-1].vs_previous is None:
        return ""
    decades = math.log10(curve[-1].frames / curve[-2].frames)
    d = curve[-1].vs_previous.difference
    return (f"; its gain per decade of data from N = {curve[-2].frames} to {curve[-1].frames} is "
            f"{d.mean / decades:+.2f} [{d.low / decades:+.2f}, {d.high / decades:+.2f}]")


def _trend(curve: Sequence[Point]) -> str:
    if len(curve) < 2:
        return "one dataset size only"
    a, b = curve[-2], curve[-1]
    t = b.vs_previous
    change = f"N = {a.frames} -> {b.frames}: {a.cell.metrics['driving_score'].mean:.2f} -> " \
             f"{b.cell.metrics['driving_score'].mean:.2f}, {_diff(t)}"
    if t.significant() and t.difference.mean > 0:
        return f"still improving ({change})"
    if t.significant() and t.difference.mean < 0:
        return f"worse with more data ({change})"
    return f"no resolved change ({change})"


def _diff(t: PairedTest) -> str:
    d = t.difference
    return f"paired difference {d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}], {t.p_text()}"


def scale_table(out: ScaleOutcome, frames: Sequence[int], markdown: bool) -> str:
    """Driving score (with its interval) per model and dataset size; a reference repeats its one value."""
    sizes = sorted(frames)
    models = list(dict.fromkeys(p.model for p in out.points))
    body = [[m] + [next(p.cell.metrics["driving_score"].fmt() for p in out.points if (p.model, p.frames) == (m, n))
                   for n in sizes] for m in models]
    body += [[r] + [c.metrics["driving_score"].fmt()] * len(sizes) for r, c in out.references.items()]
    return table(["model"] + [f"N = {n}" for n in sizes], body, markdown)


def scale_markdown(out: ScaleOutcome, cfg: ScaleConfig, figure: Path) -> str:
    """The content of scale.md."""
    from steerbench.study.report import timings_table

    return "\n".join([
        "# Driving score vs training data", "", header_text(cfg), "",
        f"Driving score over {len(cfg.scenarios)} scenario(s) x {cfg.episodes} episodes, 95% intervals: over "
        "training seeds and episodes (two-level t) where a model has several training seeds, else a BCa bootstrap "
        "over episodes. Paired tests are on the same episodes, each side's training seeds in the uncertainty "
        "(docs/study.md).", "",
        scale_table(out, cfg.frames, markdown=True), "",
        f"![scaling]({figure.relative_to(out.run_dir)})", "", "What it shows:", "", *findings(out), "",
        "## Training", "", "Every network's updates, read back from its run (early stopping on train-dev; the "
        "checkpoint is the best step's).", "", training_table(out.training), "",
        "## Time", "", timings_table(out.timings), ""])


def _tensorboard(out: ScaleOutcome, cfg: ScaleConfig, md: str, figure: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    root = out.run_dir / "tb" / "scale"
    shutil.rmtree(root, ignore_errors=True)
    series = {p.model: [] for p in out.points}
    for p in out.points:
        series[p.model].append((p.frames, p.cell))
    series.update({r: [(n, c) for n in sorted(cfg.frames)] for r, c in out.references.items()})
    tag = f"scale/{cfg.split}/driving_score"
    for i, (model, cells) in enumerate(series.items()):
        writer = SummaryWriter(str(root / model))
        try:
            for n, c in cells:
                for suffix, value in zip(("", "_low", "_high"), _ds(c)):
                    writer.add_scalar(tag + suffix, value, n)
            if i == 0:
                writer.add_text("scale", md)
                writer.add_image("scale/figure", plots.png_to_array(figure), 0, dataformats="HWC")
        finally:
            writer.close()

