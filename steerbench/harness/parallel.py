"""Run tasks in worker processes that keep their environments and agents warm (or, with a Ray
backend, in Ray actors that do the same: backends.py)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from typing import Any, Callable, Iterator, Sequence

from steerbench.harness.backends import WORKER_ENV, Backend, ray_tasks, run_job
from steerbench.sim.runner import EpisodeRunner

Job = Callable[[EpisodeRunner, Any], Any]  # a module-level function, so that it pickles

_RUNNER: EpisodeRunner | None = None  # one per worker process


def run_episode(runner: EpisodeRunner, task: Any) -> Any:
    """The evaluation's job. It lives here, not in evaluate.py, so that a spawned worker imports
    only what an episode needs (evaluate.py pulls in TensorBoard and torch: seconds per worker)."""
    return runner.run(task)


def run_tasks(job: Job, tasks: Sequence[Any], workers: int, backend: Backend | None = None) -> Iterator[Any]:
    """Results of `job(runner, task)` for every task, as they finish (any order)."""
    if not tasks:
        return
    if backend is not None and backend.kind == "ray":
        yield from ray_tasks(job, tasks, workers, backend)
        return
    if workers <= 1:
        runner = EpisodeRunner()
        try:
            for t in tasks:
                yield run_job(job, runner, t)
        finally:
            runner.close()
        return
    # spawn: a forked child would inherit torch's thread pools and pygame state mid-use.
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(processes=workers, initializer=_init_worker)
    try:
        yield from pool.imap_unordered(_call, [(job, t) for t in tasks], chunksize=1)
        pool.close()  # all done: the workers leave on their own
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _init_worker() -> None:
    global _RUNNER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    # One core's worth per worker: torch's default thread pool per process oversubscribes the
    # machine when agents with networks run in several workers (2-3x slower on 2 cores). Set, not
    # defaulted: an OMP_NUM_THREADS of the user's would change the bits of a network's output.
    os.environ["OMP_NUM_THREADS"] = WORKER_ENV["OMP_NUM_THREADS"]
    _RUNNER = EpisodeRunner()


def _call(item: tuple[Job, Any]) -> Any:
    job, task = item
    assert _RUNNER is not None
    return run_job(job, _RUNNER, task)
