"""Backbones and models of a config, resolved: their traits, their checked options and the runs they make.

A run is one (model, backbone, seed). Its ``backbone`` is the name the results table shows: a configured
backbone, a shuffled-embedding control ``<name>_shuffled``, a width-matched random-init reference
``<name>_width`` (:mod:`audiorec.evaluation.controls`), or :data:`NO_BACKBONE` for a model without embeddings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiorec.backbones import BACKBONES, BackboneTraits
from audiorec.common.plugins import modules_code_version
from audiorec.errors import ParameterError
from audiorec.evaluation.controls import MATCH, NO_BACKBONE, SHUFFLED_SUFFIX, WIDTH_SUFFIX, matches_width
from audiorec.plan.tuning import resolve_tuning
from audiorec.recommenders import RECOMMENDERS, ModelTraits
from audiorec.storage.published_weights import PublishedSource, resolve_backbone

WIDTH_PLACEHOLDER = 1
"""The ``item_dim`` that stands for ``match`` while options are checked (the width is known once a job runs)."""


NUMERICS = ("precision", "recipe", "short_audio")
"""Options whose resolved values, defaults included, decide a backbone's numbers and so its extraction params."""


@dataclass(frozen=True)
class BackbonePlan:
    """One entry of the config's ``backbones`` with its registry traits and validated options.

    ``options`` are the ones the backbone is built from: published weights (:mod:`audiorec.storage.published_weights`)
    already replaced by the local copy that rule ``download_weights`` fetches, whose source is ``published``.
    """

    name: str
    kind: str
    options: Mapping[str, Any]
    layer: str | int
    traits: BackboneTraits
    checked: Any
    """The options dataclass the backbone will be built from (e.g. the ``feature`` of a precomputed one)."""
    published: PublishedSource | None = None

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> BackbonePlan:
        where = f"backbones.{name}"
        kind = entry["kind"]
        traits = BACKBONES.traits(kind, where)
        if BACKBONES.is_plugin(kind) and (traits.precomputed or traits.trained_by_workflow):
            raise ParameterError(
                f"{where}: plugin kind {kind!r} declares precomputed or trained_by_workflow, which only built-in "
                "kinds can be (the workflow runs dedicated rules for them)"
            )
        options = entry.get("options") or {}
        published = None
        if _takes_weights(kind, traits):
            published, options = resolve_backbone(name, kind, options)
        checked = BACKBONES.check_options(kind, options, f"{where}.options")
        return cls(name, kind, options, entry.get("layer", "last"), traits, checked, published)

    @property
    def spec(self) -> dict[str, Any]:
        """What determines the backbone's forward pass; the layer is left out (only rule embed_gather reads it).

        With published weights, their origin and the digest of every file, which the extraction job checks
        before it loads them (a file placed by hand is verified too). A plugin kind adds its code version
        (:func:`audiorec.common.plugins.code_version`), so an edit to the plugin reruns what depends on it.
        """
        spec: dict[str, Any] = {"kind": self.kind, "options": dict(self.options)}
        # The arithmetic as resolved, defaults included: a new default precision or recipe reruns the extraction
        # it changes, where a config that leaves them out would otherwise keep vectors made the old way.
        numerics = {name: getattr(self.checked, name, None) for name in NUMERICS}
        numerics = {name: value for name, value in numerics.items() if value is not None}
        if numerics:
            spec["numerics"] = numerics
        if self.published is not None:
            spec["published"] = self.published.expected_files()
        code = BACKBONES.code_version(self.kind)
        external = getattr(self.checked, "code_modules", None)  # code a built-in kind runs from elsewhere
        if code is None and external is not None:
            code = modules_code_version(tuple(external()))
        if code is not None:
            spec["code"] = code
        return spec

    @property
    def weights_files(self) -> list[str]:
        """The local files of the backbone's published weights (none for local or random weights)."""
        return [] if self.published is None else self.published.local_files()


def _takes_weights(kind: str, traits: BackboneTraits) -> bool:
    """Pretrained kinds: a ``weights`` option that the workflow does not fill itself."""
    if traits.trained_by_workflow:
        return False
    options_class = BACKBONES.options_class(kind)
    return dataclasses.is_dataclass(options_class) and "weights" in {f.name for f in dataclasses.fields(options_class)}


@dataclass(frozen=True)
class BackboneReference:
    """A backbone a model runs on: the name of the run's ``{backbone}``, the table it reads, and whether shuffled."""

    run: str
    source: str | None
    shuffle: bool = False


