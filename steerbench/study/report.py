"""The comparison study's report: `report.md`, PNG figures and TensorBoard, from the study's numbers.

TensorBoard (docs/study.md): one run per contestant, `tb/study/<contestant>`, so one chart
overlays the contestants:

* `study/<split>/<metric>`: the contestant's mean with step = the scenario's position in the
  report (the custom-scalars layout "study" names the order) and `study/overall/<split>/<metric>`
  (step 0), the HParams metrics;
* an HParams entry per contestant (family, inputs, training seeds, options);
* with `compare --stress`: `study/stress/<condition>/driving_score` and `.../degradation` (condition
  minus test, overall; step 0);
* text `report` (this markdown) and images `study/figures/<name>` in the first contestant's run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from steerbench.harness.intervals import format_p
from steerbench.harness.summary import table
from steerbench.study.design import OVERALL, PRIMARY, Cell, Entry, Pair
from steerbench.study.failures import analyse
from steerbench.study.models import Timing
from steerbench.study.stress_report import StressData, stress_section

from . import plots

REPORT_METRICS = (("driving_score", "driving score"), ("success", "success"), ("collision", "collision"),
                  ("route_completion", "route completion"), ("steering_smoothness", "steer rate /s"))
HPARAM_METRICS = ("driving_score", "success", "collision")


@dataclass(frozen=True)
class StudyData:
    """Everything the comparison report is made from."""

    entries: tuple[Entry, ...]
    scenarios: tuple[str, ...]
    splits: tuple[str, ...]
    cells: tuple[Cell, ...]
    pairs: tuple[Pair, ...]
    rows: tuple[dict, ...]
    timings: tuple[Timing, ...]
    header: str  # command, date, machine: who made these numbers and how
    stress: StressData | None = None  # compare --stress: the "Beyond the test split" section

    def cell(self, contestant: str, scenario: str, split: str) -> Cell | None:
        """The cell of (contestant, scenario, split), or None."""
        return next((c for c in self.cells if (c.contestant, c.scenario, c.split) == (contestant, scenario, split)),
                    None)


# -- markdown ---------------------------------------------------------------------------------
SPREAD_METRICS = ("driving_score", "success")  # shown with their spread over training seeds


def _value(c: Cell | None, metric: str) -> str:
    if c is None or not c.n:
        return "-"
    text = c.metrics[metric].fmt()
    spread = c.seeds.get(metric) if metric in SPREAD_METRICS else None
    return f"{text}; seeds {spread.fmt()}" if spread and spread.n > 1 else text


def results_table(d: StudyData, split: str, scenario: str = OVERALL) -> str:
    """Markdown: one row per contestant in `scenario` (default OVERALL) of `split`, with the
    REPORT_METRICS (driving score and success with their spread over training seeds)."""
    header = ["contestant", "inputs", "n"] + [name for _, name in REPORT_METRICS]
    body = []
    for e in d.entries:
        c = d.cell(e.name, scenario, split)
        body.append([e.name, e.inputs, str(c.n if c else 0)] + [_value(c, m) for m, _ in REPORT_METRICS])
    return table(header, body, markdown=True)


def scenario_table(d: StudyData, split: str, metric: str = "driving_score") -> str:
    """Markdown: `metric` per contestant and scenario (and overall) of `split`."""
    header = ["contestant", "inputs"] + list(d.scenarios) + [OVERALL]
    body = [[e.name, e.inputs] + [_value(d.cell(e.name, s, split), metric) for s in (*d.scenarios, OVERALL)]
            for e in d.entries]
    return table(header, body, markdown=True)


def pairs_table(pairs: Sequence[Pair], power: bool = False) -> str:
    """`power`: a column saying what would resolve each unresolved pair (`PairedTest.needed`)."""
    header = ["split", "scenario", "modular", "end-to-end", "n", "difference (modular - e2e)", "p", "Holm p",
              "verdict"] + (["to resolve (80% power)"] if power else [])
    body = [[p.split, p.scenario, p.a, p.b, str(p.test.n), p.test.difference.fmt(), format_p(p.test.p_value),
             format_p(p.test.p_holm) if p.test.primary else "-", p.test.verdict(p.a, p.b)]
            + ([_to_resolve(p, 0.05 / len(pairs))] if power else []) for p in pairs]
    return table(header, body, markdown=True)


def _to_resolve(p: Pair, alpha: float) -> str:
    return "-" if p.test.significant() or not p.test.levels else p.test.needed(alpha).fmt()


INTERVALS = ("Means over episodes and, for a learned contestant, over its copies (one per training seed), "
             "with 95% intervals. With several training seeds the interval covers both levels, the seeds "
             "one could have trained and the episodes one could have drawn (a two-level t interval: each "
             "level's variance widened by its own t quantile, docs/study.md); with one seed, or nothing "
             "learned, it is a BCa bootstrap over episodes. `seeds` gives the mean ± sd of the copies' own means.")
PAIRS = ("Driving score, modular minus end-to-end, on the episodes every copy of both ran; the interval and p "
         "include each side's training seeds (two-level t, p by inverting the interval, so p < 0.05 exactly "
         "when the 95% interval excludes 0).")


def pairs_section(pairs: Sequence[Pair]) -> list[str]:
    """The report's lines on the modular-vs-e2e pairs: the primary contrasts (with what would resolve
    each unresolved one), then the exploratory overall pairs."""
    primary = [p for p in pairs if p.test.primary]
    exploratory = [p for p in pairs if not p.test.primary and p.scenario == OVERALL]
    out = ["## Modular vs end-to-end, paired on the same episodes", "", PAIRS, "",
           f"### Primary contrasts ({len(primary)}, Holm-corrected together)", "",
           "Declared before the run, from the line-up alone. " + PRIMARY, ""]
    out += [pairs_table(primary, power=True) if primary else "None in this line-up: it needs a modular contestant "
            "with pixels or pixels+map inputs and an end-to-end one.", ""]
    if primary:
        out += ["`to resolve`: the training seeds per learned contestant (episodes as now), or the episodes (seeds as "
                "now), with which a true difference of the size observed would be resolved 80% of the time at "
                f"p < 0.05/{len(primary)} (enough for Holm whatever the other contrasts do), if the variances per "
                "seed and per episode stay as estimated.", ""]
    if exploratory:
        out += ["### Exploratory (no correction; a hint, not a finding)", "", pairs_table(exploratory), ""]
    return out + ["Per scenario (exploratory): `compare.json`.", ""]


COPY_STRIDE = 10**9  # pooled copies keep distinct episode keys: index + copy number * COPY_STRIDE


def errors_section(d: StudyData, top: int = 3) -> str:
    """The top failure categories of each contestant, its copies (training seeds) pooled."""
    copy = {label: (e.name, k) for e in d.entries for k, label in enumerate(e.labels)}
    rows = [{**r, "agent": copy[r["agent"]][0], "index": r["index"] + copy[r["agent"]][1] * COPY_STRIDE}
            for r in d.rows if r["agent"] in copy]
    body = []
    for a in analyse(rows):
        for g in a.groups[:top]:
            body.append([a.agent, str(g.rank), g.category, str(g.count), f"{g.cost:.3f}",
                         ", ".join(f"{s.scenario} ({s.episodes})" for s in g.scenarios)])
    if not body:
        return "No failed episodes."
    return table(["contestant", "rank", "category", "episodes", "driving-score cost", "scenarios"], body, True)


def timings_table(timings: Sequence[Timing]) -> str:
    """Markdown: the time each part took, and the total of what ran now (reused models not counted)."""
    def when(t: Timing) -> str:
        if t.trained:
            return f"{t.seconds / 60:.1f} min"
        return f"reused (took {t.seconds / 60:.1f} min)" if t.seconds else "reused"

    total = sum(t.seconds for t in timings if t.trained)
    return table(["part", "time"], [[t.part, when(t)] for t in timings] + [["total now", f"{total / 60:.1f} min"]],
                 markdown=True)


def markdown(d: StudyData, figures: dict[str, Path], run_dir: Path) -> str:
    """The content of report.md; figure links are relative to `run_dir`."""
    parts = ["# Modular vs end-to-end: comparison report", "", d.header, "", INTERVALS, ""]
    single = [e.name for e in d.entries if len(e.seeds) == 1]
    if single:
        parts += [f"Trained with one seed: {', '.join(single)}. Their intervals and tests are over episodes only "
                  "and leave out the variation between training seeds (`--train-seeds 0,1,2` measures it).", ""]
    for split in d.splits:
        parts += [f"## {split} split", "", results_table(d, split), "", "Driving score per scenario:", "",
                  scenario_table(d, split), ""]
        parts += [f"![{name}]({path.relative_to(run_dir)})" for name, path in figures.items() if split in name]
        parts += [""]
    if d.pairs:
        parts += pairs_section(d.pairs)
    if d.stress:
        parts += stress_section(d.stress, d.entries, d.scenarios)
    parts += ["## Error analysis (top categories)", "", "Ranked by the driving score each failure category "
              "costs per episode; `steerbench errors RUN` adds clips.", "", errors_section(d), ""]
    parts += ["## Time", "", timings_table(d.timings), ""]
    return "\n".join(parts)


# -- figures ----------------------------------------------------------------------------------
def figures(d: StudyData, out: Path) -> dict[str, Path]:
    """Write the report's figures under `out` (driving score, success vs collision and steering
    smoothness, per split); name -> path."""
    made = {}
    for split in d.splits:
        made[f"driving score, {split}"] = plots.driving_score_chart(
            _bars(d, split, "driving_score"), out / f"driving_score_{split}.png",
            title=f"Driving score by scenario ({split} split)")
        made[f"success vs collision, {split}"] = plots.success_vs_collision_chart(
            _points(d, split), out / f"success_vs_collision_{split}.png",
            title=f"Success vs collision rate, all scenarios ({split} split)")
        made[f"steering smoothness, {split}"] = plots.steering_smoothness_chart(
            _bars(d, split, "steering_smoothness"), out / f"steering_smoothness_{split}.png",
            title=f"Steering rate by scenario ({split} split)")
    return made


def _bars(d: StudyData, split: str, metric: str) -> list[plots.Bar]:
    out = []
    for s in (*d.scenarios, OVERALL):
        for e in d.entries:
            c = d.cell(e.name, s, split)
            if c and c.n:
                est = c.metrics[metric]
                out.append(plots.Bar(f"{e.name} [{e.inputs}]", s, est.mean, est.low, est.high))
    return out


def _points(d: StudyData, split: str) -> list[plots.Point2]:
    out = []
    for e in d.entries:
        c = d.cell(e.name, OVERALL, split)
        if c and c.n:
            col, suc = c.metrics["collision"], c.metrics["success"]
            out.append(plots.Point2(f"{e.name} [{e.inputs}]", col.mean, col.low, col.high, suc.mean, suc.low,
                                    suc.high))
    return out


# -- TensorBoard ------------------------------------------------------------------------------
def write_tensorboard(d: StudyData, run_dir: Path, md: str, figs: dict[str, Path]) -> None:
    """Rebuild tb/study/<contestant> from the study's numbers (layout in the module docstring)."""
    from torch.utils.tensorboard import SummaryWriter

    root = run_dir / "tb" / "study"
    shutil.rmtree(root, ignore_errors=True)  # rebuilt whole from the results, like the eval view
    for i, e in enumerate(d.entries):
        writer = SummaryWriter(str(root / e.name))
        try:
            _scalars(writer, d, e)
            _hparams(writer, d, e)
            if i == 0:
                writer.add_custom_scalars(_layout(d))
                writer.add_text("report", md)
                for name, path in figs.items():
                    writer.add_image(f"study/figures/{name.replace(', ', '_').replace(' ', '_')}",
                                     plots.png_to_array(path), 0, dataformats="HWC")
        finally:
            writer.close()


