"""TensorBoard view of an evaluation, rebuilt from `results.jsonl` (the source of truth).

Layout (documented in docs/tensorboard.md): one TensorBoard run per agent, `tb/<agent>`, so the
same tag of different agents overlays in one chart.

* `eval/<scenario>/<split>/<metric>`: one point per episode, step = episode index;
* `summary/<scenario>/<split>/<metric>`: the mean over the episodes (step 0), also the HParams
  metrics;
* `control/<scenario>/<split>/steering`: histogram of the applied steering;
* `media/<scenario>/<split>`: frame strips of the first episodes;
* text `summary`: the summary table; text `agent`: the agent, its inputs and options.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from steerbench.harness.summary import Group
from steerbench.sim.metrics import METRIC_NAMES, STEER_BINS

HPARAM_METRICS = ("driving_score", "success", "route_completion")


def tb_dir(run_dir: Path, agent: str) -> Path:
    """The TensorBoard run of one agent: RUN/tb/<agent>."""
    return Path(run_dir) / "tb" / agent


def write_tensorboard(
    run_dir: Path, rows: Sequence[dict], groups: Sequence[Group], agents: dict[str, dict], summary_md: str
) -> None:
    """Rebuild the TensorBoard view of `rows` (layout in the module docstring): each agent's
    tb/<agent> is deleted and written whole, so a resumed run never duplicates a point.
    `agents`: label -> {"inputs": ..., "target": ..., "options": {...}}."""
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_agent[r["agent"]].append(r)
    for agent, agent_rows in by_agent.items():
        path = tb_dir(run_dir, agent)
        shutil.rmtree(path, ignore_errors=True)  # regenerated whole: resumed runs never duplicate
        writer = SummaryWriter(log_dir=str(path))
        try:
            meta = agents.get(agent, {})
            _episodes(writer, agent_rows)
            _histograms(writer, agent_rows)
            _hparams(writer, agent, meta, [g for g in groups if g.agent == agent])
            _strips(writer, Path(run_dir) / "media" / agent)
            writer.add_text("summary", summary_md)
            writer.add_text("agent", f"**{agent}** [{meta.get('inputs', '?')}] `{meta.get('target', '')}` "
                                     f"options: `{meta.get('options', {})}`")
        finally:
            writer.close()


def _episodes(writer: SummaryWriter, rows: Sequence[dict]) -> None:
    for r in sorted(rows, key=lambda r: r["index"]):
        base = f"eval/{r['scenario']}/{r['split']}"
        for m in METRIC_NAMES:
            writer.add_scalar(f"{base}/{m}", float(r["metrics"][m]), global_step=int(r["index"]))
        for key, value in r.get("agent_stats", {}).items():  # "section/name", e.g. "time/detect_ms_p95"
            section, _, name = key.partition("/")
            writer.add_scalar(f"{section}/{r['scenario']}/{r['split']}/{name}", value, global_step=int(r["index"]))


def _histograms(writer: SummaryWriter, rows: Sequence[dict]) -> None:
    counts: dict[tuple, np.ndarray] = {}
    for r in rows:
        key = (r["scenario"], r["split"])
        counts[key] = counts.get(key, 0) + np.asarray(r["steering_hist"], dtype=float)
    for (scenario, split), c in counts.items():
        if c.sum() == 0:
            continue
        centres = (STEER_BINS[:-1] + STEER_BINS[1:]) / 2
        writer.add_histogram_raw(
            f"control/{scenario}/{split}/steering",
            min=-1.0,
            max=1.0,
            num=int(c.sum()),
            sum=float((c * centres).sum()),
            sum_squares=float((c * centres**2).sum()),
            bucket_limits=STEER_BINS[1:].tolist(),
            bucket_counts=c.tolist(),
            global_step=0,
        )


def _hparams(writer: SummaryWriter, agent: str, meta: dict, groups: Sequence[Group]) -> None:
    hp = {"agent": agent, "inputs": meta.get("inputs", "?"), "target": meta.get("target", "")}
    for k, v in meta.get("options", {}).items():
        hp[f"opt.{k}"] = v
    metrics = {}
    for g in groups:
        for m in HPARAM_METRICS:
            metrics[f"summary/{g.scenario}/{g.split}/{m}"] = g.metrics[m].mean
    for m, e in ((f"summary/{g.scenario}/{g.split}/{m}", g.metrics[m]) for g in groups for m in g.metrics):
        writer.add_scalar(m, e.mean, global_step=0)
    exp, ssi, sei = hparams(hp, metrics)
    for summary in (exp, ssi, sei):
        writer.file_writer.add_summary(summary)


def _strips(writer: SummaryWriter, media: Path) -> None:
    if not media.is_dir():
        return
    for png in sorted(media.glob("*.png")):
        img = cv2.imread(str(png), cv2.IMREAD_COLOR)
        if img is None:
            continue
        scenario, split, index = png.stem.rsplit("_", 2)
        writer.add_image(f"media/{scenario}/{split}", img[..., ::-1].copy(), global_step=int(index), dataformats="HWC")


def save_strip(
    run_dir: Path, agent: str, scenario: str, split: str, index: int, frames: Sequence[np.ndarray]
) -> Path | None:
    """Frames side by side (RGB), 2 px apart, as media/<agent>/<scenario>_<split>_<index>.png."""
    if not frames:
        return None
    h = frames[0].shape[0]
    gap = np.full((h, 2, 3), 255, dtype=np.uint8)
    parts = []
    for f in frames:
        parts += [f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2), gap]
    strip = np.concatenate(parts[:-1], axis=1)
    path = Path(run_dir) / "media" / agent / f"{scenario}_{split}_{index}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), strip[..., ::-1])
    return path
