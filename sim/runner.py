"""Run episodes: one agent, one scenario episode, guarded against agents that misbehave.

An agent that raises, returns a wrong-shaped or non-finite action, or takes longer than the
per-step time limit has its episode recorded as failed (`agent_error`), and the run goes on.
`sim` never imports an agent: tasks carry a picklable factory that builds one.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections import deque
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable

import numpy as np

from .env import SteerEnv
from .metrics import EpisodeEnd, episode_metrics, steering_histogram
from .types import CameraConfig, EpisodeInfo, Mode, Observation, StepRecord


@dataclass(frozen=True)
class EnvSettings:
    mode: Mode = "steering"
    camera: CameraConfig = CameraConfig()
    policy_hz: int = 5
    sim_hz: int = 10
    # --scenario-opt overrides, (scenario, key, value) sorted (sim/scenario_options.py): part of the
    # settings' identity, so a run directory or dataset refuses to mix runs made with other ones
    scenario_options: tuple = ()
    # The fast simulation core (sim/fastcore.py, docs/simcore.md) changes the speed, never a result:
    # an init-only flag, so it is not part of the settings' identity (equality, config.json,
    # manifests) and runs resume across it. It still travels with the settings (pickled).
    fast: InitVar[bool] = False

    def __post_init__(self, fast: bool) -> None:
        object.__setattr__(self, "fast", bool(fast))


@dataclass(frozen=True)
class EpisodeTask:
    agent: str  # the agent's label in this run
    factory: Callable[[], Any]  # picklable; builds the agent in the worker
    inputs: str  # "pixels" | "pixels+map" | "privileged": what the harness hands over
    scenario: str
    split: str
    index: int
    seed: int
    env: EnvSettings = EnvSettings()
    act_timeout_s: float = 10.0
    strip_frames: int = 0  # >0: return this many frames, evenly spaced, for a frame strip
    tail_frames: int = 0  # >0: return the last this many frames (and overlays), for a clip of the end

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.agent, self.scenario, self.split, self.index)


@dataclass
class EpisodeResult:
    agent: str
    scenario: str
    split: str
    index: int
    seed: int
    command: int
    metrics: dict
    steering_hist: list[int]
    error: str | None = None
    reference: dict = field(default_factory=dict)  # the episode's EpisodeReference, as a dict
    agent_stats: dict[str, float] = field(default_factory=dict)  # from the agent's optional stats()
    strip: list[np.ndarray] = field(default_factory=list, repr=False)
    overlays: list[np.ndarray] = field(default_factory=list, repr=False)  # from the agent's optional overlay()
    # The last `tail_frames` frames, each rendered after a step, and the overlay the agent drew
    # when it chose that step's action (None where it drew none; [] if it never drew one).
    tail: list[np.ndarray] = field(default_factory=list, repr=False)
    tail_overlays: list[np.ndarray | None] = field(default_factory=list, repr=False)

    def row(self) -> dict:
        """The results.jsonl row (frames are written elsewhere)."""
        d = dataclasses.asdict(self)
        for images in ("strip", "overlays", "tail", "tail_overlays"):
            d.pop(images)
        return d


class AgentTimeout(Exception):
    pass


class _StepTimer:
    """SIGALRM-based limit on one `act` call; a no-op off the main thread (signals need it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread() and seconds > 0

    def __enter__(self):
        if self.active:
            self._old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def _fire(self, *_):
        raise AgentTimeout(f"act() took longer than {self.seconds:g} s")

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False


def check_action(action: Any) -> np.ndarray:
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (2,):
        raise ValueError(f"agent returned an action of shape {a.shape}, expected (2,)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"agent returned a non-finite action {a.tolist()}")
    return a


class EpisodeRunner:
    """Holds environments and agents for reuse across the episodes one process runs."""

    def __init__(self) -> None:
        self._envs: dict[tuple, SteerEnv] = {}
        self._agents: dict[str, Any] = {}

    def env(self, scenario: str, split: str, s: EnvSettings) -> SteerEnv:
        key = (scenario, split, s, s.fast)
        if key not in self._envs:
            self._envs[key] = SteerEnv(scenario, split, s.mode, s.camera, s.policy_hz, s.sim_hz, fast=s.fast,
                                       scenario_options=s.scenario_options)
        return self._envs[key]

    def agent(self, task: EpisodeTask):
        if task.agent not in self._agents:
            self._agents[task.agent] = task.factory()
        return self._agents[task.agent]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def run(self, task: EpisodeTask) -> EpisodeResult:
        env = self.env(task.scenario, task.split, task.env)
        start = time.perf_counter()
        obs, _ = env.reset(seed=task.seed)
        info = episode_info(env, task)
        records: list[StepRecord] = []
        strip: list[np.ndarray] = []
        overlays: list[np.ndarray] = []
        overlay_every = max(1, env.max_steps // task.strip_frames) if task.strip_frames else 0
        tail = _Tail(task.tail_frames)
        step_info: dict = {}
        agent, error = self._start_agent(task, info)
        done = error is not None
        while not done:
            try:  # only the agent's calls: a simulator fault is a bug and must surface
                with _StepTimer(task.act_timeout_s):
                    action = check_action(agent.act(self._observation(env, obs, task.inputs)))
            except Exception as exc:  # noqa: BLE001 - any agent failure is recorded, not raised
                error = _describe(exc)
                break
            strip_overlay = bool(overlay_every) and len(records) % overlay_every == 0
            drawn = _overlay(agent) if strip_overlay or tail.n else []  # draw once, use twice
            if strip_overlay:
                overlays += drawn
            obs, _, term, trunc, step_info = env.step(action)
            records.append(step_info["record"])
            frame = env.render() if task.strip_frames or tail.n else None
            if task.strip_frames:
                strip.append(frame)
            tail.add(frame, drawn)
            done = term or trunc
        end = self._end(env, step_info, error, time.perf_counter() - start)
        metrics = episode_metrics(records, end, off_route=bool(env.left_route()))
        return EpisodeResult(
            agent=task.agent, scenario=task.scenario, split=task.split, index=task.index,
            seed=task.seed, command=env.command, metrics=metrics,
            steering_hist=steering_histogram(records), error=error, reference=dataclasses.asdict(env.reference),
            agent_stats=_agent_stats(agent), strip=_evenly(strip, task.strip_frames),
            overlays=overlays[:task.strip_frames], tail=list(tail.frames), tail_overlays=tail.overlays(),
        )

    def _start_agent(self, task: EpisodeTask, info: EpisodeInfo) -> tuple[Any, str | None]:
        try:
            agent = self.agent(task)
            with _StepTimer(task.act_timeout_s):
                agent.reset(info)
            return agent, None
        except Exception as exc:  # noqa: BLE001
            return None, _describe(exc)

    @staticmethod
    def _observation(env: SteerEnv, obs: dict, inputs: str) -> Observation:
        return Observation(
            frames=obs["frames"], speed=float(obs["speed"][0]), command=int(obs["command"]),
            road=env.road_prior() if inputs in ("pixels+map", "privileged") else None,
            truth=env.ground_truth() if inputs == "privileged" else None,
        )

    @staticmethod
    def _end(env: SteerEnv, step_info: dict, error: str | None, wall: float) -> EpisodeEnd:
        return EpisodeEnd(
            crashed=bool(step_info.get("crashed", False)),
            off_road=not step_info.get("on_road", True),
            goal=bool(step_info.get("goal", False)),
            goal_directed=env.spec_.goal_directed,
            agent_error=error,
            collision_angle=env.collision_bearing() if step_info.get("crashed") else None,
            reference=env.reference,
            wall_s=wall,
            policy_hz=env.policy_hz,
        )


def episode_info(env: SteerEnv, task: Any) -> EpisodeInfo:
    """What `Agent.reset` gets, for an environment just reset for `task`."""
    return EpisodeInfo(
        scenario=task.scenario, split=task.split, seed=task.seed, index=task.index,
        policy_hz=task.env.policy_hz, mode=task.env.mode, command=env.command,
        command_names=env.spec_.commands, max_steps=env.max_steps, camera=env.camera_config,
    )


def _agent_stats(agent: Any) -> dict[str, float]:
    """An agent may report per-episode diagnostics ("section/name" -> number) through an
    optional `stats()`; anything that is not a finite number is dropped, and a failing `stats()`
    costs the episode nothing."""
    stats = getattr(agent, "stats", None)
    if not callable(stats):
        return {}
    try:
        items = dict(stats()).items()
    except Exception:  # noqa: BLE001 - diagnostics must never fail an episode
        return {}
    out = {}
    for key, value in items:
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if isinstance(key, str) and "/" in key and np.isfinite(value):
            out[key] = value
    return out


def _overlay(agent: Any) -> list[np.ndarray]:
    """An agent may draw what it perceived and planned over its last input through an optional
    `overlay()` returning an (H, W, 3) uint8 image; like `stats()`, it never fails an episode."""
    draw = getattr(agent, "overlay", None)
    if not callable(draw):
        return []
    try:
        image = np.asarray(draw())
    except Exception:  # noqa: BLE001 - diagnostics must never fail an episode
        return []
    ok = image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    return [image] if ok else []


class _Tail:
    """The last `n` frames and overlays: bounded deques keep only the end, whatever the length."""

    def __init__(self, n: int) -> None:
        self.n = max(0, n)
        self.frames: deque = deque(maxlen=self.n)
        self._overlays: deque = deque(maxlen=self.n)

    def add(self, frame: np.ndarray | None, drawn: list[np.ndarray]) -> None:
        if self.n and frame is not None:
            self.frames.append(frame)
            self._overlays.append(drawn[0] if drawn else None)

    def overlays(self) -> list[np.ndarray | None]:
        """Aligned with `frames`, or empty when the agent drew nothing in the tail."""
        return list(self._overlays) if any(o is not None for o in self._overlays) else []


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _evenly(frames: list, n: int) -> list:
    if not n or not frames:
        return []
    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    return [frames[i] for i in idx]
