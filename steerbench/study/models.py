"""The study's trained models (`compare`, `scale`): found in a models directory, trained when missing.

Layout of a models directory (docs/study.md):

    data/               a `steerbench collect` dataset: expert episodes of the train split (half
                        of them with DART steering noise, labels clean), train-dev and dev
    detector-s<k>/      a `steerbench train-detector` run with training seed k
    lanes-s<k>/         a `steerbench train-lanes` run with training seed k
    e2e-<S|M|L>-s<k>/   a `steerbench train-e2e` run with training seed k

A model counts as present when its `checkpoints/best.pt` exists and its run finished (its
`finished.json` is there, with the budget it was trained under: a model of another budget is an
error, never silently reused); a run that was interrupted is resumed, not restarted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from steerbench.agents.e2e_train import TrainConfig, train
from steerbench.agents.errors import TrainingError
from steerbench.agents.registry import AgentSpec, resolve
from steerbench.harness.backends import Backend
from steerbench.harness.collect import CollectConfig, collect
from steerbench.sim.composition import Composition
from steerbench.sim.episodes import DAGGER, EVAL_START, data_start
from steerbench.sim.runner import EnvSettings

HELD_OUT_SPLITS = ("train-dev", "dev")
# The models' data come from the training and selection ranges of sim.episodes; `compare` and
# `scale` evaluate from the evaluation range on, so that no contestant is scored on an episode it
# was trained (or early-stopped) on.
EVAL_INDEX = EVAL_START
MAX_EPOCHS = 40
FINISHED = "finished.json"  # written when a model's training ends: delete it to resume or extend the run


@dataclass(frozen=True)
class Budget:
    """What is trained when a model is missing: the documented default budget (docs/study.md)."""

    scenarios: tuple[str, ...]  # the training scenarios (train split)
    train_episodes: int = 20  # expert episodes per scenario
    heldout_episodes: int = 4  # train-dev and dev episodes per scenario
    noise: float = 0.1  # DART: sd of the steering noise executed in half of the train episodes
    e2e_epochs: int = 8  # most epochs per network (early stopping on train-dev, patience 10)
    detector_frames: int = 3000  # train frames of the learned detector (equal shares per scenario)
    detector_epochs: int = 8  # most epochs of the learned detector
    detector_eval_frames: int = 300  # held-out frames per split (train-dev, dev) to pick its best epoch
    lane_frames: int = 3000  # train frames of the learned lane model (equal shares per scenario)
    lane_epochs: int = 10  # most epochs of the lane model (early stopping on train-dev, patience 10)
    lane_eval_frames: int = 300  # held-out frames per split (train-dev, dev) to pick its best epoch
    lane_viewpoint: float = 0.5  # share of its frames seen from a displaced ego (train-lanes --viewpoint)
    lane_dagger_rounds: int = 0  # DAgger rounds of the lane model on the agent's rollouts (harness/lane_dagger.py)
    lane_dagger_episodes: int = 20  # its rollouts per scenario and round
    lane_dagger_scenarios: tuple[str, ...] = ()  # where it rolls out (empty: `scenarios`)
    lane_dagger_critical: float = 1.0  # share of each rollout's steps kept, where the model errs most
    lane_dagger_repeat: int = 1  # times each kept step is taken
    lane_extra_data: tuple[str, ...] = ()  # datasets of other road layouts the lane model also trains on
    lane_named_commands: bool = False  # the lane model's commands by name across scenarios (train-lanes)
    frames: int = 0  # `scale`: every learned model trains on `frames` train frames (0: all; which: `composition`)
    samples: int = 0  # `scale`: with `frames`, train for ceil(samples / frames) epochs (at least the
    #                   epochs above, at most MAX_EPOCHS), so that a small N still gets enough updates
    passes: float = 0.0  # `scale`: with `frames`, the networks train by a step budget of max(min_steps,
    #                      passes x frames / batch) updates (0: by epochs, `samples` above)
    min_steps: int = 2000  # the least step budget at any N
    schedule: str = "cosine"  # the step budget's learning-rate schedule (agents/e2e_schedule.py)
    lrs: tuple[tuple[str, float], ...] = ()  # learning rate per network size, e.g. (("M", 1e-3),) (a tune sweep's)
    composition: Composition | None = None  # `scale`: with `frames`, this sim.composition mix (None: first frames)
    viewpoint: float = 0.0  # the networks' viewpoint augmentation (train-e2e --viewpoint)
    channels_last: bool = False  # the networks train in channels-last layout (train-e2e --channels-last)
    dagger_rounds: int = 2  # `scale`'s DAgger curve: DA-RB rounds after behaviour cloning
    dagger_episodes: int = 10  # its student rollouts per scenario and round
    dagger_buffer: float = 0.5  # its replay buffer, as a share of `frames` [frames of rollouts kept]
    dagger_critical: float = 0.5  # the share of each rollout's states kept, where the student errs most
    workers: int = 1  # processes for data collection
    progress: bool = True
    backend: Backend = Backend()  # where data collection runs (docs/ray.md)

    def e2e_steps(self, batch: int = 64) -> int:
        """The networks' step budget at this budget's `frames` (0: they train by epochs): it never
        shrinks as `frames` grows."""
        if not (self.frames and self.passes):
            return 0
        return max(self.min_steps, math.ceil(self.passes * self.frames / batch))

    def lr(self, size: str) -> float:
        """The learning rate of network `size`: the budget's, else train-e2e's default."""
        return dict(self.lrs).get(size, TrainConfig.lr)

    def epochs(self, least: int) -> int:
        """Epochs for a model whose own budget is `least`: with `frames` and `samples` set,
        ceil(samples / frames), at least `least` and at most MAX_EPOCHS; else `least`."""
        if not (self.frames and self.samples):
            return least
        return min(MAX_EPOCHS, max(least, math.ceil(self.samples / self.frames)))


@dataclass(frozen=True)
class Timing:
    """How long one part of a study took (a collection, a training, an evaluation)."""

    part: str
    seconds: float  # for a reused model: how long it took when it was trained (0 if unknown)
    trained: bool  # False: found in the models directory and reused

    def as_dict(self) -> dict:
        """For compare.json (seconds rounded to 0.1)."""
        return {"part": self.part, "seconds": round(self.seconds, 1), "trained": self.trained}


@dataclass
class Models:
    """A models directory, the budget for what it lacks, and how long each part took."""

    root: Path
    budget: Budget
    env: EnvSettings = EnvSettings()
    timings: list[Timing] = field(default_factory=list)

    @property
    def data(self) -> Path:
        """The models directory's dataset: ROOT/data."""
        return self.root / "data"

    def e2e_dir(self, size: str, seed: int) -> Path:
        """The train-e2e run of network `size` with training seed `seed` (with `frames`: named
        e2e-<size>-s<seed>-n<frames>-<identity>, see `identity`)."""
        return Path(self.e2e_config(size, seed).logdir)

    def e2e_config(self, size: str, seed: int) -> TrainConfig:
        """What `e2e` trains for network `size` and training seed `seed`."""
        b = self.budget
        cfg = TrainConfig(data=str(self.data), logdir="", size=size, epochs=b.epochs(b.e2e_epochs), seed=seed,
                          lr=b.lr(size), frames=b.frames, scenarios=b.scenarios, composition=b.composition,
                          viewpoint=b.viewpoint, channels_last=b.channels_last,
                          steps=b.e2e_steps(), schedule=b.schedule if b.e2e_steps() else "constant",
                          outputs=2 if self.env.mode == "full" else 1, progress=b.progress)
        return dataclasses.replace(cfg, logdir=str(self.root / self._name(f"e2e-{size}-s{seed}", cfg)))

    def _name(self, base: str, cfg: object) -> str:
        """`base`, or with `frames` `base`-n<frames>-<identity>: a model trained under another
        budget is another model, never silently reused."""
        return f"{base}-n{self.budget.frames}-{identity(cfg)}" if self.budget.frames else base

    def detector_dir(self, seed: int) -> Path:
        """The train-detector run with training seed `seed` (with `frames`: suffixed like `e2e_dir`)."""
        return Path(self.detector_config(seed).logdir)

    def lanes_dir(self, seed: int) -> Path:
        """The train-lanes run with training seed `seed` (with `frames`: suffixed like `e2e_dir`)."""
        return Path(self.lanes_config(seed).logdir)

    def detector_config(self, seed: int):
        """What `detector` trains with training seed `seed` (a DetectorTrainConfig)."""
        from steerbench.perception.learned_train import DetectorTrainConfig

        b = self.budget
        cfg = DetectorTrainConfig(data=str(self.data), logdir="", scenarios=b.scenarios,
                                  frames=b.frames or b.detector_frames, eval_frames=b.detector_eval_frames,
                                  epochs=b.epochs(b.detector_epochs), seed=seed,
                                  composition=b.composition if b.frames else None, progress=b.progress)
        return dataclasses.replace(cfg, logdir=str(self.root / self._name(f"detector-s{seed}", cfg)))

    def lanes_config(self, seed: int):
        """What `lanes` trains with training seed `seed` (a LaneTrainConfig)."""
        from steerbench.perception.lane_train import LaneTrainConfig

        b = self.budget
        cfg = LaneTrainConfig(data=str(self.data), logdir="", scenarios=b.scenarios,
                              frames=b.frames or b.lane_frames, eval_frames=b.lane_eval_frames,
                              epochs=b.epochs(b.lane_epochs), seed=seed, viewpoint=b.lane_viewpoint,
                              composition=b.composition if b.frames else None, extra_data=b.lane_extra_data,
                              named_commands=b.lane_named_commands, progress=b.progress)
        return dataclasses.replace(cfg, logdir=str(self.root / self._name(f"lanes-s{seed}", cfg)))

    def ensure_data(self) -> Path:
        """Collect what is missing (resumable: recorded episodes are kept). With `frames`, the
        train split gets at least that many frames (more episodes when some end early)."""
        from steerbench.perception.detector_data import ensure_frames

        b = self.budget
        before, start = self._episodes(), time.perf_counter()
        for split, episodes in (("train", b.train_episodes), *((s, b.heldout_episodes) for s in HELD_OUT_SPLITS)):
            self._collect(b.scenarios, split, episodes)
        if b.frames and b.composition is not None:
            self._ensure_composed()
        elif b.frames:
            ensure_frames(self.data, "train", b.scenarios, b.frames, 1, self._collect_one, self.env.policy_hz)
        added = self._episodes() - before
        if added:
            self.timings.append(Timing(f"collect data ({added} episodes)", time.perf_counter() - start, True))
        return self.data

    def _ensure_composed(self) -> None:
        """Collect train episodes until every stratum of sim.composition's mix for `frames` has its
        full pool (collection decides an episode's noise by its seed: about half are noisy)."""
        from steerbench.perception.detector_data import nominal_steps
        from steerbench.sim.composition import shortfall

        b, before = self.budget, -1
        while True:
            rows = [r for r in self._rows() if r["split"] == "train" and r["index"] < DAGGER.start]
            missing = shortfall(rows, b.frames, b.scenarios, b.composition)
            if not missing:
                return
            if len(rows) == before:
                raise TrainingError(f"collecting more train episodes into {self.data} added none; "
                                    f"the mix for {b.frames} frames still lacks {sorted(missing)}")
            before = len(rows)
            for scenario in dict.fromkeys(s for s, _ in missing):
                per = nominal_steps(scenario, "train", self.env.policy_hz)
                more = max(m.episodes_for(per) for (s, _), m in missing.items() if s == scenario)
                have = sum(1 for r in rows if r["scenario"] == scenario)
                self._collect((scenario,), "train", have + 2 * more)  # twice: a stratum gets about half

    def _collect_one(self, scenario: str, split: str, episodes: int, missing: int) -> None:
        """The perception.detector_data.Collector signature, for one scenario."""
        self._collect((scenario,), split, episodes)

    def _collect(self, scenarios: tuple[str, ...], split: str, episodes: int) -> None:
        """The first `episodes` of `split`'s data range (steerbench collect skips those recorded)."""
        b = self.budget
        keys, start = self._keys(), data_start(split)
        if all((s, split, i) in keys for s in scenarios for i in range(start, start + episodes)):
            return
        collect(CollectConfig(teacher=AgentSpec("expert", resolve("expert")), scenarios=scenarios, split=split,
                              episodes=episodes, seed=start, workers=b.workers, out=self.data, env=self.env,
                              noise_std=b.noise if split == "train" else 0.0, progress=b.progress,
                              backend=b.backend))

    def _rows(self) -> list[dict]:
        from steerbench.sim.dataset import DatasetIndex

        return DatasetIndex(self.data).rows if (self.data / "index.jsonl").exists() else []

    def _keys(self) -> set:
        return {(r["scenario"], r["split"], r["index"]) for r in self._rows()}

    def _episodes(self) -> int:
        return len(self._keys())

    def e2e(self, size: str, seed: int) -> Path:
        """The best checkpoint of network `size` trained with `seed`, trained now if missing."""
        cfg = self.e2e_config(size, seed)
        return self._ensure(f"train e2e-{size} seed {seed}", Path(cfg.logdir), lambda: train(cfg), cfg)

    def detector(self, seed: int) -> Path:
        """The best checkpoint of the learned detector trained with `seed`, trained now if missing
        (a DetectorError of its training becomes a TrainingError)."""
        from steerbench.perception.learned import DetectorError
        from steerbench.perception.learned_train import prepare_data, train_detector

        cfg = self.detector_config(seed)

        def fit() -> None:
            try:
                prepare_data(cfg, self._collect_one, self.env.policy_hz)
                train_detector(cfg)
            except DetectorError as exc:
                raise TrainingError(f"detector seed {seed}: {exc}") from None

        return self._ensure(f"train detector seed {seed}", Path(cfg.logdir), fit, cfg)

    def lanes(self, seed: int) -> Path:
        """The best checkpoint of the learned lane model trained with `seed`, trained now if missing
        (a LaneModelError of its training becomes a TrainingError)."""
        from steerbench.harness.lane_dagger import LaneDaggerConfig, round_dir, run_lane_dagger
        from steerbench.perception.lane_model import LaneModelError
        from steerbench.perception.lane_train import train_lanes
        from steerbench.perception.learned import DetectorError
        from steerbench.perception.learned_train import prepare_data

        b = self.budget
        cfg = self.lanes_config(seed)
        rounds = (LaneDaggerConfig(train=cfg, rounds=b.lane_dagger_rounds,
                                   scenarios=b.lane_dagger_scenarios or b.scenarios,
                                   episodes=b.lane_dagger_episodes, workers=b.workers, progress=b.progress,
                                   backend=b.backend, critical=b.lane_dagger_critical,
                                   repeat=b.lane_dagger_repeat) if b.lane_dagger_rounds else None)

        def fit() -> None:
            try:
                prepare_data(cfg, self._collect_one, self.env.policy_hz)  # as the detector tops its frames up
                if rounds is None:
                    train_lanes(cfg)
                else:
                    run_lane_dagger(rounds)
            except (LaneModelError, DetectorError) as exc:  # a DetectorError: the data's top-up
                raise TrainingError(f"lane model seed {seed}: {exc}") from None

        if rounds is None:
            return self._ensure(f"train lanes seed {seed}", Path(cfg.logdir), fit, cfg)
        return self._ensure(f"train lanes seed {seed} (DAgger)", round_dir(rounds, rounds.rounds), fit, rounds)

    def dagger(self, size: str, seed: int) -> Path:
        """The last round's best checkpoint of DA-RB (harness/dagger.py) on network `size`, trained
        now if missing. Round 0 is `e2e(size, seed)` itself (its run directory, reused when
        trained); the rounds, their rollouts and dataset live inside that directory."""
        from steerbench.harness.dagger import DaggerConfig, round_dir, run_dagger

        b = self.budget
        cfg = DaggerConfig(train=self.e2e_config(size, seed), rounds=b.dagger_rounds, scenarios=b.scenarios,
                           episodes=b.dagger_episodes, workers=b.workers, env=self.env, progress=b.progress,
                           backend=b.backend, buffer=math.ceil(b.dagger_buffer * b.frames) if b.frames else 0,
                           critical=b.dagger_critical)
        self.e2e(size, seed)
        run = round_dir(cfg, cfg.rounds)
        return self._ensure(f"DAgger e2e-{size} seed {seed}", run, lambda: run_dagger(cfg), cfg)

    def _ensure(self, part: str, run: Path, fit: Callable[[], object], cfg: object) -> Path:
        """`run`'s best checkpoint: reused when present (and trained under `cfg`'s budget, when it
        recorded one), else trained by `fit`."""
        best = run / "checkpoints" / "best.pt"
        if self.budget.frames:
            part += f" (N = {self.budget.frames})"
        if _finished(run) or (best.exists() and not (run / "checkpoints" / "last.pt").exists()):
            check_same_budget(run, cfg)
            if all(t.part != part for t in self.timings):  # one row per model, however many contestants use it
                self.timings.append(Timing(part, _training_seconds(run), False))
            return best
        self.ensure_data()
        start = time.perf_counter()
        fit()
        seconds = time.perf_counter() - start
        record = {"training_seconds": round(seconds, 1), "settings": settings(cfg)}
        (run / FINISHED).write_text(json.dumps(record, default=list) + "\n")
        self.timings.append(Timing(part, seconds, True))
        return best


