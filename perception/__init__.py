"""Perception: detection types, the classical (OpenCV) detector and detection metrics."""
