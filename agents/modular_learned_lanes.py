"""`lanes=learned`: the lane model of `steerbench train-lanes`, fused over time.

Each step the model reads the newest frame (and the navigation command, when it was trained on
it: at a junction the ego's lane is the commanded branch; and the ego's heading since the episode
began, dead-reckoned from its motion, when it was trained with odometry) and predicts the left,
ego and right lanes' centre lines as samples at fixed arc lengths from abreast of the ego
(perception.lane_model).
The filter, per lane slot (-1 left, 0 ego, +1 right):

- carry: the last fused lanes are moved into the new ego frame by the ego's motion, then
  resampled at the model's arc lengths from abreast of the ego;
- crossing: a measured ego lane more than half a lane width to the side of the carried one is
  the ego having crossed into a neighbour: the carried slots shift and the lane id counts it;
- blend: where both exist, fused = carried + gain x (measured - carried); else whichever exists;
  a lane unseen for longer than `hold_s` is dropped (the ego's own becomes a straight lane ahead);
- markings (`refine`, off by default): before the blend, a measurement whose ego lane the frame's
  own lane markings place more than 1 m elsewhere is moved there (perception/lane_refine.py: the
  model's guess on a road layout it never saw can sit between two lanes);
- oncoming: a neighbour lane in which a tracked vehicle drives against the lane's direction is
  not offered to the planner for `oncoming_hold_s` (the model is trained on same-direction
  neighbours only; this catches what it gets wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from steerbench.perception.classical import newest, to_gray
from steerbench.perception.lane_refine import refine_lanes
from steerbench.perception.tracker import EgoMotion, Track
from steerbench.perception.types import FrameGeometry
from steerbench.planning.planner import Lane, LaneView, frenet
from steerbench.sim.types import Observation, VehicleState

from .modular_lanes import BEHIND_M, _straight
from .stages import StageContext

SLOTS = (-1, 0, 1)


@dataclass(frozen=True)
class LearnedLaneOptions:
    checkpoint: str = ""  # weights from steerbench train-lanes
    gain: float = 0.5  # weight of each new measurement in the fused lanes (1: no filtering)
    hold_s: float = 1.0  # [s] a lane unseen for longer is dropped
    match_m: float = 1.5  # [m] a tracked vehicle this close to a lane's centre line is in it
    oncoming_mps: float = 2.0  # [m/s] driving against a lane faster than this makes it oncoming
    oncoming_hold_s: float = 3.0  # [s] an oncoming lane stays withheld this long after the last sighting
    refine: bool = False  # the marking check (perception/lane_refine.py) on each measurement

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("lanes=learned needs lanes.checkpoint=PATH (from steerbench train-lanes)")
        if not 0.0 < self.gain <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got {self.gain}")
        if min(self.hold_s, self.match_m, self.oncoming_mps, self.oncoming_hold_s) < 0:
            raise ValueError("hold_s, match_m, oncoming_mps and oncoming_hold_s must be >= 0")


class LearnedLaneSource:
    """Lanes from the learned lane model, filtered over time (module docstring)."""

    Options = LearnedLaneOptions
    inputs = "pixels"

    def __init__(self, options: LearnedLaneOptions) -> None:
        self.o = options
        self.model = self._load(None)  # a missing or bad checkpoint fails now, in one line
        self.reset(StageContext(None, 0.2, False))

    def _load(self, geometry: FrameGeometry | None):
        from steerbench.perception.lane_model import load_lane_model  # imports torch: only when asked for

        return load_lane_model(self.o.checkpoint, geometry)

    def reset(self, ctx: StageContext) -> None:
        self.ready, self.dt, self.command_names = ctx.geometry is not None, ctx.dt, ctx.command_names
        if self.ready and self.model.geometry != ctx.geometry:  # the ego's pixel differs by scenario
            self.model = self._load(ctx.geometry)
        self.s = self.model.s
        self.fused: dict[int, np.ndarray] = {}  # slot -> (K, 2) samples, NaN where none
        self.unseen_s = {slot: 0.0 for slot in SLOTS}
        self.oncoming_s = {slot: 0.0 for slot in SLOTS}  # time left withheld
        self.lane_id = 0
        self.turned = 0.0  # [rad] dead-reckoned heading since the episode began (the model's odometry input)
        self.counts = {"steps": 0, "measured": 0, "crossings": 0, "withheld": 0, "refined": 0}

    def stats(self) -> dict[str, float]:
        """Share of steps the model saw the ego's lane, lane crossings, steps an oncoming lane was
        withheld, steps the marking check moved the measurement."""
        steps = max(self.counts["steps"], 1)
        return {"perception/lanes_measured_share": self.counts["measured"] / steps,
                "perception/lanes_refined_share": self.counts["refined"] / steps,
                "perception/lane_crossings": float(self.counts["crossings"]),
                "perception/oncoming_withheld_share": self.counts["withheld"] / steps}

    def view(self, obs: Observation, motion: EgoMotion | None, tracks: Sequence[Track] = ()) -> LaneView:
        if not self.ready:
            raise RuntimeError("lanes=learned needs the camera geometry in EpisodeInfo")
        self.turned += motion.dheading if motion is not None else 0.0
        measured = self._measure(obs)
        carried = {slot: _resampled(_moved(pts, motion), self.s) for slot, pts in self.fused.items()}
        carried = self._crossed(carried, measured)
        self.fused = self._blend(carried, measured)
        self._watch_oncoming(tracks)
        self.counts["steps"] += 1
        self.counts["measured"] += int(0 in measured)
        self.counts["withheld"] += int(any(self.oncoming_s[slot] > 0 for slot in (-1, 1)))
        lanes = [Lane(slot, pts) for slot in SLOTS if slot in self.fused and (slot == 0 or self.oncoming_s[slot] <= 0)
                 for pts in [_run_from(self.fused[slot], self.s, BEHIND_M)] if pts is not None]
        if not any(lane.offset == 0 for lane in lanes):
            lanes = [_straight(), *lanes]
        return LaneView(lanes, self.lane_id, None)

    def _measure(self, obs: Observation) -> dict[int, np.ndarray]:
        grey = to_gray(newest(obs.frames))  # once: the model and the marking check read the same frame
        command = self.model.command_for(self.command_names, obs.command) if self.model.commands else None
        p = self.model.predict(grey, command=command,
                               turned=self.turned if self.model.odometry else None)
        centres = p.centres
        if self.o.refine and p.valid[1]:
            centres, moved = refine_lanes(grey, centres, p.s, float(p.width[1]),
                                          self.model.geometry)
            self.counts["refined"] += int(moved)
        return {slot: centres[slot + 1] for slot in SLOTS
                if p.valid[slot + 1] and np.isfinite(centres[slot + 1]).any()}

    def _crossed(self, carried: dict[int, np.ndarray], measured: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """The carried slots shifted when the measured ego lane is the carried neighbour."""
        if 0 not in carried or 0 not in measured:
            return carried
        jump = _lateral_at_ego(measured[0], self.s) - _lateral_at_ego(carried[0], self.s)
        if not np.isfinite(jump) or abs(jump) < 0.5 * _width(carried, self.s):
            return carried
        shift = 1 if jump > 0 else -1  # > 0: the new ego lane lies right of the old one
        self.lane_id += shift
        self.counts["crossings"] += 1
        self.unseen_s = {slot: self.unseen_s.get(slot + shift, 0.0) for slot in SLOTS}
        self.oncoming_s = {slot: self.oncoming_s.get(slot + shift, 0.0) for slot in SLOTS}
        return {slot - shift: pts for slot, pts in carried.items() if slot - shift in SLOTS}

    def _blend(self, carried: dict[int, np.ndarray], measured: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        fused = {}
        for slot in SLOTS:
            new, old = measured.get(slot), carried.get(slot)
            if new is not None:
                self.unseen_s[slot] = 0.0
                both = np.isfinite(new[:, 0]) & (np.isfinite(old[:, 0]) if old is not None else False)
                out = new.copy()
                if old is not None:
                    out[both] = old[both] + self.o.gain * (new[both] - old[both])
                fused[slot] = out
            elif old is not None:
                self.unseen_s[slot] += self.dt
                if self.unseen_s[slot] <= self.o.hold_s:
                    fused[slot] = old
        return fused

    def _watch_oncoming(self, tracks: Sequence[Track]) -> None:
        for slot in (-1, 1):
            self.oncoming_s[slot] = max(0.0, self.oncoming_s[slot] - self.dt)
            pts = _run_from(self.fused[slot], self.s, BEHIND_M) if slot in self.fused else None
            if pts is not None and any(self._against(pts, t) for t in tracks):
                self.oncoming_s[slot] = self.o.oncoming_hold_s

    def _against(self, pts: np.ndarray, track: Track) -> bool:
        s, d, tangent = frenet(pts, track.position)
        inside = 0.0 < s < float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
        return inside and abs(d) < self.o.match_m and float(track.velocity @ tangent) < -self.o.oncoming_mps


def _moved(pts: np.ndarray, motion: EgoMotion | None) -> np.ndarray:
    """Points of the last ego frame in the new one (as PixelLanes carries its lanes)."""
    if motion is None:
        return pts
    d, dh = motion.distance_m, motion.dheading
    pose = VehicleState(d * np.cos(dh / 2), d * np.sin(dh / 2), dh, 0.0, 5.0, 2.0)
    out = np.full_like(pts, np.nan)
    ok = np.isfinite(pts[:, 0])
    out[ok] = pose.to_local(pts[ok])
    return out


def _resampled(pts: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The polyline's points at arc lengths `s` from abreast of the ego (NaN outside what it covers)."""
    run = pts[np.isfinite(pts[:, 0])]
    out = np.full((len(s), 2), np.nan)
    if len(run) < 2:
        return out
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(run, axis=0), axis=1))])
    target = frenet(run)[0] + s
    inside = (target >= along[0]) & (target <= along[-1])
    out[inside, 0] = np.interp(target[inside], along, run[:, 0])
    out[inside, 1] = np.interp(target[inside], along, run[:, 1])
    return out


