"""Error analysis: grouping and ranking, replayed clips, outputs, and the runner's tail frames."""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from steerbench.agents.reference import IdleAgent
from steerbench.agents.registry import AgentSpec
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.harness.rundir import RunDirError
from steerbench.sim.runner import EnvSettings, EpisodeRunner, EpisodeTask
from steerbench.sim.scenarios import episode_seed
from steerbench.sim.types import CameraConfig
from steerbench.study.failures import ErrorsConfig, ErrorsError, analyse, errors_table
from steerbench.study.replay import clip_image, env_settings, run_errors

IDLE = "steerbench.agents.reference:IdleAgent"
LANE_KEEPER = "steerbench.agents.reference:LaneKeeperAgent"


def row(agent, failure, score, scenario="merge", index=0, split="train"):
    return {"agent": agent, "scenario": scenario, "split": split, "index": index, "seed": index,
            "metrics": {"failure": failure, "driving_score": score}}


# -- analyse() on hand-made rows ---------------------------------------------------------------
HAND_MADE = [
    row("a", "none", 0.9, index=0),
    row("a", "off_road", 0.8, index=1),
    row("a", "off_road", 0.8, scenario="highway", index=1),
    row("a", "front_collision", 0.0, index=2),  # one episode, but the costliest category
    row("a", "off_road", 0.9, index=3),
    row("b", "none", 1.0, index=0),
    row("b", "none", 0.8, index=1),
]


def test_categories_are_ranked_by_the_driving_score_they_cost_not_by_count():
    a, b = analyse(HAND_MADE)
    assert (a.agent, a.episodes, a.failures) == ("a", 5, 4)
    front, off = a.groups
    assert (front.category, front.rank, front.count) == ("front_collision", 1, 1)
    assert front.cost == pytest.approx(1.0 / 5) and front.share == pytest.approx(1 / 4)
    assert (off.category, off.rank, off.count) == ("off_road", 2, 3)
    assert off.cost == pytest.approx((0.2 + 0.2 + 0.1) / 5) and off.share == pytest.approx(3 / 4)


def test_costs_add_up_to_the_lost_driving_score_and_successes_are_excluded():
    for agent in analyse(HAND_MADE):
        mean = np.mean([r["metrics"]["driving_score"] for r in HAND_MADE if r["agent"] == agent.agent])
        assert sum(g.cost for g in agent.groups) + agent.success_loss == pytest.approx(1 - mean)
        assert all(g.category != "none" for g in agent.groups)
    assert analyse(HAND_MADE)[0].success_loss == pytest.approx(0.1 / 5)


def test_scenarios_and_the_order_clips_are_picked_in():
    off = analyse(HAND_MADE)[0].groups[1]
    assert [(c.scenario, c.episodes) for c in off.scenarios] == [("merge", 2), ("highway", 1)]
    assert sum(c.cost for c in off.scenarios) == pytest.approx(off.cost)
    # Round robin over scenarios, lowest index first in each.
    assert [e.name for e in off.episodes] == ["merge/train/1", "highway/train/1", "merge/train/3"]


def test_an_agent_without_failures_has_no_groups():
    b = analyse(HAND_MADE)[1]
    assert (b.agent, b.failures, b.groups) == ("b", 0, ())
    assert b.success_loss == pytest.approx(0.1)
    assert "(no failures)" in errors_table(_analysis([b]), markdown=False)


def _analysis(agents):
    from steerbench.study.failures import ErrorAnalysis

    return ErrorAnalysis(Path("."), agents)


def test_env_settings_come_back_from_config_json():
    env = EnvSettings(camera=CameraConfig(width=96, centering=(0.5, 0.5), color=True), policy_hz=10)
    assert env_settings(json.loads(json.dumps(dataclasses.asdict(env)))) == env
    with pytest.raises(ErrorsError, match="do not fit"):
        env_settings({"camera": {"no_such_field": 1}})


def test_clip_image_puts_overlays_under_the_frames():
    gray = [np.full((4, 6), 50, np.uint8) for _ in range(3)]
    assert clip_image(gray).shape == (4, 3 * 6 + 2 * 2, 3)
    overlays = [None, np.full((8, 12, 3), 200, np.uint8), np.full((4, 6, 3), 100, np.uint8)]
    image = clip_image(gray, overlays)
    assert image.shape == (4 + 2 + 4, 22, 3)
    assert image[6:, :6].max() == 0 and image[6:, 8:14].min() == 200  # blank where none was drawn
    assert clip_image([]) is None


# -- a tiny real run ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """idle leaves the ramp (off_road), lane_keeper hits the barrier (front_collision)."""
    logdir = tmp_path_factory.mktemp("errors_run")
    agents = (AgentSpec("idle", IDLE), AgentSpec("keeper", LANE_KEEPER))
    run_eval(EvalConfig(agents=agents, scenarios=("merge",), episodes=2, logdir=logdir, progress=False,
                        strip_episodes=0))
    return logdir


