"""Quality of the classical detector per scenario and split, on expert rollouts.

Collects `--episodes` episodes per scenario and split (seeds 0...), runs the detector on every
`--every`-th frame and prints precision, recall, average precision and mean localisation error
(matching rule in steerbench/perception/metrics.py).
Usage: python bench/classical_detector.py [--episodes 2] [--every 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from steerbench.agents.registry import AgentSpec
from steerbench.harness.collect import CollectConfig, collect
from steerbench.perception.classical import ClassicalDetector
from steerbench.perception.metrics import expected, match_frame, quality
from steerbench.perception.types import FrameGeometry
from steerbench.sim.dataset import iter_episodes
from steerbench.sim.scenarios import SUITE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    teacher = AgentSpec("expert", "steerbench.agents.expert:ExpertAgent")
    print("| scenario | split | true boxes | precision | recall | AP | mean error m |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for split in ("train", "test"):
            root = Path(tmp) / split
            collect(CollectConfig(teacher=teacher, scenarios=tuple(SUITE), split=split, episodes=args.episodes,
                                  workers=args.workers, out=root, progress=False))
            matches = defaultdict(list)
            for ep in iter_episodes(root):
                det = ClassicalDetector(FrameGeometry(centering=SUITE[ep.scenario].centering))
                for t in range(0, len(ep.speed), args.every):
                    px, m = ep.boxes_at(t)
                    keep = expected(px.mean(axis=1), 128, 64) if len(px) else np.zeros(0, bool)
                    matches[ep.scenario].append(match_frame(det.detect(ep.frames[t]), m[keep, :2]))
            for scenario in SUITE:
                q = quality(matches[scenario])
                print(f"| {scenario} | {split} | {q.n_true} | {q.precision:.2f} | {q.recall:.2f} | "
                      f"{q.average_precision:.2f} | {q.mean_error_m:.2f} |")


if __name__ == "__main__":
    main()
