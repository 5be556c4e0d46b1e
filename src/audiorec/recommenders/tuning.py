"""A seeded, resumable hyper-parameter study: Optuna's TPE over a model's search space, within a budget.

The first trial is the configured options (the paper's settings), so a study can only improve on the untuned row
and the tuning table shows by how much. The study lives in a journal file beside its outputs: a study that is
killed resumes from its finished trials, and the seconds it already spent count against its budget. (The sampler
restarts from its seed, so the trials after an interruption may differ from those of an uninterrupted study.)
A trial that fails for a reason of the model's own (a diverging loss, an option combination the model refuses)
is recorded as failed and the study goes on; anything else stops it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiorec.errors import AudiorecError, ParameterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyRecord:
    """What a finished study tells: the best options and value, every trial, and the budget used."""

    best_params: dict[str, Any]
    best_value: float
    first_value: float | None
    trials: list[dict[str, Any]]
    seconds: float

    def best(self, metric: str) -> dict[str, Any]:
        """The contents of ``best.json``: what a tuned run trains with, and how the study got there."""
        return {
            "params": self.best_params,
            "metric": metric,
            "value": self.best_value,
            "first_trial_value": self.first_value,
            "completed_trials": sum(trial["state"] == "COMPLETE" for trial in self.trials),
            "seconds": round(self.seconds, 3),
        }


def suggest(trial: Any, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Draw one value per searched option: a choice, an integer range (both bounds integers), or a float range."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif all(isinstance(spec[bound], int) for bound in ("low", "high")) and not spec.get("log"):
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1))
        else:
            step = spec.get("step")
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=bool(spec.get("log")), step=step)
    return params


def optimise(
    objective: Callable[[dict[str, Any]], float],
    tune: Mapping[str, Any],
    first: Mapping[str, Any],
    journal: str | Path,
    description: str = "study",
) -> StudyRecord:
    """Maximise ``objective(params)`` over ``tune["space"]`` within ``tune["trials"]`` trials and
    ``tune["seconds"]`` seconds, the trials already in ``journal`` included; ``first`` is trial 0."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    sampler = optuna.samplers.TPESampler(seed=int(tune["seed"]))
    study = optuna.create_study(
        study_name=description, storage=storage, sampler=sampler, direction="maximize", load_if_exists=True
    )
    done = [trial for trial in study.trials if trial.state.is_finished()]
    if not study.trials:
        study.enqueue_trial(dict(first))
    spent = sum(_seconds(trial) for trial in done)
    remaining = int(tune["trials"]) - len(done)
    if done:
        log.info("%s: resuming after %d trials (%.1f s)", description, len(done), spent)

    def run_trial(trial: Any) -> float:
        params = suggest(trial, tune["space"])
        started = time.perf_counter()
        value = float(objective(params))
        log.info(
            "%s trial %d: %s = %.6f in %.1f s", description, trial.number, params, value, time.perf_counter() - started
        )
        return value

    if remaining > 0 and spent < tune["seconds"]:
        study.optimize(run_trial, n_trials=remaining, timeout=tune["seconds"] - spent, catch=(AudiorecError,))
    return _record(study)


def _record(study: Any) -> StudyRecord:
    trials = [
        {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "params": trial.params,
            "seconds": round(_seconds(trial), 3),
        }
        for trial in study.trials
    ]
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    if not complete:
        raise ParameterError(f"study {study.study_name}: no trial completed; see the log for each failure")
    best = max(complete, key=lambda trial: (trial.value, -trial.number))  # ties: the earliest, trial 0 first
    first = study.trials[0].value if study.trials[0].state.name == "COMPLETE" else None
    return StudyRecord(dict(best.params), float(best.value), first, trials, sum(t["seconds"] for t in trials))


def _seconds(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()
