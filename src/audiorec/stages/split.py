"""Stage of the split rule: a listening log into train, validation, test and cold-start tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def split_dataset(interactions_path: str | Path, split_options: Mapping[str, Any], out_dir: str | Path) -> None:
    """Temporal split of a listening log into train/val/test/cold_test tables and their statistics."""
    from audiorec.protocol.split import SplitConfig, temporal_split, write_split
    from audiorec.storage.tables import scan_interactions

    interactions = scan_interactions(interactions_path)
    config = SplitConfig.from_mapping(split_options)
    result = temporal_split(interactions, config)
    write_split(result, out_dir)
    log.info("split protocol %s, statistics:\n%s", config.protocol, result.statistics())
    if config.protocol == "journal2026":  # it reads no listen before the window, so nothing is replayed
        return
    share = result.replayed / max(result.train.height, 1)
    log.info("%d train pairs (%.1f %%) replay tracks first heard before the window", result.replayed, 100 * share)
