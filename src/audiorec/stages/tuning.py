"""Stages of the tune rules: one study per (dataset, model, backbone) on the validation split, and the tuning table.

A study reads the train split (what models learn from), the validation split (what they are scored on, and what
trained models early-stop on), what the users heard before the training window and the candidate set; it is
never given the test split, which only the tuned run's ranking reads, once, for the tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.common.config import canonical_json
from audiorec.errors import ParameterError
from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table

log = logging.getLogger(__name__)

STUDY_SPLITS = ("train", "val", "heard_before_window", "uncovered")
"""The only tables a study reads (the embeddings table aside)."""


def tune(
    model_spec: Mapping[str, Any],
    split_paths: Mapping[str, str | Path],
    embeddings_path: str | Path | None,
    best_path: str | Path,
    trials_path: str | Path,
    *,
    threads: int | None = None,
) -> None:
    """Search ``model_spec["tune"]["space"]`` for the options that maximise its metric on the validation users.

    Each trial builds the model with the configured options and the trial's over them, fits it as its run would
    (a trained model with early stopping on validation, no checkpoint), ranks the validation users' candidate
    set and scores it. Writes the best options (``best.json``) and every trial (``trials.csv``); the study's
    journal beside them makes an interrupted study resume.
    """
    from audiorec.evaluation.metrics import evaluate_recommendations
    from audiorec.plan.tuning import first_trial, parse_metric
    from audiorec.recommenders import (
        RECOMMENDERS,
        FittedRecommender,
        TrainData,
        TrainedRecommender,
        recommendations_frame,
    )
    from audiorec.recommenders.contract import check_ranking
    from audiorec.recommenders.runs import fitting_data
    from audiorec.recommenders.tuning import optimise
    from audiorec.stages.recommendation import RankingInputs, build_model

    if set(split_paths) != set(STUDY_SPLITS):
        raise ParameterError(f"a study reads exactly the tables {list(STUDY_SPLITS)}; got {sorted(split_paths)}")
    settings = model_spec["tune"]
    metric, k = parse_metric(settings["metric"])
    seed = int(settings["seed"])
    base = {key: value for key, value in model_spec.items() if key != "tune"}
    run = RankingInputs.read(base, seed, split_paths, embeddings_path, shuffle=False, threads=threads)
    validation = read_table(split_paths["val"], "split")
    fit_train, fit_validation = fitting_data(run.train, validation, run.catalogue, run.heard_before)
    users = sorted(validation.get_column("user_id").unique().to_list())
    ranked = TrainData.build(run.train, run.catalogue, users, run.heard_before)

    def objective(params: dict[str, Any]) -> float:
        spec = {**base, "options": {**dict(base.get("options") or {}), **params}}
        model = build_model(spec, seed, threads, embeddings_path)
        if isinstance(model, TrainedRecommender):
            model.fit(run.catalogue, fit_train, fit_validation, None)
        if isinstance(model, FittedRecommender):  # every train user's pairs, indexed once for all trials
            model.fit(run.catalogue, fit_train)
        scores, items = model.recommend(run.catalogue, ranked, k)
        check_ranking(model.kind, ranked.user_ids, ranked.excluded, scores, items, k)
        frame = recommendations_frame(ranked.user_ids, run.catalogue, scores, items)
        return float(evaluate_recommendations(frame, validation, [k]).get_column(metric).mean())

    options_class = RECOMMENDERS.options_class(model_spec["kind"])
    first = first_trial(settings["space"], base.get("options") or {}, options_class)
    journal = Path(best_path).with_name(f"study-{_digest(model_spec)}.journal")
    record = optimise(objective, settings, first, journal, description=f"{model_spec['kind']} study")
    write_text_atomic(json.dumps(record.best(metric), indent=2, sort_keys=True) + "\n", best_path)
    trials = pl.DataFrame(
        [{**trial, "params": json.dumps(trial["params"], sort_keys=True)} for trial in record.trials],
        schema={
            "number": pl.Int64,
            "state": pl.String,
            "value": pl.Float64,
            "params": pl.String,
            "seconds": pl.Float64,
        },
    )
    write_text_atomic(trials.write_csv(float_precision=6), trials_path)
    log.info("best %s = %.6f with %s (trial 0: %s)", metric, record.best_value, record.best_params, record.first_value)


def _digest(model_spec: Mapping[str, Any]) -> str:
    """Names a study's journal: a changed model, space, metric or seed starts a new study rather than mixing
    trials of different searches; a changed budget (trials, seconds) continues the same study."""
    budget = ("trials", "seconds")
    search = {**model_spec, "tune": {k: v for k, v in model_spec["tune"].items() if k not in budget}}
    return hashlib.sha256(canonical_json(search).encode()).hexdigest()[:16]


def tuning_table(
    studies: Sequence[Mapping[str, Any]], csv_path: str | Path, markdown_path: str | Path, figure_path: str | Path
) -> None:
    """One row per study (model, backbone): the best options, the best validation value and the first trial's
    (the configured options), trials and seconds; and the value of every trial with the best so far."""
    from audiorec.reporting.tuning import tuning_figure, tuning_markdown

    rows, curves = [], {}
    for study in studies:
        best = json.loads(Path(study["best"]).read_text())
        rows.append(
            {
                "model": study["model"],
                "backbone": study["backbone"],
                "metric": best["metric"],
                "untuned_value": best["first_trial_value"],
                "best_value": best["value"],
                "best_params": json.dumps(best["params"], sort_keys=True),
                "completed_trials": best["completed_trials"],
                "seconds": best["seconds"],
            }
        )
        curves[(study["model"], study["backbone"])] = pl.read_csv(study["trials"])
    table = pl.DataFrame(rows)
    write_text_atomic(table.write_csv(float_precision=6), csv_path)
    write_text_atomic(tuning_markdown(table), markdown_path)
    tuning_figure(curves, figure_path)
