"""The classical detector finds the cars in rendered frames, on both splits."""

import numpy as np
import pytest

from steerbench.agents.registry import AgentSpec
from steerbench.harness.collect import CollectConfig, collect
from steerbench.perception.classical import ClassicalDetector
from steerbench.perception.metrics import MATCH_M, average_precision, expected, match_frame, quality
from steerbench.perception.types import Detection, FrameGeometry
from steerbench.sim.dataset import iter_episodes
from steerbench.sim.scenarios import SUITE

# Measured on these fixed seeds when the detector was written; documented in docs/perception.md.
THRESHOLDS = {"precision": 0.8, "recall": 0.85, "error_m": 1.8}


@pytest.fixture(scope="module", params=["train", "test"])
def labelled(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"frames-{request.param}")
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"),
                          scenarios=("highway", "merge"), split=request.param, episodes=1, out=root, progress=False))
    return request.param, list(iter_episodes(root))


def evaluate(episodes, every=4):
    matches = []
    for ep in episodes:
        det = ClassicalDetector(FrameGeometry(centering=SUITE[ep.scenario].centering))
        for t in range(0, len(ep.speed), every):
            px, m = ep.boxes_at(t)
            keep = expected(px.mean(axis=1), 128, 64) if len(px) else np.zeros(0, bool)
            matches.append(match_frame(det.detect(ep.frames[t]), m[keep, :2]))
    return quality(matches)


def test_finds_the_cars(labelled):
    split, episodes = labelled
    q = evaluate(episodes)
    assert q.n_true > 50, split
    assert q.precision >= THRESHOLDS["precision"], (split, q)
    assert q.recall >= THRESHOLDS["recall"], (split, q)
    assert q.mean_error_m <= THRESHOLDS["error_m"], (split, q)


def test_ignores_the_ego_and_empty_road():
    g = FrameGeometry()
    frame = np.full((64, 128), 99, np.uint8)
    frame[20, :] = 254  # a lane marking
    u, v = g.ego_px.astype(int)
    frame[v - 2:v + 2, u - 4:u + 4] = 59  # the ego's outline
    assert ClassicalDetector(g).detect(frame) == []
    frame[40:44, 80:89] = 59  # a car (its outline) 26 m ahead and 5.7 m to the right
    (det,) = ClassicalDetector(g).detect(frame[None])
    assert det.center_m == pytest.approx([(84.5 - u) / 1.75, (42 - v) / 1.75], abs=0.3)
    assert det.length_m == pytest.approx(9 / 1.75, abs=0.1) and abs(det.heading) < 0.1


def test_matching_and_average_precision():
    d = lambda x, s: Detection(np.zeros((4, 2)), np.array([x, 0.0]), 5.0, 2.0, 0.0, s)  # noqa: E731
    m = match_frame([d(10.0, 0.9), d(30.0, 0.8), d(50.0, 0.1)], np.array([[10.5, 0.0], [50.0 + MATCH_M + 0.1, 0.0]]))
    assert m.matched.tolist() == [True, False, False] and m.n_true == 2
    q = quality([m])
    assert q.precision == pytest.approx(1 / 3) and q.recall == 0.5
    assert average_precision(np.array([0.9, 0.5]), np.array([True, True]), 2) == 1.0
    assert average_precision(np.array([0.9, 0.5]), np.array([False, True]), 2) == pytest.approx(0.25)
