"""Pretraining: the loop that drives any registered method, with checkpoints and resume."""
