"""Figures of the results: what the tables say, in a form a reader takes in at a glance.

Each function reads the workflow's own tables (never recomputes a number) and writes one figure, as PNG at the
given path and as PDF beside it, both atomically. :mod:`audiorec.reporting.figures.style` holds what they share: sizes,
fonts and one colour per backbone across every figure of a run.
"""

from audiorec.reporting.figures.layers import layer_curves
from audiorec.reporting.figures.mir import mir_scatter
from audiorec.reporting.figures.popularity import accuracy_popularity_scatter
from audiorec.reporting.figures.recommendation import recommendation_bars
from audiorec.reporting.figures.training import training_curves

__all__ = ["accuracy_popularity_scatter", "layer_curves", "mir_scatter", "recommendation_bars", "training_curves"]
