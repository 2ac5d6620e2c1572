"""A user's pipeline stage drops into the modular agent: by module:Class and by entry point, through
eval, compare --agent and ceiling; its options are typed; its faults are the episode's; the
agent's declared inputs follow from its stages."""

import json
from pathlib import Path

import numpy as np
import pytest

from steerbench.agents.modular import ModularAgent, ModularOptions
from steerbench.agents.registry import AgentError, AgentSpec
from steerbench.agents.stage_registry import known_stages, resolve_stage
from steerbench.agents.stages import StageFault, check_output
from steerbench.cli import main
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.perception.types import Detection
from steerbench.planning.planner import Lane, LaneView, Trajectory
from steerbench.sim.runner import EnvSettings

ROOT = Path(__file__).resolve().parents[2]
DETECTOR = "examples.my_stages:StricterDetector"
PLANNER = "examples.my_stages:LaneKeepingPlanner"
MODULAR = "steerbench.agents.modular:ModularAgent"
FAST = ["--fast-sim", "--no-progress"]


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example stages declared as an installed package's entry points `stricter`, `keep_lane`."""
    dist = tmp_path / "stages_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stages-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[steerbench.detectors]\nstricter = {DETECTOR}\n[steerbench.planners]\nkeep_lane = {PLANNER}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_user_stages_by_path_run_through_eval_with_typed_options(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = main(["eval", "--agent", "mine=modular", "--agent-opt", f"mine.detector={DETECTOR}",
                 "--agent-opt", "mine.detector.contrast=40", "--agent-opt", f"mine.planner={PLANNER}",
                 "--scenarios", "highway", "--episodes", "1", "--logdir", str(tmp_path), *FAST])
    assert code == 0, capsys.readouterr().err
    (row,) = _rows(tmp_path / "results.jsonl")
    assert row["error"] is None and row["metrics"]["steps"] > 10
    assert row["agent_stats"]["planning/lane_change_plans_per_step"] == 0  # the example never changes lane
    meta = json.loads((tmp_path / "config.json").read_text())["agents"]["mine"]
    assert meta["inputs"] == "pixels+map" and meta["options"]["detector.contrast"] == "40"
    assert f"detector={DETECTOR}" in meta["description"]


