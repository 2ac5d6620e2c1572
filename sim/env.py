"""`SteerEnv`: one scenario and split as a gymnasium environment with steerbench's contract.

* action: normalised `[acceleration, steering]` in [-1, 1]; in `steering` mode the shared
  adaptive cruise control replaces the acceleration, so only steering differs between agents;
* observation: `{"frames": (stack, H, W[, 3]) uint8, "speed": (1,) m/s, "command": int}`;
* `ground_truth()`: privileged state for the harness, experts, labels and metrics;
* `info["record"]`: the `StepRecord` that episode metrics are computed from.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from . import fastcore, fastdraw
from .camera import EGO_COLOR, Camera, Pose, to_gray
from .longitudinal import AdaptiveCruise, Radar, curvature_from_steering, predicted_path
from .scenario_options import Option, applied
from .scenarios import get_scenario
from .types import CameraConfig, EpisodeReference, GroundTruth, Mode, RoadPrior, StepRecord, VehicleState

ACTION_DIM = 2
STEERING_RANGE = np.pi / 4  # [rad] that steering 1.0 maps to
ACCEL_RANGE = 5.0  # [m/s2] that acceleration 1.0 maps to


def _core_config(scenario_config: dict, policy_hz: int, sim_hz: int) -> dict:
    """The highway-env config of a scenario's core: its split's settings, a continuous
    [acceleration, steering] action in physical units, and the policy and simulation rates."""
    config = dict(scenario_config)
    config.update(
        {
            "observation": {"type": "Kinematics", "vehicles_count": 2},
            "action": {
                "type": "ContinuousAction",
                "longitudinal": True,
                "lateral": True,
                "acceleration_range": (-ACCEL_RANGE, ACCEL_RANGE),
                "steering_range": (-STEERING_RANGE, STEERING_RANGE),
                "speed_range": (0.0, 40.0),
            },
            "policy_frequency": policy_hz,
            "simulation_frequency": sim_hz,
        }
    )
    return config


def _observation_space(cam: CameraConfig, commands: int) -> spaces.Dict:
    """The observation: `cam.stack` frames (grey or RGB), the ego's speed and the command."""
    shape = (cam.stack, cam.height, cam.width) + ((3,) if cam.color else ())
    return spaces.Dict(
        {
            "frames": spaces.Box(0, 255, shape=shape, dtype=np.uint8),
            "speed": spaces.Box(0.0, 40.0, shape=(1,), dtype=np.float32),
            "command": spaces.Discrete(commands),
        }
    )


def vehicle_state(v, kind: str = "car") -> VehicleState:
    """A highway-env vehicle or object as a `VehicleState` (yaw rate from its steering)."""
    speed = float(getattr(v, "speed", 0.0))
    steering = float((getattr(v, "action", None) or {}).get("steering", 0.0))
    # highway-env's kinematic bicycle: slip angle from steering, yaw rate = v sin(beta) / (L/2)
    beta = np.arctan(0.5 * np.tan(steering))
    return VehicleState(
        x=float(v.position[0]), y=float(v.position[1]), heading=float(v.heading),
        speed=speed, length=float(v.LENGTH), width=float(v.WIDTH),
        lane_index=getattr(v, "lane_index", None), kind=kind,
        yaw_rate=float(speed * np.sin(beta) / (v.LENGTH / 2)),
    )


