"""The Ray backend: the same episodes and the same dataset as worker processes, a lost task run
again, and a one-line error when Ray is missing (that test runs without Ray)."""

import logging
import os
import sys
from pathlib import Path

import pytest

from steerbench.agents.registry import AgentSpec
from steerbench.cli import main
from steerbench.harness.backends import Backend, BackendError, ray_tasks
from steerbench.harness.collect import CollectConfig, collect
from steerbench.harness.evaluate import EvalConfig, run_eval
from steerbench.sim.dataset import DatasetError, DatasetIndex

RAY = Backend("ray")
AGENTS = (AgentSpec("idle", "steerbench.agents.reference:IdleAgent"),
          AgentSpec("lane_keeper", "steerbench.agents.reference:LaneKeeperAgent"))
TIMING = ("wall_s",)  # the only metric that depends on the machine, not on the episode


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'steerbench[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _episodes(rows):
    out = {}
    for r in rows:
        r = dict(r, metrics={k: v for k, v in r["metrics"].items() if k not in TIMING})
        out[(r["agent"], r["scenario"], r["split"], r["index"])] = r
    return out


def _eval(logdir, backend, workers=2):
    # `slow` (tests/ is on the driver's path, not the actors'): its act() times out on the 3rd step,
    # which needs the actor's episodes on its main thread (SIGALRM)
    agents = AGENTS + (AgentSpec("slow", "agents_for_tests:SlowAgent"),)
    return run_eval(EvalConfig(agents=agents, scenarios=("merge",), episodes=2, workers=workers, logdir=logdir,
                               act_timeout_s=0.5, progress=False, backend=backend))


def test_ray_episodes_match_the_process_backend(ray, tmp_path):
    here = _eval(tmp_path / "process", Backend(), workers=1)  # test_evaluate: 1 worker = 2 workers
    there = _eval(tmp_path / "ray", RAY)
    assert here.ran == there.ran == 6
    assert _episodes(here.rows) == _episodes(there.rows)
    assert all("longer than 0.5 s" in r["error"] for r in there.rows if r["agent"] == "slow")
    media = [sorted(p.relative_to(d) for p in (d / "media").rglob("*.png")) for d in (here.run_dir, there.run_dir)]
    assert media[0] == media[1] and media[0]  # frame strips came back from the actors
    assert _eval(tmp_path / "ray", RAY).ran == 0  # resumed from results.jsonl


def test_ray_actors_run_networks_single_threaded_as_worker_processes_do(ray, tmp_path):
    from torch_agents_for_tests import PROBE, SINGLE_THREADED, save_net  # imports torch

    agent = AgentSpec("net", PROBE, (("checkpoint", str(save_net(tmp_path / "best.pt", seed=0))),))

    def rows(backend, workers):
        return _episodes(run_eval(EvalConfig(agents=(agent,), scenarios=("merge",), episodes=1, workers=workers,
                                             logdir=tmp_path / str(workers), strip_episodes=0, progress=False,
                                             backend=backend)).rows)

    there = rows(RAY, 1)
    assert [r["agent_stats"] for r in there.values()] == [SINGLE_THREADED]
    assert there == rows(Backend(), 2)


def test_ray_collects_the_same_dataset(ray, tmp_path):
    def index(out, backend, workers):
        collect(CollectConfig(teacher=AGENTS[1], scenarios=("merge",), episodes=2, workers=workers, out=out,
                              noise_std=0.2, progress=False, backend=backend))
        return sorted((r["path"], r["sha256"], r["steps"], r["noise_std"]) for r in DatasetIndex(out).rows)

    assert index(tmp_path / "process", Backend(), 1) == index(tmp_path / "ray", RAY, 2)


def _die_once(runner, marker):
    """A job whose first attempt kills its worker process, as a lost node would."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return marker


def test_a_lost_task_is_run_again(ray, tmp_path):
    marker = str(tmp_path / "died")
    assert list(ray_tasks(_die_once, [marker], 1, RAY)) == [marker]


def _fail(runner, marker):
    Path(marker).write_text(Path(marker).read_text() + "x" if os.path.exists(marker) else "x")
    raise DatasetError(f"cannot write {marker}")


def test_an_exception_in_a_task_surfaces_as_itself_and_is_not_retried(ray, tmp_path):
    marker = str(tmp_path / "attempts")
    with pytest.raises(DatasetError, match="cannot write"):
        list(ray_tasks(_fail, [marker], 1, RAY))
    assert Path(marker).read_text() == "x"


@pytest.mark.parametrize("argv, message", [
    (["--backend", "ray"], "pip install 'steerbench[ray]'"),
    (["--address", "auto"], "--address is for --backend ray"),
])
def test_backend_errors_are_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as when it is not installed
    code = main(["eval", "--agent", "idle", "--scenarios", "merge", "--episodes", "1", "--logdir",
                 str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_an_unknown_backend_is_refused():
    with pytest.raises(BackendError, match="unknown backend"):
        Backend("dask")