def test_errors_of_a_real_run(run):
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    recorded = {r["agent"]: {r["metrics"]["failure"] for r in rows} for r in rows}
    assert all(c != {"none"} for c in recorded.values()), recorded  # the test needs failures

    out = run_errors(ErrorsConfig(run, top=3, clips=2, clip_frames=5, progress=False))
    md = (run / "errors.md").read_text()
    for g in out.groups:
        assert g.category in md and g.category in recorded[g.agent]
    assert len(out.clips) == sum(min(2, g.count) for g in out.groups)
    for c in out.clips:
        assert c.reproduced, c  # the runner is deterministic for a seed
        assert c.path.name == f"{c.category}_{c.episode.scenario}_{c.episode.split}_{c.episode.index}.png"
        assert c.path.as_posix() in md
        image = cv2.imread(str(run / c.path))
        assert image.shape == (64, 5 * 128 + 4 * 2, 3)  # 5 frames of the default camera, no overlays
    saved = json.loads((run / "errors.json").read_text())
    assert {a["agent"] for a in saved["agents"]} == {"idle", "keeper"}
    assert all(c["reproduced"] for c in saved["clips"])

    acc = EventAccumulator(str(run / "tb" / "errors"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "errors/text_summary" in tags["tensors"]
    for g in out.groups:
        assert acc.Scalars(f"study/errors/{g.agent}/{g.category}/cost")[0].value == pytest.approx(g.cost, abs=1e-6)
        assert acc.Scalars(f"study/errors/{g.agent}/{g.category}/episodes")[0].value == g.count
        assert [e.step for e in acc.Images(f"errors/{g.agent}/{g.category}")] == list(range(min(2, g.count)))
    text = errors_table(out, markdown=False)
    assert "|" not in text and all(g.category in text for g in out.groups)

    again = run_errors(ErrorsConfig(run, top=1, clips=1, clip_frames=2, progress=False))  # replaces the first
    pngs = sorted(p.relative_to(run) for p in (run / "media" / "errors").rglob("*.png"))
    assert pngs == sorted(c.path for c in again.clips)
    assert len(again.clips) == 2 and len(EventAccumulator(str(run / "tb" / "errors")).Reload().Tags()["images"]) == 2


def test_a_run_without_failures_says_so(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"env": {}, "agents": {}}))
    (tmp_path / "results.jsonl").write_text(json.dumps(row("a", "none", 1.0)) + "\n")
    out = run_errors(ErrorsConfig(tmp_path, progress=False))
    assert out.groups == [] and out.clips == []
    assert "no failed episodes" in (tmp_path / "errors.md").read_text()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no run directory"),
    (lambda p: p, "has no config.json"),
])
def test_not_a_run_directory_is_a_one_line_user_error(tmp_path, make, message):
    with pytest.raises(ErrorsError, match=message) as info:
        run_errors(ErrorsConfig(make(tmp_path), progress=False))
    assert isinstance(info.value, RunDirError) and "\n" not in str(info.value)


# -- the runner's tail frames ------------------------------------------------------------------
class DrawingIdle(IdleAgent):
    """Draws its step number into an overlay, except on the first step."""

    def reset(self, episode):
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        return super().act(obs)

    def overlay(self):
        return None if self.steps == 1 else np.full((2, 2, 3), self.steps, np.uint8)


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner()
    yield r
    r.close()


def task(factory=IdleAgent, **kw):
    # The runner keeps one agent per label: each factory gets its own.
    return EpisodeTask(factory.__name__, factory, "pixels", "merge", "train", 0, episode_seed("train", 0), **kw)


def test_tail_frames_are_the_last_frames_and_rows_do_not_change(runner):
    everything = runner.run(task(strip_frames=10_000))  # a strip longer than the episode: every frame
    tail = runner.run(task(tail_frames=5))
    plain = runner.run(task())
    assert len(tail.tail) == 5 and tail.tail_overlays == []  # IdleAgent draws nothing
    for a, b in zip(tail.tail, everything.strip[-5:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tail.tail[-1], runner.env("merge", "train", EnvSettings()).render())
    assert plain.tail == [] and everything.tail == []

    def without_wall(r):
        d = r.row()
        d["metrics"].pop("wall_s")
        return d
    assert without_wall(tail) == without_wall(plain) == without_wall(everything)
    assert set(plain.row()) == {"agent", "scenario", "split", "index", "seed", "command", "metrics",
                                "steering_hist", "error", "reference", "agent_stats"}


def test_tail_overlays_line_up_with_the_frames(runner):
    short = runner.run(task(DrawingIdle, tail_frames=1000))  # longer than the episode
    steps = int(short.metrics["steps"])
    assert len(short.tail) == len(short.tail_overlays) == steps
    assert short.tail_overlays[0] is None
    assert [int(o[0, 0, 0]) for o in short.tail_overlays[1:]] == list(range(2, steps + 1))
    last = runner.run(task(DrawingIdle, tail_frames=3))
    assert [int(o[0, 0, 0]) for o in last.tail_overlays] == [steps - 2, steps - 1, steps]