def _scalars(writer, d: StudyData, e: Entry) -> None:
    for split in d.splits:
        for step, s in enumerate(d.scenarios):
            c = d.cell(e.name, s, split)
            for m, _ in REPORT_METRICS:
                if c and c.n:
                    writer.add_scalar(f"study/{split}/{m}", c.metrics[m].mean, step)
    for x in d.stress.degradations if d.stress else ():
        if x.contestant == e.name and x.scenario == OVERALL and x.n:
            writer.add_scalar(f"study/stress/{x.condition}/driving_score", x.stressed.mean, 0)
            writer.add_scalar(f"study/stress/{x.condition}/degradation", x.difference.mean, 0)


def _hparams(writer, d: StudyData, e: Entry) -> None:
    from torch.utils.tensorboard.summary import hparams

    hp = {"contestant": e.name, "family": e.family, "inputs": e.inputs, "training_seeds": len(e.seeds) or 0}
    metrics = {}
    for split in d.splits:
        c = d.cell(e.name, OVERALL, split)
        for m in HPARAM_METRICS:
            if c and c.n:
                tag = f"study/overall/{split}/{m}"
                writer.add_scalar(tag, c.metrics[m].mean, 0)
                metrics[tag] = c.metrics[m].mean
    for summary in hparams(hp, metrics):
        writer.file_writer.add_summary(summary)


def _layout(d: StudyData) -> dict:
    order = ", ".join(f"{i} {s}" for i, s in enumerate(d.scenarios))
    return {f"study {split} (x: scenario {order})": {
        name: ["Multiline", [f"study/{split}/{m}$"]] for m, name in REPORT_METRICS} for split in d.splits}
