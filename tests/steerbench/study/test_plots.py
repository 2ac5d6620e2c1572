"""Study figures: PNGs that decode, one bar per (agent, group), log-scaled data-scaling plot."""

import math

import numpy as np
import pytest
from matplotlib.container import BarContainer

from steerbench.study import plots
from steerbench.study.plots import Bar, CurvePoint, Point2

NAN = math.nan
AGENTS = ("modular (ground-truth detection)", "end-to-end behaviour cloning", "expert")
GROUPS = ("highway", "merge", "roundabout", "overall")


@pytest.fixture
def bars():
    return [Bar(a, g, 0.5 + 0.1 * i, 0.45 + 0.1 * i, 0.6 + 0.1 * i)
            for i, a in enumerate(AGENTS) for g in GROUPS]


def _decodes(path):
    img = plots.png_to_array(path)
    assert path.stat().st_size > 0 and img.dtype == np.uint8 and img.shape[2] == 3
    assert 300 <= img.shape[0] <= 1200 and 600 <= img.shape[1] <= 1600  # about 800x450 px
    return img


def _n_bars(fig):
    return sum(len(c) for c in fig.axes[0].containers if isinstance(c, BarContainer))


def test_driving_score_chart(tmp_path, bars):
    path = plots.driving_score_chart(bars, tmp_path / "nested" / "score.png")
    assert path == tmp_path / "nested" / "score.png"
    _decodes(path)
    fig = plots._bar_figure(bars, "t", "driving score", unit_range=True)
    assert _n_bars(fig) == len(AGENTS) * len(GROUPS)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.05)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(GROUPS)
    assert len(ax.get_legend().get_texts()) == len(AGENTS)


def test_steering_smoothness_chart_has_no_fixed_range(tmp_path):
    bars = [Bar("a", "highway", 3.0, 2.5, 3.5), Bar("b", "highway", 1.0, 0.8, 1.2)]
    _decodes(plots.steering_smoothness_chart(bars, tmp_path / "steer.png"))
    ax = plots._bar_figure(bars, "t", "y", unit_range=False).axes[0]
    assert ax.get_ylim()[1] >= 3.5


def test_nan_bounds_and_missing_bars_do_not_crash(tmp_path):
    bars = [Bar("a", "highway", 0.7, NAN, NAN), Bar("b", "merge", NAN, NAN, NAN),
            Bar("a", "merge", 0.2, 0.1, 0.3)]
    _decodes(plots.driving_score_chart(bars, tmp_path / "nan.png"))
    assert _n_bars(plots._bar_figure(bars, "t", "y", unit_range=True)) == 3
    points = [Point2("a", 0.1, NAN, NAN, 0.8, NAN, NAN)]
    _decodes(plots.success_vs_collision_chart(points, tmp_path / "nan_scatter.png"))
    curve = [CurvePoint("bc", 1000, 0.3, NAN, NAN), CurvePoint("bc", 10000, 0.5, 0.4, 0.6)]
    _decodes(plots.scaling_chart(curve, {}, tmp_path / "nan_scaling.png"))


def test_success_vs_collision_chart(tmp_path):
    points = [Point2(a, 0.1 * i, 0.05 * i, 0.1 * i + 0.05, 0.9 - 0.2 * i, 0.8 - 0.2 * i, 0.95 - 0.2 * i)
              for i, a in enumerate(AGENTS)]
    _decodes(plots.success_vs_collision_chart(points, tmp_path / "scatter.png"))
    ax = plots._scatter_figure(points, "t").axes[0]
    assert ax.get_xlim()[0] < 0 < 1 < ax.get_xlim()[1] and ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]
    assert [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()] == list(AGENTS)


def test_scaling_chart(tmp_path):
    score = {(m, n): s * math.log10(n) / 6 for m, s in (("bc", 0.8), ("dagger", 1.0)) for n in (10_000, 1000, 100_000)}
    points = [CurvePoint(m, n, v, v - 0.05, v + 0.05) for (m, n), v in score.items()]
    refs = {"expert": 0.9, "modular (ground-truth detection)": 0.85}
    _decodes(plots.scaling_chart(points, refs, tmp_path / "scaling.png"))
    ax = plots._scaling_figure(points, refs, "t").axes[0]
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["bc", "dagger", *refs]
    assert list(ax.get_lines()[0].get_xdata()) == [1000, 10_000, 100_000]  # sorted by n
    assert len(ax.collections) == 2  # one confidence band per model


def test_png_to_array_rejects_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        plots.png_to_array(tmp_path / "none.png")
