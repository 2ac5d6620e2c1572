"""Reproducible to the bit (MEASUREMENT.md section 5) and the checks that stop a run before its
first episode: torch single-threaded and deterministic inside every episode, whatever the worker
count; a checkpoint's content in its agent's identity; a checkpoint refused for frames it was not
trained on; a Ray address with nothing behind it."""

import json
import socket
import subprocess
import sys

import pytest
import torch
from torch_agents_for_tests import PROBE, SINGLE_THREADED, save_net  # PROBE: e2e reporting torch's settings

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.study.failures import ErrorsConfig, ErrorsError
from steerbench.study.replay import run_errors


def _without_timing(rows):
    return {(r["agent"], r["scenario"], r["split"], r["index"]):
            dict(r, metrics={k: v for k, v in r["metrics"].items() if k != "wall_s"}) for r in rows}


def _eval_argv(ckpt, logdir, *extra):
    return ["eval", "--agent", "e2e", "--agent-opt", f"e2e.checkpoint={ckpt}", "--scenarios", "merge",
            "--episodes", "1", "--strips", "0", "--logdir", str(logdir), "--no-progress", *extra]


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- 1. torch in episodes --------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same e2e episodes with 1 worker (in this process) and 2 (spawned), from a driver whose
    torch has the thread pool of a 2-core machine, as `steerbench` has on one."""
    root = tmp_path_factory.mktemp("repro")
    agent = AgentSpec("net", PROBE, (("checkpoint", str(save_net(root / "best.pt", seed=0))),))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = {w: run_eval(EvalConfig(agents=(agent,), scenarios=("merge",), episodes=2, workers=w,
                                      logdir=root / f"workers{w}", strip_episodes=0, progress=False))
               for w in (1, 2)}
        yield out
    finally:
        torch.set_num_threads(before)


def test_e2e_rows_are_the_same_with_one_and_two_workers(runs):
    one, two = (_without_timing(runs[w].rows) for w in (1, 2))
    assert len(one) == 2
    assert [r["agent_stats"] for r in one.values()] == [SINGLE_THREADED] * 2
    assert one == two
    assert torch.get_num_threads() == 2  # the driver's own setting is back after its episodes


def test_an_error_replay_in_this_process_reproduces_the_recorded_failures(runs):
    run_dir = runs[2].run_dir  # recorded by spawned workers, replayed here (--workers 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = run_errors(ErrorsConfig(run_dir, top=3, clips=2, clip_frames=2, progress=False))
    finally:
        torch.set_num_threads(before)
    assert out.clips, "the test needs a failed episode"
    assert all(c.reproduced for c in out.clips), [(c.category, c.replayed) for c in out.clips]


# -- 2. a checkpoint's content is part of its agent's identity -----------------------------
def test_retrained_weights_at_the_same_path_never_reuse_old_rows(tmp_path, capsys):
    ckpt = save_net(tmp_path / "best.pt", seed=0)
    argv = _eval_argv(ckpt, tmp_path / "run")
    assert main(argv) == 0
    save_net(ckpt, seed=0)  # the same weights written again: the same agent, resumed
    assert main(argv) == 0
    assert "0 episodes run, 1 reused" in capsys.readouterr().out
    save_net(ckpt, seed=1)  # retrained in place
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "checkpoint" in err and "other contents" in err, err
    assert len((tmp_path / "run" / "results.jsonl").read_text().splitlines()) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert set(config["agents"]["e2e"]["checkpoints"]) == {"checkpoint"}  # option -> sha256 of the file
    with pytest.raises(ErrorsError, match="changed since"):  # nor are its failures replayed with other weights
        run_errors(ErrorsConfig(tmp_path / "run", progress=False))


USER_AGENT = """
import numpy as np
from steerbench.agents.base import AgentInfo

class Straight:
    info = AgentInfo(name="straight", inputs="pixels")

    def reset(self, episode):
        pass

    def act(self, obs):
        return np.array([0.0, STEER])
