"""Names the library and the workflow share: the split tables and the probe tasks.

A module that imports nothing, so that Snakemake reads them while it builds its DAG for free.
"""

from __future__ import annotations

EVALUATION_SPLITS: tuple[str, ...] = ("val", "test")
"""The splits of the results table; their users' rankings exclude ``train`` and ``heard_before_window``."""

COLD_SPLIT = "cold_test"
"""Warm users' first listens to new releases, ranked apart (the cold-start table)."""

HEARD_BEFORE_WINDOW = "heard_before_window"
"""Pairs on train tracks that evaluation users heard only before the training window: removed from rankings."""

SPLITS: tuple[str, ...] = ("train", *EVALUATION_SPLITS, COLD_SPLIT, HEARD_BEFORE_WINDOW)
"""Split names, in the order of :meth:`audiorec.protocol.split.SplitResult.statistics` and of the files written."""

PLAYLIST_TASK = "playlist"
"""The probe task name of playlist continuation; every other probe task classifies ``labels/<task>``."""