class SteerEnv(gym.Env):
    """One scenario and split as a gymnasium environment (the contract in this module's docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        scenario: str = "highway",
        split: str = "train",
        mode: Mode = "steering",
        camera: CameraConfig | None = None,
        policy_hz: int = 5,
        sim_hz: int = 10,
        render_mode: str | None = None,
        fast: bool = False,
        scenario_options: Sequence[Option] = (),
    ) -> None:
        if mode not in ("steering", "full"):
            raise ValueError(f"unknown mode {mode!r}; choose steering or full")
        if policy_hz < 5 or sim_hz % policy_hz:
            raise ValueError("policy_hz must be >= 5 and divide sim_hz")
        self.spec_ = get_scenario(scenario)
        self.split, self.mode, self.render_mode = split, mode, render_mode
        self.policy_hz = policy_hz
        self.fast = fast  # the fast simulation core (sim/fastcore.py): same results, less time
        cam = camera or CameraConfig()
        if cam.centering is None:
            cam = dataclasses.replace(cam, centering=self.spec_.centering)
        self.camera_config = cam
        split_spec = self.spec_.split(split)
        config, self.look = applied(scenario, split_spec.config, split_spec.look, scenario_options)
        self.core = self.spec_.env_class_for(split)(config=_core_config(config, policy_hz, sim_hz))
        self.camera = Camera(self.core, cam)
        if fast and fastcore.supported():
            fastdraw.install_viewer(self.camera.viewer)
        self.cruise = AdaptiveCruise()
        self.radar = Radar()
        self.observation_space = _observation_space(cam, len(self.spec_.commands))
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)
        self._frames: deque = deque(maxlen=cam.stack)
        self._last_rgb: np.ndarray | None = None
        self._pose: Pose | None = None
        self._noise = np.random.default_rng(0)
        self._truth: GroundTruth | None = None

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.core.reset(seed=seed)
        if self.fast:
            fastcore.install(self.core.road)
        self._truth = None
        # Seeded resets keep their noise stream; an unseeded one continues from gymnasium's RNG,
        # which reset(seed=) seeded: the pixel noise is as reproducible as the traffic.
        self._noise = np.random.default_rng(seed + 7919 if seed is not None else int(self.np_random.integers(2**63)))
        self._colour_traffic()
        self.time = 0.0
        self._prev_pos = self.core.vehicle.position.copy()
        self._start_pos = self._prev_pos.copy()
        self.reference = self._reference()
        frame = self._capture()
        self._frames.clear()
        for _ in range(self.camera_config.stack):  # a full stack: padding would be blank frames
            self._frames.append(frame)
        return self._observation(), {"command": self.command, "max_steps": self.max_steps}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 2 finite numbers [acceleration, steering], got {action!r}")
        action = np.clip(action, -1.0, 1.0)
        if self.mode == "steering":
            action[0] = self._cruise_command(action[1])
        _, reward, terminated, truncated, info = self.core.step(action)
        self._truth = None
        self.time += 1.0 / self.policy_hz
        self._colour_traffic()
        self._frames.append(self._capture())
        record = self._record(action, float(reward))
        info = {
            "record": record,
            "crashed": bool(self.core.vehicle.crashed),
            "on_road": self.core.ego_on_road(),
            "goal": bool(self.core.goal_reached()),
            "applied_action": action.copy(),
        }
        return self._observation(), float(reward), bool(terminated), bool(truncated), info

    def render(self):
        """The newest camera frame in RGB, before the grey conversion (None before a reset)."""
        return None if self._last_rgb is None else self._last_rgb.copy()

    def close(self) -> None:
        """Close the camera's viewer and the highway-env core."""
        self.camera.close()
        self.core.close()

    # -- harness-side state ---------------------------------------------------------------
    @property
    def command(self) -> int:
        """The navigation command of this episode (an index into the scenario's commands)."""
        return int(self.core.command)

    @property
    def max_steps(self) -> int:
        """Policy steps before the episode is truncated."""
        return int(round(self.core.config["duration"] * self.policy_hz))

    @property
    def pose(self) -> Pose | None:
        """Camera pose of the newest frame (for projecting labels onto it)."""
        return self._pose

    def ground_truth(self) -> GroundTruth:
        """Privileged state now (cached until the simulation moves)."""
        if self._truth is None:
            self._truth = self._build_truth()
        return self._truth

    def _build_truth(self) -> GroundTruth:
        ego = self.core.vehicle
        others = [vehicle_state(v) for v in self.core.road.vehicles if v is not ego]
        others += [vehicle_state(o, "obstacle") for o in self.core.road.objects]
        return GroundTruth(
            time=self.time, ego=vehicle_state(ego), others=tuple(others),
            network=self.core.road.network, route=self.route_lanes(),
            speed_limit=self.desired_speed(),
        )

    def road_prior(self) -> RoadPrior:
        """What a map-based agent may know: the road network, the ego's state and its route."""
        return RoadPrior(self.core.road.network, vehicle_state(self.core.vehicle), self.route_lanes())

    def route_lanes(self) -> tuple:
        """The route as highway-env lane indexes of any lane of each edge."""
        return tuple((a, b, None) for a, b in self.core.route_edges())  # None: keep lane id

    def desired_speed(self) -> float:
        """The cruise speed at the ego's place: the scenario's, capped by the lane's limit."""
        lane = self.core.road.network.get_lane(self.core.vehicle.lane_index)
        limit = getattr(lane, "speed_limit", None) or np.inf
        return float(min(self.core.cruise_speed(), limit))

    def left_route(self) -> bool:
        """True when a goal-directed ego took a wrong exit."""
        check = getattr(self.core, "_left_route", None)
        return bool(check()) if check else False

    def collision_bearing(self) -> float:
        """[rad] direction of the nearest other object from the ego's heading (0: dead ahead)."""
        ego = self.core.vehicle
        others = [v for v in list(self.core.road.vehicles) + list(self.core.road.objects) if v is not ego]
        if not others:
            return 0.0
        nearest = min(others, key=lambda v: float(np.linalg.norm(v.position - ego.position)))
        d = nearest.position - ego.position
        return float((np.arctan2(d[1], d[0]) - ego.heading + np.pi) % (2 * np.pi) - np.pi)

    def _reference(self) -> EpisodeReference:
        """The episode's scale, from its seed alone (the ego has not moved yet): the traffic's
        pace, and for open roads the route that pace covers in the time limit (docs/metrics.md)."""
        limit = self.max_steps / self.policy_hz
        desired, pace = self.desired_speed(), self.core.traffic_pace()
        speed = desired if pace is None else min(desired, pace)
        route = self._route_length()
        return EpisodeReference(route_length_m=route if route is not None else speed * limit,
                                reference_speed_mps=speed, time_limit_s=limit)

    def _route_length(self) -> float | None:
        """[m] from the start to the goal along the route; None for open roads."""
        if not self.spec_.goal_directed:
            return None
        net, edges = self.core.road.network, self.core.route_edges()
        start = self.core.vehicle.lane_index
        s0 = net.get_lane(start).local_coordinates(self._start_pos)[0]
        total = sum(net.get_lane((a, b, 0)).length for a, b in edges[:-1])
        goal = getattr(self.core, "GOAL_DISTANCE", 20.0)
        return float(total + goal - s0)

    # -- internals --------------------------------------------------------------------------
    def _cruise_command(self, steering: float) -> float:
        ego = vehicle_state(self.core.vehicle)
        others = self.ground_truth().others
        path = self._predicted_path(ego, steering, self.cruise.radar)
        return self.cruise.accel(ego, others, self.desired_speed(), path=path)

    def _predicted_path(self, ego: VehicleState, steering: float, radar: Radar) -> np.ndarray:
        """The ego's path as the cruise control and the TTC metric predict it: from its pose and
        the road; the steering command counts only at a crawl (sim/longitudinal.py `predicted_path`)."""
        curvature = curvature_from_steering(steering, ego.length, STEERING_RANGE)
        return predicted_path(self.core.road.network, ego, radar.distances, self.route_lanes(), curvature)

    def _colour_traffic(self) -> None:
        palette = self.look.traffic_colors
        for v in self.core.road.vehicles:
            if v is self.core.vehicle:
                v.color = EGO_COLOR
            elif not getattr(v, "_steerbench_coloured", False):
                v.color = palette[int(self._noise.integers(len(palette)))]
                v._steerbench_coloured = True

    def _capture(self) -> np.ndarray:
        rgb, self._pose = self.camera.render(self.core.vehicle)
        if self.look.brightness != 1.0 or self.look.noise_std:
            noisy = rgb.astype(np.float32) * self.look.brightness
            noisy += self._noise.normal(0.0, self.look.noise_std, size=rgb.shape[:2])[..., None]
            rgb = noisy.clip(0, 255).astype(np.uint8)
        self._last_rgb = rgb
        return rgb if self.camera_config.color else to_gray(rgb)

    def _observation(self) -> dict:
        return {
            "frames": np.stack(self._frames),
            "speed": np.array([self.core.vehicle.speed], dtype=np.float32).clip(0, 40),
            "command": self.command,
        }

    def _record(self, action: np.ndarray, reward: float) -> StepRecord:
        ego = self.core.vehicle
        net = self.core.road.network
        lane = net.get_lane(ego.lane_index)
        s, lateral = lane.local_coordinates(ego.position)
        heading_error = (ego.heading - lane.heading_at(s) + np.pi) % (2 * np.pi) - np.pi
        progress = 0.0
        edges = self.core.route_edges()
        if not edges or ego.lane_index[:2] in edges:
            progress = s - lane.local_coordinates(self._prev_pos)[0]
        self._prev_pos = ego.position.copy()
        state = vehicle_state(ego)
        others = self.ground_truth().others
        tgt = self.radar.target(state, others, path=self._predicted_path(state, action[1], self.radar))
        ttc = tgt.gap / tgt.closing_speed if tgt and tgt.closing_speed > 0.1 else float("inf")
        return StepRecord(
            time=self.time, speed=float(ego.speed), lateral_offset=float(lateral),
            heading_error=float(heading_error), lane_index=ego.lane_index,
            on_road=self.core.ego_on_road(), steering=float(action[1]), ttc=float(ttc),
            progress=float(progress), reward=reward,
            extra={"desired_speed": self.desired_speed()},
        )
