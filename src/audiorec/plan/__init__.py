"""What a config will run, decided before anything runs: the workflow's middle layer, testable without Snakemake.

``Plan.from_config(config)`` resolves the (schema-validated) config: datasets and the tables their sources
write, backbones with their registry traits, models with the backbones they run on (shuffled controls and
width-matched references included), every (model, backbone, seed) run, the probes, the cold-start rows and the
final targets. :meth:`Plan.check` raises :class:`~audiorec.errors.ParameterError` for everything that can be
known before a job runs, every backbone's and model's options included. ``workflow/rules/common.smk`` keeps only
this object, wildcard constraints and the input functions that need Snakemake's checkpoints.

Nothing here imports torch, librosa or a model module: traits and options classes come from the registries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiorec.common.config import canonical_json
from audiorec.common.names import COLD_SPLIT, EVALUATION_SPLITS, HEARD_BEFORE_WINDOW, PLAYLIST_TASK
from audiorec.errors import DatasetError, ParameterError
from audiorec.evaluation.controls import SHUFFLED_SUFFIX
from audiorec.plan import paths
from audiorec.plan.datasets import DatasetPlan
from audiorec.plan.models import BackbonePlan, BackboneReference, ModelPlan, plan_models
from audiorec.plan.tuning import study_backbone
from audiorec.recommenders.retrieval_options import RetrievalOptions
from audiorec.storage.published_weights import PublishedSource

RUN_SPLITS = ("train", HEARD_BEFORE_WINDOW)
"""Split tables every run reads: what it learns from, and what its users heard before the training window."""


@dataclass(frozen=True)
class Run:
    """One row source of the results table: a model on a backbone.

    Models that read no embeddings run on :data:`~audiorec.evaluation.controls.NO_BACKBONE`.
    """

    model: str
    backbone: str
    seed: int

    def path(self, pattern: str, dataset: str, **wildcards: Any) -> str:
        """``pattern`` (from :mod:`audiorec.plan.paths`) filled for this run of ``dataset``."""
        return pattern.format(dataset=dataset, model=self.model, backbone=self.backbone, seed=self.seed, **wildcards)


class Plan:
    """The resolved config (see the module docstring); built once per Snakemake invocation."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.datasets = {name: DatasetPlan.from_entry(name, entry) for name, entry in config["datasets"].items()}
        self.backbones = {name: BackbonePlan.from_entry(name, entry) for name, entry in config["backbones"].items()}
        self.models: dict[str, ModelPlan] = plan_models(config["models"], self.backbones, config.get("tuning"))
        self.seeds = [int(seed) for seed in config["seeds"]]
        self.evaluation = config["evaluation"]
        self.probes = config["probes"]
        self.retrieval = RetrievalOptions.from_config(config.get("retrieval"))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Plan:
        return cls(config)

    # Backbones --------------------------------------------------------------------------------------------------

    def precomputed_backbones(self) -> list[str]:
        return [name for name, backbone in self.backbones.items() if backbone.traits.precomputed]

    def precomputed_spec(self, name: str) -> dict[str, Any]:
        """What rule embed_precomputed is told of a precomputed backbone: its spec and, for a user's file, its layer.

        A user's file holds every layer and has no gather step, so the layer is chosen as its embeddings table is
        written, and changing it must rebuild that table; a dataset's feature has one vector per track, and its
        spec is left as it was, so the tables already built from one are not rebuilt.
        """
        backbone = self.backbones[name]
        if backbone.checked.path is None:
            return backbone.spec
        return backbone.spec | {"layer": backbone.layer}

    def extracted_backbones(self) -> list[str]:
        """Backbones whose vectors the workflow computes from audio (rule embed_gather)."""
        return [name for name, backbone in self.backbones.items() if not backbone.traits.precomputed]

    def trained_backbones(self) -> list[str]:
        """Backbones whose weights the workflow trains itself (rule ssl_train)."""
        return [name for name, backbone in self.backbones.items() if backbone.traits.trained_by_workflow]

    def published_sources(self) -> dict[str, PublishedSource]:
        """Every published weights source some backbone reads, by name (rule ``download_weights`` fetches them)."""
        return {b.published.name: b.published for b in self.backbones.values() if b.published is not None}

    def control_backbones(self) -> list[str]:
        """Run backbone names of every shuffled-embedding control and width-matched reference."""
        return sorted({ref.run for ref in self.references() if ref.source is not None and ref.run != ref.source})

    def run_backbones(self) -> list[str]:
        """Every value the ``{backbone}`` wildcard of a run may take."""
        return sorted({ref.run for ref in self.references()} | set(self.backbones))

    def shards(self, n_tracks: int) -> range:
        """The extraction shards of a catalogue of ``n_tracks`` tracks (at least one, even for an empty one)."""
        return range(max(1, math.ceil(n_tracks / self.config["embed"]["shard_size"])))

    def references(self) -> list[BackboneReference]:
        return [reference for model in self.models.values() for reference in model.references]

    def recommendation_backbones(self) -> list[str]:
        """Backbones some model reads: together they decide the candidate set (:mod:`audiorec.protocol.candidates`)."""
        return sorted({ref.source for ref in self.references() if ref.source is not None})

    def swept_backbones(self) -> list[str]:
        return list(self.config["layer_sweep"].get("backbones", []))

    def layer_sweep_model(self) -> dict[str, Any]:
        """The spec of the model that ranks every layer of the swept backbones."""
        return self.models[self.config["layer_sweep"]["model"]].spec

    def diversity_backbone(self) -> str | None:
        """The backbone whose embeddings measure every row's intra-list diversity: one space for all rows, so that
        rows of different backbones compare (``evaluation.diversity_backbone``, by default the baseline backbone).
        None, and no ILD, when it is left to a baseline that is not a configured backbone."""
        name = self.evaluation.get("diversity_backbone")
        if name is None:
            baseline = self.evaluation.get("baseline_backbone")
            return baseline if baseline in self.backbones else None
        if name not in self.backbones:
            raise ParameterError(f"evaluation.diversity_backbone {name!r} is not a configured backbone")
        return name

    def ssl_table_encoders(self) -> dict[str, Any]:
        """Rows of the ssl table: the baseline backbone (options None), then every trained backbone's options."""
        baseline = self.evaluation["baseline_backbone"]
        rows: dict[str, Any] = {baseline: None} if baseline in self.backbones else {}
        return rows | {name: dict(self.backbones[name].options) for name in self.trained_backbones()}

    # Models and runs --------------------------------------------------------------------------------------------

    def tuned_models(self) -> list[str]:
        return [name for name, model in self.models.items() if model.tune is not None]

    def studies(self) -> list[tuple[str, str]]:
        """Every (model, backbone) a study tunes: each run backbone of a tuned model, a shuffled control sharing
        the study of its real embeddings (:func:`audiorec.plan.tuning.study_backbone`)."""
        found = {
            (name, study_backbone(ref.run)) for name in self.tuned_models() for ref in self.models[name].references
        }
        return sorted(found)

    def tuning_path(self, model: str, backbone: str) -> str | None:
        """The ``best.json`` pattern (``{dataset}`` left open) a run of ``model`` on ``backbone`` trains with, or
        None for an untuned model."""
        if self.models[model].tune is None:
            return None
        return paths.TUNING_BEST.replace("{model}", model).replace("{backbone}", study_backbone(backbone))

    def trained_models(self) -> list[str]:
        return [name for name, model in self.models.items() if model.traits.trained]

    def runs(self, models: list[str] | None = None) -> list[Run]:
        """Every (model, backbone, seed) of the results table; a deterministic model runs with the first seed."""
        return [
            Run(name, reference.run, seed)
            for name, model in self.models.items()
            if models is None or name in models
            for reference in model.references
            for seed in (self.seeds[:1] if model.traits.deterministic else self.seeds)
        ]

    def retrieval_param(self, model: str) -> str | None:
        """What a ranking job of ``model`` is told of the ``retrieval`` setting: the settings that matter to it, as
        canonical JSON, for a model that ranks by inner product; None for the others (they rank exactly), so
        that changing the setting reruns the ranking jobs it reaches and no other job."""
        if not self.models[model].traits.ranks_by_inner_product:
            return None
        return canonical_json(self.retrieval.recorded())

    def run_splits(self, model: str) -> list[str]:
        """Split tables a run of ``model`` reads (a trained model also early-stops on val)."""
        return [*RUN_SPLITS, "val"] if self.models[model].traits.trained else list(RUN_SPLITS)

    def new_item_models(self) -> list[str]:
        """Models that can rank tracks nobody heard in train (the cold-start table's rows)."""
        return [name for name, model in self.models.items() if model.traits.ranks_unseen_items]

    def wants_cold_start_table(self) -> bool:
        return bool(self.evaluation["cold_ks"]) and bool(self.new_item_models())

    def random_variants(self) -> dict[str, list[str]]:
        """Model name → the models that are its random-init variant (by registry kind, not by name)."""
        return {
            name: [other for other, variant in self.models.items() if variant.kind == model.traits.random_variant]
            for name, model in self.models.items()
        }

    def significance_tests(self, against_chance: bool = False) -> dict[str, Any]:
        """What rules aggregate and cold_start test each row against (:mod:`audiorec.evaluation.significance`).

        The cold-start table also tests every row against the chance ranking, since whether a representation
        orders unheard tracks better than chance is exactly what it asks.
        """
        chance = [name for name, model in self.models.items() if model.traits.is_chance]
        return {
            "random_variants": self.random_variants(),
            "baseline_backbone": self.evaluation["baseline_backbone"],
            "shuffled_suffix": SHUFFLED_SUFFIX,
            "alpha": self.evaluation["alpha"],
            "chance_model": chance[0] if against_chance and chance else None,
        }

    def scored_runs(
        self, dataset: str, splits: tuple[str, ...] = EVALUATION_SPLITS, models: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every (split, model, backbone, seed) row source of a dataset's results table (of ``models`` only, if
        given), with the ranked lists it is scored from (``rankings``: the run's recommendations, or its ranking of
        new releases for the cold split) and the held-out split they are scored against (``truth``). What rules
        aggregate and cold_start read, and pass on to name each run's rows."""
        return [
            {
                **vars(run),
                "split": split,
                "rankings": run.path(paths.NEW_ITEMS if split == COLD_SPLIT else paths.RECOMMENDATIONS, dataset),
                "truth": paths.SPLIT.format(dataset=dataset, split=split),
            }
            for run in self.runs(models)
            for split in splits
        ]

    def cold_start_runs(self, dataset: str) -> list[dict[str, Any]]:
        """The new-release rankings of the models that rank new releases, scored on the cold split (rule
        cold_start)."""
        return self.scored_runs(dataset, (COLD_SPLIT,), self.new_item_models())

    def training_runs(self, dataset: str) -> list[dict[str, Any]]:
        """Every trained run of a dataset with the path of its per-epoch training log."""
        return [
            {**vars(run), "training_log": run.path(paths.TRAINING_LOG, dataset)}
            for run in self.runs(self.trained_models())
        ]

    # Probes -----------------------------------------------------------------------------------------------------

    @staticmethod
    def probe_table(task: str) -> str:
        """The data table a probe task reads."""
        return "playlists" if task == PLAYLIST_TASK else f"labels/{task}"

    def probe_tasks(self, dataset: str) -> list[str]:
        """Configured probe tasks the dataset has the table for."""
        return [task for task in self.probes["tasks"] if self.datasets[dataset].has(self.probe_table(task))]

    def probe_results(self, dataset: str) -> list[dict[str, str]]:
        """Every (task, backbone) probe result of a dataset, with its path."""
        return [
            {
                "task": task,
                "backbone": backbone,
                "path": paths.PROBE.format(dataset=dataset, task=task, backbone=backbone),
            }
            for backbone in self.probes.get("backbones", list(self.backbones))
            for task in self.probe_tasks(dataset)
        ]

    def probe_options(self, task: str) -> dict[str, Any]:
        """The probe settings a task uses, so changing one task's settings reruns only that task."""
        if task == PLAYLIST_TASK:
            return {"playlist": self.probes["playlist"]}
        return {name: self.probes[name] for name in ("C", "max_iter", "seed")}

    # Targets ----------------------------------------------------------------------------------------------------

    def final_targets(self) -> list[str]:
        """Tables and figures of every dataset; embeddings alone for a dataset without a listening log.

        Published weights come first: the extraction jobs that read them are known only once a dataset's tracks
        are (a checkpoint), and a run should fetch, and show it fetches, every file up front.
        """
        targets = [path for source in self.published_sources().values() for path in source.local_files()]
        for name, dataset in self.datasets.items():
            probed = bool(self.probe_tasks(name))
            wanted = [paths.PROBES_CSV, paths.PROBES_MD] if probed else []
            if dataset.has_log:
                wanted += [paths.RECOMMENDATION_CSV, paths.RECOMMENDATION_MD, paths.RECOMMENDATION_FIGURE]
                wanted += [paths.MIR_VS_RECS_MD] if probed else []
                wanted += [paths.COLD_START_MD] if self.wants_cold_start_table() else []
                wanted += [paths.LAYERS_FIGURE] if self.swept_backbones() else []
            else:
                wanted += [paths.EMBEDDINGS.replace("{backbone}", backbone) for backbone in self.backbones]
            wanted += [paths.SSL_MD] if probed and self.trained_backbones() else []
            wanted += [paths.TUNING_MD, paths.TUNING_FIGURE] if dataset.has_log and self.studies() else []
            targets += [pattern.format(dataset=name) for pattern in wanted]
        return targets

    # Checks -----------------------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`ParameterError` for anything in the config that cannot work, before any job runs.

        Kinds and options were checked while the plan was built; this checks how the parts fit together.
        """
        clash = sorted(set(self.control_backbones()) & set(self.backbones))
        if clash:
            raise ParameterError(
                f"backbone name(s) {clash} are taken by shuffled-embedding controls or width-matched references"
            )
        for dataset in self.datasets.values():
            dataset.check()
            for backbone in self.precomputed_backbones():
                feature = self.backbones[backbone].checked.feature
                if feature is not None:
                    dataset.check_feature(backbone, feature)
            if self.trained_backbones() and not dataset.holds_out_tracks:
                raise ParameterError(
                    f"datasets.{dataset.name} has neither label splits nor a listening log, so the ssl backbone(s) "
                    f"{self.trained_backbones()} cannot be trained on it without hearing its test tracks"
                )
        self.check_user_vectors()
        self.check_layer_sweep()
        if any(model.traits.ranks_by_inner_product for model in self.models.values()):
            self.retrieval.check_installed()
        unknown = sorted(set(self.probes.get("backbones", [])) - set(self.backbones))
        if unknown:
            raise ParameterError(f"probes.backbones names unknown backbone(s) {unknown}")

    def check_user_vectors(self) -> None:
        """A precomputed backbone's own file must exist, and its layout (the Parquet footer: no vector is read)
        must hold a track_id column and float vector columns, one of which its ``layer`` selects."""
        users = [name for name in self.precomputed_backbones() if self.backbones[name].checked.path is not None]
        if not users:
            return
        from audiorec.backbones.user_vectors import vector_file  # pyarrow, only for a config that needs it

        for name in users:
            backbone = self.backbones[name]
            try:
                vector_file(backbone.checked.path).layer_columns(backbone.layer)
            except (DatasetError, ParameterError) as error:
                raise ParameterError(f"backbones.{name}.options.path: {error}") from error

    def check_layer_sweep(self) -> None:
        """The swept backbones must be extracted here; the sweeping model must read embeddings and train nothing."""
        unknown = [name for name in self.swept_backbones() if name not in self.extracted_backbones()]
        if unknown:
            raise ParameterError(f"layer_sweep.backbones {unknown} are not backbones extracted by this workflow")
        if not self.swept_backbones():
            return
        name = self.config["layer_sweep"]["model"]
        if name not in self.models or not self.models[name].traits.sweeps_layers:
            raise ParameterError(
                f"layer_sweep.model {name!r} must name a configured model that reads embeddings without training"
            )


__all__ = ["Plan", "Run", "paths"]