@pytest.mark.parametrize("opt, message", [
    ("m.detector.contrast=dark", "option contrast='dark': expected int"),
    ("m.detector.min_score=2", "min_score must be in [0, 1]"),
    ("m.detector.threshold=0.3", "unknown option 'threshold' for detector"),
    ("m.detectr.contrast=3", "names no stage"),
    ("m.planner=examples.my_stages:Nothing", "has no attribute 'Nothing'"),
    ("m.planner=no_such_module:Planner", "cannot import 'no_such_module' for planner"),
    ("m.tracker=examples.my_stages:StricterDetector", "has no update() method"),
    ("m.detector=stricterr", "unknown detector 'stricterr'"),
])
def test_a_bad_stage_or_stage_option_is_a_one_line_error(opt, message, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(ROOT)
    base = [] if opt.startswith("m.detector=") else ["--agent-opt", f"m.detector={DETECTOR}"]
    code = main(["eval", "--agent", "m=modular", *base, "--agent-opt", opt, "--scenarios", "highway",
                 "--episodes", "1", "--logdir", str(tmp_path), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results.jsonl").exists()


@pytest.mark.parametrize("detector, planner", [("stricter", "keep_lane"), (DETECTOR, PLANNER)])
def test_user_stages_run_through_eval_compare_and_ceiling(installed, tmp_path, capsys, detector, planner):
    """By entry point and by module:Class."""
    assert resolve_stage("detector", "stricter") == DETECTOR and "keep_lane" in known_stages("planner")
    mine = ["--agent", "mine=modular", "--agent-opt", f"mine.detector={detector}", "--agent-opt",
            f"mine.planner={planner}"]
    assert main(["eval", *mine, "--scenarios", "merge", "--episodes", "1", "--logdir", str(tmp_path / "e"), *FAST]) == 0
    assert _rows(tmp_path / "e" / "results.jsonl")[0]["error"] is None

    assert main(["compare", "--contestants", "expert", *mine, "--scenarios", "merge", "--splits", "train",
                 "--episodes", "1", "--logdir", str(tmp_path / "c"), *FAST]) == 0, capsys.readouterr().err
    assert {r["agent"] for r in _rows(tmp_path / "c" / "results.jsonl")} >= {"mine", "expert"}

    assert main(["ceiling", "--detector", detector, "--planner", planner, "--stage-opt", "detector.contrast=26",
                 "--scenarios", "merge", "--episodes", "1", "--logdir", str(tmp_path / "k"), *FAST]) == 0
    config = json.loads((tmp_path / "k" / "config.json").read_text())["agents"]
    assert config["pipeline"]["options"]["detector"] == detector
    assert config["pipeline"]["options"]["detector.contrast"] == "26"
    assert "detector.contrast" not in config["true_detection"]["options"]  # replaced with its options
    assert all(config[row]["options"]["planner"] == planner for row in ("pipeline", "true_tracks", "map_lanes"))
    assert f"pipeline: detector={detector}" in (tmp_path / "k" / "ceiling.md").read_text()
    assert {json.loads(r)["error"] for r in (tmp_path / "k" / "results.jsonl").read_text().splitlines()} == {None}

    listing = capsys.readouterr().out if main(["agents"]) == 0 else ""
    assert "detector=stricter [pixels]: contrast=<int> 30, min_score=<float> 0.5" in listing
    assert "planner=keep_lane [pixels]" in listing


@pytest.mark.parametrize("kind, target, message", [
    ("detector", "stages_for_tests:RaisingDetector", "detector 'stages_for_tests:RaisingDetector' raised "
                                                      "RuntimeError: boom"),
    ("tracker", "stages_for_tests:NanTracker", "returned a Track whose position is not a finite array"),
    ("planner", "stages_for_tests:NonePlanner", "returned a NoneType, not a Trajectory"),
    ("controller", "stages_for_tests:StringController", "returned 'left', not a finite number"),
    ("detector", "stages_for_tests:SlowDetector", "longer than 0.5 s"),
])
def test_a_faulty_stage_fails_its_episodes_and_the_run_goes_on(tmp_path, kind, target, message):
    agents = (AgentSpec("bad", MODULAR, ((kind, target),)), AgentSpec("good", MODULAR))
    out = run_eval(EvalConfig(agents=agents, scenarios=("highway",), episodes=2, logdir=tmp_path, progress=False,
                              act_timeout_s=0.5, env=EnvSettings(fast=True)))
    bad = [r for r in out.rows if r["agent"] == "bad"]
    good = [r for r in out.rows if r["agent"] == "good"]
    assert len(bad) == 2 and all(r["metrics"]["failure"] == "agent_error" and message in r["error"] for r in bad), bad
    assert all(r["metrics"]["steps"] == 2 for r in bad)  # failed at its third step
    assert len(good) == 2 and all(r["error"] is None for r in good)


@pytest.mark.parametrize("stages, inputs", [
    ({}, "pixels+map"),
    ({"lanes": "pixels"}, "pixels"),
    ({"lanes": "pixels", "detector": "stages_for_tests:MapDetector"}, "pixels+map"),
    ({"lanes": "pixels", "planner": "stages_for_tests:PeekingPlanner"}, "privileged"),
    ({"lanes": "stages_for_tests:UndeclaredLanes"}, "pixels"),
    ({"lanes": "stages_for_tests:UndeclaredLanes", "tracker": "ground_truth"}, "privileged"),
    ({"detector": "ground_truth", "lanes": "pixels", "controller": "stanley"}, "privileged"),
])
def test_declared_inputs_are_the_most_privileged_of_the_stages(stages, inputs):
    assert ModularAgent(ModularOptions(**stages)).info.inputs == inputs


def test_a_stage_declaring_privileged_inputs_is_given_them(tmp_path):
    from stages_for_tests import PeekingPlanner

    PeekingPlanner.seen.clear()
    spec = AgentSpec("peek", MODULAR, (("lanes", "pixels"), ("planner", "stages_for_tests:PeekingPlanner")))
    run_eval(EvalConfig(agents=(spec,), scenarios=("merge",), episodes=1, logdir=tmp_path, progress=False,
                        env=EnvSettings(fast=True)))
    assert PeekingPlanner.seen and all(PeekingPlanner.seen)


def test_undeclared_input_kinds_are_refused():
    with pytest.raises(AgentError, match="declares inputs 'lidar'"):
        ModularOptions(detector="stages_for_tests:LidarDetector")


def _detection(center) -> Detection:
    return Detection(np.zeros((4, 2)), np.asarray(center, float), 5.0, 2.0, 0.0, 1.0)


def _plan(points) -> Trajectory:
    points = np.asarray(points, float)
    return Trajectory(np.arange(len(points)) * 0.2, points, np.ones(len(points)), 0, "keep", 0.0, True)


LINE = np.stack([np.arange(10.0), np.zeros(10)], axis=1)


@pytest.mark.parametrize("kind, value, problem", [
    ("detector", None, "a NoneType, not a list of Detection"),
    ("detector", [_detection([1.0, 2.0]), "car"], "a str among its Detections"),
    ("detector", [_detection([np.inf, 0.0])], "a Detection whose center_m is not a finite array"),
    ("detector", [_detection([1.0, 2.0, 3.0])], "whose center_m is not a finite array of shape (2,)"),
    ("lanes", [Lane(0, LINE)], "a list, not a LaneView"),
    ("lanes", LaneView([Lane(1, LINE)], 0, None), "no lane of offset 0"),
    ("lanes", LaneView([Lane(0, LINE[:1])], 0, None), "fewer than 2 points"),
    ("lanes", LaneView([Lane(0, LINE)], 0, float("nan")), "a speed limit of nan"),
    ("planner", _plan([[0.0, 0.0], [1.0, np.nan]]), "points are not a finite"),
    ("controller", float("nan"), "nan, not a finite number"),
    ("controller", np.array([0.1]), "not a finite number"),
])
def test_bad_stage_outputs_are_named_faults(kind, value, problem):
    with pytest.raises(StageFault, match=r"^" + kind + " 'x' returned ") as err:
        check_output(kind, "x", value)
    assert problem in str(err.value)


@pytest.mark.parametrize("kind, value", [
    ("detector", [_detection([1.0, 2.0])]), ("detector", []), ("lanes", LaneView([Lane(0, LINE)], 0, 20.0)),
    ("planner", _plan(LINE)), ("controller", 0.25), ("controller", np.float32(-1.0)),
])
def test_good_stage_outputs_pass(kind, value):
    assert check_output(kind, "x", value) is value
