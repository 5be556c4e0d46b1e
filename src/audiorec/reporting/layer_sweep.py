"""Which hidden layer of a backbone serves recommendation best: one training-free model scored on every layer.

Pretrained encoders carry different information at different depths (MERT's and MusicFM's middle layers beat
their last on many MIR tasks), so the first paper's choice of a single layer per backbone leaves a question open.
Extraction keeps every layer in the shards, so a sweep costs no forward pass: each layer becomes a catalogue,
the model ranks it for the evaluation users, and the per-user metrics give a mean with its 95 % t interval.
Only models without a training step run in a sweep; training a network per layer is a separate experiment
(configure a backbone per layer instead). The workflow scores the sweep on the validation split: picking a layer
is model selection, and the test split must not take part in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import evaluate_recommendations
from audiorec.evaluation.significance import COMPARED_METRICS
from audiorec.evaluation.stats import t_confidence_interval
from audiorec.recommenders import Catalogue, TrainData, TrainedRecommender, recommendations_frame, recommender_class
from audiorec.recommenders.base import fit_on_every_user


def sweep_layers(
    track_ids: Sequence[str],
    per_layer: Mapping[str, np.ndarray],
    train: pl.DataFrame,
    truth: pl.DataFrame,
    model_spec: Mapping[str, Any],
    ks: Sequence[int],
    seed: int = 0,
    level: float = 0.95,
    *,
    heard_before: pl.DataFrame | None = None,
    candidates: Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row per layer (in the backbone's order): ``layer_index``, ``layer``, ``dim``, ``n_users``, and every
    HitRate / Recall / NDCG at every K with its ``ci_low`` / ``ci_high``.

    ``train``, ``truth`` and ``heard_before`` follow the split contract; the users of ``truth`` are ranked, each
    without what they heard in ``train`` and ``heard_before``. Only ``candidates`` (default: every track of the
    shards) are ranked.
    """
    model_class = recommender_class(model_spec["kind"])
    if issubclass(model_class, TrainedRecommender) or not model_class.uses_embeddings:
        raise ParameterError(
            f"a layer sweep needs a model that ranks by embeddings without training; {model_spec['kind']!r} is not one"
        )
    users = sorted(truth.get_column("user_id").unique().to_list())
    keep = np.ones(len(track_ids), dtype=bool)
    if candidates is not None:
        keep = np.isin(np.asarray(track_ids, dtype=object).astype(str), np.asarray(list(candidates), dtype=str))
        if keep.sum() < len(candidates):
            raise ParameterError(f"{len(candidates) - int(keep.sum())} candidate tracks are missing from the shards")
    kept_ids = [track for track, kept in zip(track_ids, keep, strict=True) if kept]
    rows = []
    model = model_class.from_options(dict(model_spec.get("options") or {}), seed)
    for index, (name, vectors) in enumerate(per_layer.items()):
        catalogue = Catalogue.from_tracks(kept_ids, vectors[keep])
        fit_on_every_user(model, catalogue, train, heard_before)
        data = TrainData.build(train, catalogue, users, heard_before)
        scores, items = model.recommend(catalogue, data, max(ks))
        metrics = evaluate_recommendations(recommendations_frame(data.user_ids, catalogue, scores, items), truth, ks)
        row: dict[str, object] = {"layer_index": index, "layer": name, "dim": int(vectors.shape[1])}
        row["n_users"] = metrics.height
        for metric in (m for m in metrics.columns if m.split("@")[0] in COMPARED_METRICS):
            row[metric], row[f"{metric} ci_low"], row[f"{metric} ci_high"] = t_confidence_interval(
                metrics.get_column(metric).to_numpy(), level
            )
        rows.append(row)
    return pl.from_dicts(rows)
