"""Errors that the CLI reports in one line (kept free of heavy imports such as torch)."""

from steerbench.sim.errors import SteerbenchError


class TrainingError(SteerbenchError, ValueError):
    """A user-facing problem with training data or a checkpoint."""
