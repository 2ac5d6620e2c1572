"""Who is ahead and behind in a lane, along the lane graph (privileged, from ground truth).

highway-env's `road.neighbour_vehicles` looks at one lane segment only and misses cars just past
a segment end; this walks up to a few segments ahead and one behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from steerbench.sim.types import LaneIndex, VehicleState


@dataclass(frozen=True)
class Neighbour:
    """A vehicle ahead of or behind the ego in a lane, and the gap to it."""

    vehicle: VehicleState
    gap: float  # [m] bumper to bumper along the lane (>= 0 means no overlap)


def lane_offsets(network, lane: LaneIndex, ahead: int = 3) -> dict[LaneIndex, float]:
    """Lanes that continue `lane` (and the one before it), each with the arc length of its start."""
    offsets = {lane: 0.0}
    current, offset = lane, 0.0
    for _ in range(ahead):
        end = network.get_lane(current)
        nxt = network.next_lane(current, position=end.position(end.length, 0.0))
        if nxt == current or nxt in offsets:
            break
        offset += end.length
        offsets[nxt] = offset
        current = nxt
    start, _to, lane_id = lane
    for _from, to_dict in network.graph.items():
        lanes = to_dict.get(start)
        if lanes and lane_id < len(lanes) and (_from, start, lane_id) not in offsets:
            offsets[(_from, start, lane_id)] = -lanes[lane_id].length
    return offsets


def neighbours(
    network, lane: LaneIndex, ego: VehicleState, others: Sequence[VehicleState], reach: float = 120.0
) -> tuple[Neighbour | None, Neighbour | None]:
    """(leader, follower) of the ego if it were in `lane`."""
    offsets = lane_offsets(network, lane)
    ego_s = network.get_lane(lane).local_coordinates(ego.position)[0]
    leader = follower = None
    for other in others:
        key = other.lane_index
        if key not in offsets:
            continue
        s = network.get_lane(key).local_coordinates(other.position)[0] + offsets[key]
        ds = s - ego_s
        if abs(ds) > reach:
            continue
        gap = abs(ds) - (ego.length + other.length) / 2
        if ds >= 0 and (leader is None or gap < leader.gap):
            leader = Neighbour(other, gap)
        elif ds < 0 and (follower is None or gap < follower.gap):
            follower = Neighbour(other, gap)
    return leader, follower
