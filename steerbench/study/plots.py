"""Figures for the comparison study, written as PNG files.

Each chart is built on its own `matplotlib.figure.Figure` with an Agg canvas (no pyplot
global state, never interactive), so charts can be drawn from worker processes and tests.
The private `_*_figure` builders return the Figure for inspection; the public functions save it.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGSIZE = (8.0, 4.5)  # [in]
DPI = 100
MANY_GROUPS = 5  # more x groups than this (or long names): rotate the x labels
LABEL_WIDTH = 28  # [characters] legend entries are wrapped at this width


@dataclass(frozen=True)
class Bar:
    """One bar: an agent's mean and interval in one group."""

    agent: str
    group: str  # scenario, or "overall"
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Point2:
    """One agent at (x, y), with an interval on each axis."""

    agent: str
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float
    y_high: float


@dataclass(frozen=True)
class CurvePoint:
    """One point of a scaling curve: a model's mean and interval at `n` training frames."""

    model: str
    n: int  # training frames
    mean: float
    low: float
    high: float


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", bbox_inches="tight")  # keeps an outside legend in frame
    return path


def _colour(i: int) -> tuple:
    return matplotlib.colormaps["tab10"](i % 10)


def _ordered(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))  # first-appearance order


def _err(centre: float, low: float, high: float) -> list[list[float]] | None:
    """Asymmetric error bar lengths, or None when a bound is missing (n < 2)."""
    if any(math.isnan(v) for v in (centre, low, high)):
        return None
    return [[max(centre - low, 0.0)], [max(high - centre, 0.0)]]


def _in_unit_interval(values: Sequence[float]) -> bool:
    finite = [v for v in values if not math.isnan(v)]
    return all(0.0 <= v <= 1.0 for v in finite)


def _legend_outside(ax: Axes) -> None:
    """Right of the axes, so that long agent names never cover the data."""
    handles, labels = ax.get_legend_handles_labels()
    labels = [textwrap.fill(label, LABEL_WIDTH) for label in labels]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              frameon=False)


def _bar_figure(bars: Sequence[Bar], title: str, ylabel: str, unit_range: bool) -> Figure:
    """Grouped bars: x = group, one colour per agent; a missing (agent, group) leaves a gap."""
    fig, ax = _new_figure()
    groups, agents = _ordered([b.group for b in bars]), _ordered([b.agent for b in bars])
    width = 0.8 / max(len(agents), 1)
    for i, agent in enumerate(agents):
        for j, b in enumerate(b for b in bars if b.agent == agent):
            x = groups.index(b.group) + (i - (len(agents) - 1) / 2) * width
            ax.bar(x, b.mean, width, color=_colour(i), label=agent if j == 0 else None)
            err = _err(b.mean, b.low, b.high)
            if err is not None:
                ax.errorbar(x, b.mean, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
    rotate = len(groups) > MANY_GROUPS or max((len(g) for g in groups), default=0) > 12
    ax.set_xticks(range(len(groups)), groups, rotation=30 if rotate else 0,
                  ha="right" if rotate else "center")
    if unit_range and _in_unit_interval([v for b in bars for v in (b.mean, b.low, b.high)]):
        ax.set_ylim(0.0, 1.05)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax)
    return fig


def driving_score_chart(bars: Sequence[Bar], path: str | Path, title: str = "Driving score by scenario",
                        ylabel: str = "driving score") -> Path:
    """Grouped bars of driving score with their intervals, saved as a PNG at `path` (returned)."""
    return _save(_bar_figure(bars, title, ylabel, unit_range=True), path)


def steering_smoothness_chart(bars: Sequence[Bar], path: str | Path,
                              title: str = "Steering smoothness by scenario") -> Path:
    """Grouped bars of steering rate with their intervals, saved as a PNG at `path` (returned)."""
    return _save(_bar_figure(bars, title, "steering rate [1/s] (lower is smoother)", unit_range=False), path)


def _scatter_figure(points: Sequence[Point2], title: str) -> Figure:
    fig, ax = _new_figure()
    for i, p in enumerate(points):
        ax.errorbar(p.x, p.y, xerr=_err(p.x, p.x_low, p.x_high), yerr=_err(p.y, p.y_low, p.y_high),
                    fmt="o", markersize=7, capsize=3, color=_colour(i), label=p.agent)
    margin = 0.03
    ax.set(xlim=(-margin, 1 + margin), ylim=(-margin, 1 + margin), title=title,
           xlabel="collision rate (lower is better)", ylabel="success rate (higher is better)")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return fig


def success_vs_collision_chart(points: Sequence[Point2], path: str | Path,
                               title: str = "Success vs collision rate") -> Path:
    """Success rate against collision rate per agent, with both intervals, saved as a PNG at `path`
    (returned)."""
    return _save(_scatter_figure(points, title), path)


def _scaling_figure(points: Sequence[CurvePoint], references: Mapping[str, float], title: str) -> Figure:
    """Ng's data-scaling plot: does more data close the gap to the references?"""
    fig, ax = _new_figure()
    models = _ordered([p.model for p in points])
    for i, model in enumerate(models):
        curve = sorted((p for p in points if p.model == model), key=lambda p: p.n)
        n, m = np.array([p.n for p in curve]), np.array([p.mean for p in curve])
        low, high = np.array([p.low for p in curve]), np.array([p.high for p in curve])
        ax.plot(n, m, marker="o", color=_colour(i), label=model)
        ok = np.isfinite(low) & np.isfinite(high)  # no band where n < 2 gave no interval
        ax.fill_between(n, np.where(ok, low, m), np.where(ok, high, m), where=ok, color=_colour(i),
                        alpha=0.2, linewidth=0)
    for j, (name, value) in enumerate(references.items()):
        ax.axhline(value, linestyle="--", color=_colour(len(models) + j), label=name)
    ax.set_xscale("log")
    values = [v for p in points for v in (p.mean, p.low, p.high)] + list(references.values())
    if _in_unit_interval(values):
        ax.set_ylim(0.0, 1.05)
    ax.set(title=title, xlabel="training frames (log scale)", ylabel="driving score")
    ax.grid(alpha=0.3, which="both")
    _legend_outside(ax)
    return fig


def scaling_chart(points: Sequence[CurvePoint], references: Mapping[str, float], path: str | Path,
                  title: str = "Driving score vs training data") -> Path:
    """Driving score against training frames (log x), one curve per model with its 95% band and the
    references as dashed lines, saved as a PNG at `path` (returned)."""
    return _save(_scaling_figure(points, references, title), path)


def png_to_array(path: str | Path) -> np.ndarray:
    """HWC uint8 RGB, for TensorBoard's add_image(..., dataformats="HWC")."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read an image at {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
