"""The steerbench command: bad input gives one line and exit 2; eval writes what it promises."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steerbench.cli import main
from steerbench.sim.episodes import EVAL_START

ROOT = Path(__file__).resolve().parents[3]


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--agent", "expert", "--scenarios", "motorway"], "unknown scenario 'motorway'"),
        (["eval", "--agent", "expret"], "unknown agent 'expret'; did you mean 'expert'"),
        (["eval", "--agent", "expert", "--agent-opt", "expert.politeness"], "malformed --agent-opt"),
        (["eval", "--agent", "expert", "--agent-opt", "expert.politness=1"], "did you mean 'politeness'"),
        (["eval", "--agent", "expert", "--agent-opt", "idle.x=1"], "names agent 'idle'"),
        (["eval", "--agent", "expert", "--agent-opt", "expert.min_gap=wide"], "expected float"),
        (["eval", "--agent", "expert", "--agent", "expert"], "given twice"),
        (["eval", "--agent", "nosuchmod:Agent"], "cannot import 'nosuchmod'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, out, err = run(argv + ["--logdir", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["eval", "--agent", "expert", "--episodes", "0"],
                                  ["eval", "--agent", "expert", "--frame-size", "big"],
                                  ["eval", "--agent", "expert", "--split", "validation"]])
def test_bad_values_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err


def test_unwritable_logdir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(["eval", "--agent", "idle", "--scenarios", "merge", "--episodes", "1",
                        "--logdir", str(blocker / "run"), "--no-progress"], capsys)
    assert code == 2 and "cannot create log directory" in err


def test_listing_commands(capsys):
    code, out, _ = run(["scenarios"], capsys)
    assert code == 0 and "roundabout" in out and "test:" in out and "steerbench/highway-v0" in out
    code, out, _ = run(["agents"], capsys)
    assert code == 0 and "expert [privileged]" in out and "idle [pixels]" in out
    assert "--agent-opt expert.politeness=<float>" in out


def test_the_same_label_with_other_options_is_refused(tmp_path, capsys):
    base = [
        "eval",
        "--agent",
        "idle",
        "--scenarios",
        "merge",
        "--episodes",
        "1",
        "--logdir",
        str(tmp_path),
        "--no-progress",
    ]
    assert run(base[:2] + ["expert"] + base[3:], capsys)[0] == 0
    code, _, err = run(base[:2] + ["expert", "--agent-opt", "expert.politeness=0.9"] + base[3:], capsys)
    assert code == 2 and "other options" in err
    code, _, err = run(base + ["--mode", "full"], capsys)
    assert code == 2 and "other settings" in err


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_sigkill_loses_only_episodes_in_flight(tmp_path):
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "steerbench.cli", "eval", "--agent", "idle", "--scenarios", "merge,roundabout",
           "--episodes", "6", "--logdir", str(logdir), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = logdir / "results.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and (not results.exists() or len(results.read_text().splitlines()) < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(results)
    assert 2 <= len(before) < 12
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = _rows(results)
    keys = [(r["agent"], r["scenario"], r["index"]) for r in after]
    assert len(keys) == len(set(keys)) == 12
    assert after[: len(before)] == before  # nothing rewritten
    assert f"{12 - len(before)} episodes run" in done.stdout


def _children(pid):
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process parents from /proc (Linux)")
def test_sigterm_stops_the_pool_workers_too(tmp_path):
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "steerbench.cli", "eval", "--agent", "idle", "--scenarios", "merge", "--episodes",
           "20", "--workers", "2", "--logdir", str(logdir), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results = logdir / "results.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and not (results.exists() and results.read_text().strip()):
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2  # the pool (and multiprocessing's resource tracker)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "terminated" in err
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)]
    whole = [line for line in results.read_text().splitlines(keepends=True) if line.endswith("\n")]
    before = [json.loads(line) for line in whole]  # a line torn by the signal is cut on resume
    assert before, "no episode was finished before SIGTERM"
    assert len(before) < 20, "SIGTERM came after all 20 episodes: nothing was left to interrupt"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)  # resumes
    assert done.returncode == 0, done.stderr
    after = _rows(results)
    assert after[: len(before)] == before  # nothing finished before the signal is lost or rewritten
    assert sorted(r["index"] for r in after) == list(range(EVAL_START, EVAL_START + 20))


def test_a_torn_last_line_is_cut_and_rerun(tmp_path, capsys):
    argv = [
        "eval",
        "--agent",
        "idle",
        "--scenarios",
        "merge",
        "--episodes",
        "2",
        "--logdir",
        str(tmp_path),
        "--no-progress",
    ]
    assert run(argv, capsys)[0] == 0
    results = tmp_path / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    code, out, err = run(argv, capsys)
    assert code == 0 and "1 episodes run" in out and "torn" in err
    assert len(_rows(results)) == 2


def test_the_readme_example_agent_runs_by_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(
        [
            "eval",
            "--agent",
            "examples.my_agent:RoadCentreAgent",
            "--agent-opt",
            "RoadCentreAgent.gain=0.05",
            "--scenarios",
            "merge",
            "--episodes",
            "1",
            "--logdir",
            str(tmp_path),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert "RoadCentreAgent [pixels]" in out
    row = _rows(tmp_path / "results.jsonl")[0]
    assert row["error"] is None and row["metrics"]["steps"] > 0


class _Captured(Exception):
    pass


def _capture(monkeypatch, target: str) -> list:
    """Replace the function at dotted `target` by one that records its config and stops there."""
    import importlib

    module, name = target.rsplit(".", 1)
    seen = []

    def capture(cfg, *args, **kwargs):
        seen.append(cfg)
        raise _Captured()

    monkeypatch.setattr(importlib.import_module(module), name, capture)
    return seen


@pytest.mark.parametrize(
    "argv, target",
    [
        (["diagnose", "--agent", "me=idle"], "steerbench.study.diagnose.run_diagnose"),
        (["ceiling", "--scenarios", "merge"], "steerbench.study.ceiling.run_ceiling"),
        (["errors", "RUN"], "steerbench.study.replay.run_errors"),
        (
            ["train-e2e", "--data", "D", "--logdir", "L", "--dagger-rounds", "1", "--dagger-scenarios", "merge"],
            "steerbench.harness.dagger.run_dagger",
        ),
        (["train-detector", "--frames", "10", "--logdir", "L"], "steerbench.harness.collect.collect"),
    ],
)
def test_backend_reaches_every_command_that_runs_episodes(argv, target, tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray", reason="ray is not installed: pip install 'steerbench[ray]'")
    seen = _capture(monkeypatch, target)
    if argv[0] == "train-e2e":
        monkeypatch.setattr("steerbench.harness.collect.dataset_settings", lambda data: (None, ("merge",)))
    if argv[0] == "train-detector":  # the collection callback is what gets the backend
        monkeypatch.setattr(
            "steerbench.perception.learned_train.prepare_data",
            lambda cfg, collect_episodes: collect_episodes("merge", "train", 1, 1),
        )
    argv = [str(tmp_path / a) if a in ("RUN", "D", "L") else a for a in argv]
    with pytest.raises(_Captured):
        main(argv + ["--backend", "ray", "--address", "auto"])
    assert seen[0].backend.kind == "ray" and seen[0].backend.address == "auto"


@pytest.mark.parametrize(
    "argv, target",
    [
        (["eval", "--agent", "idle"], "steerbench.harness.evaluate.run_eval"),
        (["collect", "--out", "D"], "steerbench.harness.collect.collect"),
        (["ceiling"], "steerbench.study.ceiling.run_ceiling"),
        (["diagnose", "--agent", "me=idle"], "steerbench.study.diagnose.run_diagnose"),
        (["compare", "--contestants", "expert"], "steerbench.study.compare.run_compare"),
        (["scale", "--frames", "300"], "steerbench.study.scale.run_scale"),
    ],
)
def test_first_episode_has_one_name_and_the_old_seed_still_works(argv, target, tmp_path, monkeypatch, capsys):
    seen = _capture(monkeypatch, target)
    argv = [str(tmp_path / a) if a == "D" else a for a in argv]
    for flag in ("--first-episode", "--seed"):
        with pytest.raises(_Captured):
            main(argv + [flag, "1234"])
        err = capsys.readouterr().err
        assert seen.pop().seed == 1234
        if flag == "--seed":
            assert len(err.strip().splitlines()) == 1 and "--seed is deprecated" in err and "--first-episode" in err
        else:
            assert err == ""


def test_seed_means_weights_where_it_is_not_deprecated(capsys):
    for command in (
        ["train-e2e", "--data", "D", "--logdir", "L"],
        ["train-detector", "--frames", "10", "--logdir", "L"],
        ["train-lanes", "--data", "D", "--logdir", "L"],
        ["tune", "--data", "D"],
    ):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        help_text = capsys.readouterr().out
        assert "--seed" in help_text and "--first-episode" not in help_text
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = capsys.readouterr().out
    assert "--first-episode" in help_text and "--seed" not in help_text


def test_scale_flags_reach_the_budget_and_bad_ones_are_usage_errors(monkeypatch, capsys):
    seen = _capture(monkeypatch, "steerbench.study.scale.run_scale")
    with pytest.raises(_Captured):
        main(["scale", "--frames", "300,1000", "--lr", "S=3e-3,M=1e-3", "--passes", "30", "--min-steps", "500",
              "--schedule", "constant", "--dagger-nets", "none", "--no-pixels", "--viewpoint", "0.5"])
    cfg = seen.pop()
    b = cfg.budget
    assert b.lrs == (("S", 3e-3), ("M", 1e-3), ("L", 2e-3)) and b.passes == 30 and b.min_steps == 500
    assert b.schedule == "constant" and b.viewpoint == 0.5 and b.composition is not None
    assert cfg.dagger == () and not cfg.pixels and cfg.detector and cfg.train_seeds == (0, 1, 2)
    assert cfg.scenarios == ("highway", "merge", "roundabout", "intersection", "racetrack")
    for bad in (["--lr", "M=x"], ["--lr", "Q=1e-3"], ["--lr", "M=-1"], ["--viewpoint", "2"], ["--passes", "0"],
                ["--dagger-nets", "XL"]):
        with pytest.raises(SystemExit) as exc:
            main(["scale", *bad])
        assert exc.value.code == 2, bad
        assert len(capsys.readouterr().err.strip().splitlines()) <= 2  # argparse: usage line + the error


def test_output_piped_into_a_reader_that_stops_early_is_no_traceback():
    # `steerbench agents | head -1`: the reader closes the pipe (here before the first line)
    proc = subprocess.Popen([sys.executable, "-m", "steerbench.cli", "scenarios", "--options"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_channels_last_reaches_train_e2e_tune_compare_and_scale(monkeypatch):
    seen = _capture(monkeypatch, "steerbench.agents.e2e_train.train")
    for extra, expected in (([], False), (["--channels-last"], True)):
        with pytest.raises(_Captured):
            main(["train-e2e", "--data", "D", "--logdir", "L", *extra])
        assert seen.pop().channels_last is expected
    seen = _capture(monkeypatch, "steerbench.study.tune.run_sweep")
    with pytest.raises(_Captured):
        main(["tune", "--data", "D", "--channels-last", "--viewpoint", "0.5"])
    sweep = seen.pop()
    trial = sweep.train_config(sweep.trials()[0])
    assert trial.channels_last is True and trial.viewpoint == 0.5
    # compare keeps the default layout its published models were trained in; scale, whose models
    # are all new, trains in the faster one (bench/train_layout.py)
    for command, target, default in (("compare", "steerbench.study.compare.run_compare", False),
                                     ("scale", "steerbench.study.scale.run_scale", True)):
        seen = _capture(monkeypatch, target)
        for extra, expected in (([], default), (["--channels-last"], True), (["--no-channels-last"], False)):
            with pytest.raises(_Captured):
                main([command, *extra])
            assert seen.pop().budget.channels_last is expected, (command, extra)

