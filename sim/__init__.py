"""Scenarios, environments, camera, ground truth, metrics and the episode runner.

Importing this package registers every scenario with gymnasium (`steerbench/<name>-v0`).
"""

from .registration import env_id, register_envs

register_envs()

__all__ = ["env_id", "register_envs"]