NOT_BUDGET = ("data", "logdir", "progress", "workers", "backend")  # where and how, not what is trained
# settings added later, left out at their default: the models trained before keep their identity
LATE_DEFAULTS = {"channels_last": False, "extra_data": (), "named_commands": False}


def settings(cfg: object) -> dict:
    """A training configuration (a dataclass, nested ones too) without its paths and its ways of
    running: what makes the model, as JSON values."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in NOT_BUDGET and not (k in LATE_DEFAULTS and v == LATE_DEFAULTS[k])}
        return list(map(strip, value)) if isinstance(value, (list, tuple)) else value

    return strip(dataclasses.asdict(cfg))


def identity(cfg: object) -> str:
    """8 hex digits of `settings(cfg)`: equal for the same budget, different for another."""
    return hashlib.sha256(json.dumps(settings(cfg), sort_keys=True, default=list).encode()).hexdigest()[:8]


def check_same_budget(run: Path, cfg: object) -> None:
    """TrainingError when the finished model in `run` recorded another budget than `cfg`'s; a model
    that recorded none (a checkpoint put there by hand) is taken as it is."""
    try:
        recorded = json.loads((run / FINISHED).read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return
    if recorded is None or recorded == settings(cfg):
        return
    now = settings(cfg)
    differ = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    shown = ", ".join(f"{k} {recorded.get(k)} -> {now.get(k)}" for k in differ[:3])
    raise TrainingError(f"{run} was trained under another budget ({shown}); delete it to retrain, "
                        "or give another --models directory")


def _finished(run: Path) -> bool:
    return (run / FINISHED).exists() and (run / "checkpoints" / "best.pt").exists()


def _training_seconds(run: Path) -> float:
    """How long a reused model took to train (0 when it was not trained here)."""
    try:
        return float(json.loads((run / FINISHED).read_text())["training_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