def _lateral_at_ego(pts: np.ndarray, s: np.ndarray) -> float:
    """[m] y of the lane's centre abreast of the ego (NaN when the lane does not reach it)."""
    ok = np.isfinite(pts[:, 1])
    return float(np.interp(0.0, s[ok], pts[ok, 1])) if ok.sum() >= 2 and s[ok][0] <= 0.0 <= s[ok][-1] else np.nan


def _width(carried: dict[int, np.ndarray], s: np.ndarray) -> float:
    """[m] the carried lanes' spacing abreast of the ego (4 m, highway-env's, when no neighbour tells)."""
    gaps = [abs(_lateral_at_ego(carried[side], s) - _lateral_at_ego(carried[0], s)) for side in (-1, 1)
            if side in carried]
    gaps = [g for g in gaps if np.isfinite(g)]
    return float(np.mean(gaps)) if gaps else 4.0


def _run_from(pts: np.ndarray, s: np.ndarray, behind_m: float) -> np.ndarray | None:
    """The first unbroken run of samples from `behind_m` behind the ego, or None when under 2 points."""
    ok = np.isfinite(pts[:, 0]) & (s >= -behind_m)
    if not ok.any():
        return None
    start = int(np.argmax(ok))
    end = start + int(np.argmin(ok[start:])) if not ok[start:].all() else len(ok)
    return pts[start:end] if end - start >= 2 else None