"""


def test_an_edited_user_agent_never_reuses_old_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "edited_user_agent.py"
    source.write_text(USER_AGENT.replace("STEER", "0.0"))
    argv = ["eval", "--agent", "mine=edited_user_agent:Straight", "--scenarios", "merge", "--episodes", "1",
            "--strips", "0", "--logdir", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0
    assert "0 episodes run, 1 reused" in capsys.readouterr().out
    source.write_text(USER_AGENT.replace("STEER", "0.1"))  # the agent changed, its name and options did not
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "module edited_user_agent's source had other contents" in err, err
    stage = AgentSpec("m", "steerbench.agents.modular:ModularAgent", (("controller", "edited_user_agent:Straight"),))
    assert set(stage.code_files()) == {"code:edited_user_agent"}  # a stage plug-in's code counts too
    assert AgentSpec("e", "steerbench.agents.expert:ExpertAgent").code_files() == {}  # steerbench's: its git SHA


# -- 3. frames the checkpoint was not trained on -------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--stack", "2"], "4 frames"),
    (["--color"], "grayscale"),
    (["--frame-size", "96x48"], "128x64"),
])
def test_a_checkpoint_with_other_frames_is_refused_before_the_first_episode(tmp_path, capsys, flags, message):
    ckpt = save_net(tmp_path / "best.pt", seed=0)  # trained on 4 stacked 128x64 grayscale frames
    assert main(_eval_argv(ckpt, tmp_path / "run", *flags)) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and message in err and str(ckpt) in err, err
    assert not (tmp_path / "run" / "results.jsonl").exists()  # no episode ran


def test_a_dagger_student_with_other_frames_is_refused_before_collecting(tmp_path):
    from steerbench.agents.registry import AgentError
    from steerbench.harness.collect import CollectConfig, collect
    from steerbench.sim.runner import EnvSettings
    from steerbench.sim.types import CameraConfig

    student = AgentSpec("student", "steerbench.agents.e2e_agent:E2EAgent",
                        (("checkpoint", str(save_net(tmp_path / "best.pt", seed=0))),))
    with pytest.raises(AgentError, match="cannot drive with this camera"):
        collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"), scenarios=("merge",),
                              episodes=1, out=tmp_path / "data", env=EnvSettings(camera=CameraConfig(stack=2)),
                              driver=student, progress=False))
    assert not (tmp_path / "data" / "index.jsonl").exists()  # nothing recorded


# -- 4. a Ray address with nothing listening -----------------------------------------------
def test_a_ray_address_with_nothing_listening_is_one_line(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a free port: bound, then released, so nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["eval", "--agent", "idle", "--scenarios", "merge", "--episodes", "1", "--logdir", str(tmp_path / "run"),
            "--no-progress", "--backend", "ray", "--address", f"127.0.0.1:{port}"]
    # A subprocess: Ray's own retries would hold this test for minutes were the check missing.
    proc = subprocess.run([sys.executable, "-m", "steerbench.cli", *argv], capture_output=True, text=True,
                          timeout=90, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert _one_line(proc.stderr) and f"127.0.0.1:{port}" in proc.stderr and "nothing" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything ran


@pytest.mark.parametrize("address, target", [
    ("10.0.0.5:6379", ("10.0.0.5", 6379)),
    ("ray://head:10001", ("head", 10001)),
    ("[::1]:6379", ("::1", 6379)),
    ("auto", None), ("local", None), ("http://head:8265", None),
])
def test_the_ray_addresses_that_are_probed(address, target):
    from steerbench.harness.backends import _host_port

    assert _host_port(address) == target


def test_ray_address_from_the_environment_is_probed_too(monkeypatch):
    from steerbench.harness.backends import BackendError, probe_address

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    for address in (None, "auto"):
        with pytest.raises(BackendError, match=f"nothing listens at 127.0.0.1:{port}"):
            probe_address(address)
