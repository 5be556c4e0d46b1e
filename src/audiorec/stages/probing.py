"""Stages of the probe rules: MIR probes of a backbone's embeddings and the tables that collect them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_embeddings, read_table

log = logging.getLogger(__name__)


def probe(
    task: str,
    embeddings_path: str | Path,
    task_table_path: str | Path,
    options: Mapping[str, Any],
    out_path: str | Path,
    *,
    excluded_path: str | Path | None = None,
) -> None:
    """Probe a backbone's embeddings on one task and write the result as JSON.

    ``task`` is :data:`audiorec.common.names.PLAYLIST_TASK` (``task_table_path`` is the playlists table; tracks listed
    in ``excluded_path`` leave the catalogue) or a label task (``task_table_path`` is its labels table).
    ``options`` is the config's ``probes`` block.
    """
    import json

    from audiorec.common.names import PLAYLIST_TASK

    track_ids, vectors = read_embeddings(embeddings_path)
    if task == PLAYLIST_TASK:
        from audiorec.common.config import dataclass_from_mapping
        from audiorec.evaluation.playlists import ContinuationProtocol, probe_playlists

        protocol = dataclass_from_mapping(ContinuationProtocol, options.get("playlist"), "probes.playlist")
        excluded = read_table(excluded_path).get_column("track_id").to_list() if excluded_path is not None else []
        result = probe_playlists(track_ids, vectors, read_table(task_table_path, "playlists"), excluded, protocol)
    else:
        from audiorec.evaluation.probes import DEFAULT_CS, probe_labels

        result = probe_labels(
            track_ids,
            vectors,
            read_table(task_table_path, "labels"),
            options.get("C", DEFAULT_CS),
            max_iter=options.get("max_iter", 5000),
            seed=options.get("seed", 0),
        )
    payload = {"task": task, "dim": int(vectors.shape[1]), **result}
    log.info("%s probe: %s", task, json.dumps(payload))
    write_text_atomic(json.dumps(payload, indent=2) + "\n", out_path)


def probe_table(results: Sequence[Mapping[str, Any]], csv_path: str | Path, markdown_path: str | Path) -> None:
    """Collect probe results into the MIR table (CSV and Markdown), one row per backbone.

    Each element of ``results`` names a probe JSON (``path``) and its ``task`` and ``backbone``.
    """
    import json

    from audiorec.reporting.report import probe_markdown, probe_summary

    summary = probe_summary(
        [{**json.loads(Path(r["path"]).read_text()), "task": r["task"], "backbone": r["backbone"]} for r in results]
    )
    write_text_atomic(summary.write_csv(float_precision=6), csv_path)
    write_text_atomic(probe_markdown(summary), markdown_path)


def ssl_summary(
    probes_path: str | Path,
    encoders: Mapping[str, Mapping[str, Any] | None],
    csv_path: str | Path,
    markdown_path: str | Path,
) -> None:
    """The self-supervised encoders' probe results in the layout of Choi et al. (2022), Table 3.

    ``encoders`` maps each backbone to show to its ssl options, or to None for a baseline (see
    :func:`audiorec.reporting.ssl_table.ssl_table`).
    """
    from audiorec.reporting.ssl_table import ssl_markdown, ssl_table

    table = ssl_table(pl.read_csv(probes_path), encoders)
    write_text_atomic(table.write_csv(float_precision=6), csv_path)
    write_text_atomic(ssl_markdown(table), markdown_path)


def mir_versus_recommendation(
    probes_path: str | Path,
    recommendation_path: str | Path,
    metric: str,
    csv_path: str | Path,
    correlations_path: str | Path,
    markdown_path: str | Path,
    scatter_path: str | Path,
) -> None:
    """Write the MIR-versus-recommendation table, Spearman correlations and scatter.

    See :mod:`audiorec.reporting.mir_vs_recs`.
    """
    from audiorec.reporting.figures import mir_scatter
    from audiorec.reporting.mir_vs_recs import mir_vs_recs, mir_vs_recs_markdown

    table, correlations = mir_vs_recs(pl.read_csv(probes_path), pl.read_csv(recommendation_path), metric)
    write_text_atomic(table.write_csv(float_precision=6), csv_path)
    write_text_atomic(correlations.write_csv(float_precision=6), correlations_path)
    write_text_atomic(mir_vs_recs_markdown(table, correlations, "test"), markdown_path)
    mir_scatter(table, correlations, scatter_path)
