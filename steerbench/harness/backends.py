"""Where episodes run: local worker processes (parallel.py) or Ray actors on a cluster (docs/ray.md).

Ray is an optional extra (`pip install 'steerbench[ray]'`); nothing here imports it until a run
asks for it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from steerbench.sim.errors import SteerbenchError

KINDS = ("process", "ray")
RAY_MISSING = "--backend ray needs Ray, which is not installed: pip install 'steerbench[ray]'"
# What parallel.py gives its spawned workers, set before a worker imports torch or pygame: one
# thread per worker (one CPU per actor; and the same bits as any other process: run_job), and an
# SDL that renders headless and leaves SIGTERM alone.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "offscreen", "SDL_NO_SIGNAL_HANDLERS": "1"}
TASK_RETRIES = 3  # times a task lost with its actor (process killed, node gone) is run again
PROBE_TIMEOUT_S = 5.0  # [s] for the TCP connect that checks a Ray address before ray.init


class BackendError(SteerbenchError, RuntimeError):
    """The backend asked for cannot be used (Ray missing, no cluster at the address)."""


@dataclass(frozen=True)
class Backend:
    """Where episodes run. BackendError for an unknown kind, or an address with a kind other than `ray`."""

    kind: str = "process"  # "process": worker processes on this machine; "ray": Ray actors
    address: str | None = None  # ray: a running cluster ("auto", "HOST:6379", "ray://HOST:10001");
    #                             None: $RAY_ADDRESS if set, else a new local Ray instance with this machine's cores

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BackendError(f"unknown backend {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.address is not None and self.kind != "ray":
            raise BackendError("--address is for --backend ray")


def run_job(job: Callable, runner: Any, task: Any) -> Any:
    """`job(runner, task)` with torch single-threaded and deterministic (perception.learned's
    `episode_torch`), in every process that runs episodes: this one (`--workers 1`, error
    replays), a spawned worker or a Ray actor, for any agent, so that an episode's rows never
    depend on where it ran. Torch is not imported for it: a process whose agents use no network
    never pays seconds for it (one that first imports torch inside an episode has
    OMP_NUM_THREADS=1 in a worker, and steerbench's own networks guard their inference)."""
    if "torch" not in sys.modules:
        return job(runner, task)
    from steerbench.perception.learned import episode_torch

    with episode_torch():
        return job(runner, task)


def require_ray() -> Any:
    """The `ray` module, or a one-line BackendError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendError(RAY_MISSING) from None
    return ray


class _Worker:
    """A Ray actor: one EpisodeRunner kept warm across every task the actor runs.

    Why an actor pool, not tasks with a module-level cache: an actor's lifetime is ours (from the
    first episode of a run to the last), so its environments and agents are built once per actor
    and never dropped by Ray's reaping of idle workers; one actor holds one CPU, so the run never
    oversubscribes a node; and tasks go to whichever actor is free, in the scenario-major order
    that keeps its environments warm (evaluate.make_tasks). A lost actor is restarted by Ray and
    the task it held is run again (`max_task_retries`).
    """

    def __init__(self, sys_path: list[str], cwd: str) -> None:
        # The runtime_env has set WORKER_ENV before Python started; this covers a worker without
        # it. Nothing has imported torch or pygame yet: the job comes with each task, not here.
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        # As a spawned process would: the driver's import path (test agents, `module:Class` from the
        # working directory) and working directory (relative checkpoint and dataset paths), where
        # this node has them (a shared file system mounted at the same path; docs/ray.md).
        sys.path[:0] = [p for p in sys_path if p not in sys.path and os.path.isdir(p or ".")]
        if os.path.isdir(cwd):
            os.chdir(cwd)
        from steerbench.sim.runner import EpisodeRunner

        self.runner = EpisodeRunner()

    def ready(self) -> None:
        return None

    def run(self, job: Callable, task: Any) -> Any:
        return run_job(job, self.runner, task)


def ray_tasks(job: Callable, tasks: Sequence[Any], workers: int, backend: Backend) -> Iterator[Any]:
    """Results of `job(runner, task)` for every task, from Ray actors, as they finish (any order).

    Actors: `workers` of them when above 1, else one per CPU of the cluster (never more than
    tasks). Ray stays connected after the run (it shuts down when the process exits), so that the
    next evaluation or collection of a `compare` does not pay for starting it again.
    """
    connect_ray(backend.address)
    ray = require_ray()
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(len(tasks), workers if workers > 1 else cpus))
    # max_task_retries: system failures only (the actor died); an agent's exception is already an
    # `agent_error` episode inside EpisodeRunner, and any other exception is a bug that must surface.
    actor = ray.remote(_Worker).options(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES,
                                        runtime_env={"env_vars": WORKER_ENV})
    actors = [actor.remote(list(sys.path), os.getcwd()) for _ in range(n)]
    todo = deque(tasks)
    # An actor gets its next task when it is free; one that never starts (more actors than the
    # cluster has CPUs) holds none.
    pending = {a.ready.remote(): (a, False) for a in actors}
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            a, is_task = pending.pop(ref)
            result = _get(ray, ref)
            if todo:
                pending[a.run.remote(job, todo.popleft())] = (a, True)
            if is_task:
                yield result
    finally:
        for a in actors:
            ray.kill(a)


def connect_ray(address: str | None) -> None:
    """Connect this process to Ray (a new local instance when address is None), once."""
    ray = require_ray()
    if not ray.is_initialized():
        probe_address(address)
        _connect(ray, address)


def probe_address(address: str | None) -> None:
    """A one-line BackendError, within seconds, when nothing listens at a Ray address
    (`HOST:PORT`, `ray://HOST:PORT`, or $RAY_ADDRESS for None and "auto"). Why: ray.init retries
    such an address for minutes, printing its own log lines. Other forms ("auto" without
    $RAY_ADDRESS, "local", an http:// address) are left to Ray."""
    if address in (None, "auto"):
        address = os.environ.get("RAY_ADDRESS")
    target = _host_port(address) if address else None
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BackendError(f"cannot connect to Ray at {address}: nothing listens at {target[0]}:{target[1]} "
                           f"({reason}); start the cluster (ray start --head) or check --address") from None


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in host:
        return None
    return host.strip("[]"), int(port)  # [::1]:6379 -> ::1


def _connect(ray: Any, address: str | None) -> None:
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None and not os.environ.get("RAY_ADDRESS"):  # RAY_ADDRESS: set by `ray job submit`
        # "local": a new instance, even where `ray start` once left its address in /tmp/ray
        address, kwargs["include_dashboard"] = "local", False
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError) as exc:
        raise BackendError(f"cannot connect to Ray at {address or 'a new local instance'}: {exc}") from None


def _get(ray: Any, ref: Any) -> Any:
    """ray.get, raising a task's own exception (as the process backend does) rather than Ray's
    wrapper with the remote traceback in its message."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from exc
        raise
