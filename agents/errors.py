"""Errors that the CLI reports in one line (kept free of heavy imports such as torch)."""


class TrainingError(ValueError):
    """A user-facing problem with training data or a checkpoint."""