@dataclass(frozen=True)
class ModelPlan:
    """One entry of the config's ``models`` with its registry traits, validated options and backbone references."""

    name: str
    kind: str
    options: Mapping[str, Any]
    traits: ModelTraits
    references: tuple[BackboneReference, ...]
    tune: Mapping[str, Any] | None = None
    """The study settings (:mod:`audiorec.plan.tuning`) of a tuned model; its runs train with the best options."""

    @property
    def spec(self) -> dict[str, Any]:
        """What determines the model's runs: kind and options, a plugin's code version (see BackbonePlan), and the
        study settings of a tuned model (a changed space or budget searches again)."""
        spec: dict[str, Any] = {"kind": self.kind, "options": dict(self.options)}
        code = RECOMMENDERS.code_version(self.kind)
        if code is not None:
            spec["code"] = code
        if self.tune is not None:
            spec["tune"] = dict(self.tune)
        return spec

    @property
    def matches_width(self) -> bool:
        """Whether this is a random-init variant trained at its backbones' widths (``item_dim: match``)."""
        return matches_width(self.options)

    def source_of(self, run_backbone: str) -> str | None:
        """The backbone whose embeddings table a run on ``run_backbone`` reads (None for a model without one)."""
        for reference in self.references:
            if reference.run == run_backbone:
                return reference.source
        raise ParameterError(f"model {self.name!r} does not run on backbone {run_backbone!r}")

    def is_shuffled(self, run_backbone: str) -> bool:
        """Whether the run on ``run_backbone`` is a shuffled-embedding control (rows permuted with its seed)."""
        return any(reference.shuffle for reference in self.references if reference.run == run_backbone)


def check_model_options(name: str, entry: Mapping[str, Any]) -> ModelTraits:
    """The traits of model ``name``, after checking its kind and options as the model's class will."""
    where = f"models.{name}"
    kind = entry["kind"]
    traits = RECOMMENDERS.traits(kind, where)
    options = dict(entry.get("options") or {})
    if matches_width(options):
        if traits.uses_embeddings or "item_dim" not in _option_names(kind):
            raise ParameterError(f"{where}: item_dim {MATCH!r} is for random-init models with an item_dim option")
        options["item_dim"] = WIDTH_PLACEHOLDER
    RECOMMENDERS.check_options(kind, options, f"{where}.options")
    return traits


def _option_names(kind: str) -> set[str]:
    return {field.name for field in dataclasses.fields(RECOMMENDERS.options_class(kind))}


def plan_models(
    models: Mapping[str, Mapping[str, Any]],
    backbones: Mapping[str, BackbonePlan],
    tuning: Mapping[str, Any] | None = None,
) -> dict[str, ModelPlan]:
    """Resolve every model; a width-matched model runs on the backbones its audio counterparts run on. ``tuning``
    is the config's block of study defaults, for the models with a ``tune`` block."""
    traits = {name: check_model_options(name, entry) for name, entry in models.items()}
    tunes = {
        name: resolve_tuning(
            f"models.{name}", entry["kind"], entry.get("tune"), tuning or {}, _option_names(entry["kind"])
        )
        for name, entry in models.items()
    }
    explicit = {
        name: _references(name, entry, backbones)
        for name, entry in models.items()
        if not matches_width(entry.get("options"))
    }
    plans = {}
    for name, entry in models.items():
        if name in explicit:
            references = explicit[name]
        else:
            audio = _audio_backbones_of_variant(entry["kind"], models, traits, explicit, backbones)
            names = entry.get("backbones") or audio
            _check_known(name, names, backbones)
            references = tuple(BackboneReference(source + WIDTH_SUFFIX, source) for source in names)
        plans[name] = ModelPlan(name, entry["kind"], entry.get("options") or {}, traits[name], references, tunes[name])
    return plans


def _references(
    name: str, entry: Mapping[str, Any], backbones: Mapping[str, BackbonePlan]
) -> tuple[BackboneReference, ...]:
    """The backbones a model names (all of them by default); an item ``{backbone, shuffle: true}`` is a control."""
    if not RECOMMENDERS.traits(entry["kind"]).uses_embeddings:
        return (BackboneReference(NO_BACKBONE, None),)
    references = []
    for item in entry.get("backbones", list(backbones)):
        source, shuffle = (item, False) if isinstance(item, str) else (item["backbone"], bool(item["shuffle"]))
        _check_known(name, [source], backbones)
        references.append(BackboneReference(source + SHUFFLED_SUFFIX if shuffle else source, source, shuffle))
    return tuple(references)


def _check_known(model: str, names: list[str], backbones: Mapping[str, BackbonePlan]) -> None:
    unknown = [name for name in names if name not in backbones]
    if unknown:
        raise ParameterError(f"models.{model} names unknown backbone(s) {unknown}; configured are {list(backbones)}")


def _audio_backbones_of_variant(
    kind: str,
    models: Mapping[str, Mapping[str, Any]],
    traits: Mapping[str, ModelTraits],
    explicit: Mapping[str, tuple[BackboneReference, ...]],
    backbones: Mapping[str, BackbonePlan],
) -> list[str]:
    """Backbones (not shuffled) of the models whose random-init variant is ``kind``, in config order."""
    names = {
        reference.source
        for model in models
        if traits[model].random_variant == kind and model in explicit
        for reference in explicit[model]
        if reference.source is not None and not reference.shuffle
    }
    return [name for name in backbones if name in names]
