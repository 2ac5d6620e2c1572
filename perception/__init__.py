"""Perception: detectors and trackers (see the modular-agent issue)."""
