"""Losses, one per file; each docstring names its paper and equation."""
