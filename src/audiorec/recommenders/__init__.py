"""Recommender registry: config ``kind`` → traits, options and implementation, imported only when chosen.

Neural models pull in torch, so the registry names implementations as strings (:mod:`audiorec.common.registry`) and
this package's re-exports are imported on first use (:mod:`audiorec.common.lazy`): the workflow reads the traits and
checks the options of every configured model while it builds its DAG without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from audiorec.common.lazy import lazy_exports
from audiorec.common.registry import PluginHooks, Registered, Registry
from audiorec.errors import ParameterError


@dataclass(frozen=True)
class ModelTraits:
    """What the workflow needs to know of a model kind to schedule and report its runs.

    Attributes
    ----------
    trained
        The model has a training step (rule ``train_recommender``: early stopping on val, a checkpoint and a
        training log); its class derives from :class:`~audiorec.recommenders.base.TrainedRecommender`.
    uses_gpu
        A run asks the scheduler for a GPU.
    uses_embeddings
        The model reads a backbone's embeddings table, so it runs once per backbone it names.
    deterministic
        Its rankings do not depend on the seed, so it runs with the first seed only.
    ranks_unseen_items
        It can score tracks nobody heard in train, so it enters the cold-start table: true of models that score
        a track from its content (an audio embedding), and of the random ranking, that table's chance reference.
        Not of the random-init networks: a new track's trainable row never received a gradient as a positive
        (the Shallow Net's is still its random init, BERT4Rec's only met gradients as a softmax negative).
    random_variant
        Kind of the same network with randomly initialised item embeddings: the reference each of its rows is
        tested against (the first paper's random-init rows).
    is_chance
        Its ranking is chance; the cold-start table tests every row against it.
    ranks_by_inner_product
        It ranks by ``user · item`` (:class:`~audiorec.recommenders.inner_product.InnerProductScoring`), so the
        ``retrieval`` setting (exact or a FAISS index) reaches its ranking jobs.
    """

    trained: bool = False
    uses_gpu: bool = False
    uses_embeddings: bool = False
    deterministic: bool = True
    ranks_unseen_items: bool = False
    random_variant: str | None = None
    is_chance: bool = False
    ranks_by_inner_product: bool = False

    @property
    def sweeps_layers(self) -> bool:
        """Whether the model can rank every hidden layer of a backbone: it reads embeddings and trains nothing."""
        return self.uses_embeddings and not self.trained


_OPTIONS = "audiorec.recommenders.options"


def _network(random_variant: str | None) -> ModelTraits:
    """Traits of a trained network: on frozen audio embeddings if it has a random-init variant, else random-init
    (which reads no embeddings and cannot rank new tracks, see :attr:`ModelTraits.ranks_unseen_items`)."""
    audio = random_variant is not None
    return ModelTraits(
        trained=True,
        uses_gpu=True,
        uses_embeddings=audio,
        deterministic=False,
        ranks_unseen_items=audio,
        random_variant=random_variant,
        ranks_by_inner_product=True,
    )


_BIMODAL = ModelTraits(
    trained=True, uses_gpu=True, uses_embeddings=True, deterministic=False, ranks_by_inner_product=True
)
"""Traits of the Bimodal kinds: trained on a backbone's embeddings, without a random-init variant."""


def _plugin_traits(cls: type) -> ModelTraits:
    """The traits a plugin model class declares as class attributes (ModelTraits' defaults where it declares
    none); ``trained`` follows its base class, as for built-in models."""
    from audiorec.recommenders.base import TrainedRecommender

    declared = {field.name: getattr(cls, field.name, field.default) for field in dataclasses.fields(ModelTraits)}
    return ModelTraits(**(declared | {"trained": isinstance(cls, type) and issubclass(cls, TrainedRecommender)}))


def _prepare_plugin(cls: type, kind: str, traits: ModelTraits) -> None:
    """Check a plugin model class against its traits and give it what built-in classes get from the registry."""
    from audiorec.recommenders.base import Recommender, TrainedRecommender

    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ParameterError(f"model kind {kind!r}: {cls!r} is not a subclass of audiorec.recommenders.Recommender")
    if traits.trained != issubclass(cls, TrainedRecommender):
        raise ParameterError(
            f"model kind {kind!r}: trait trained={traits.trained} contradicts {cls.__name__}'s base class"
        )
    if "kind" not in vars(cls):  # its own name, not one inherited from the class it extends
        cls.kind = kind
    for name, value in vars(traits).items():
        setattr(cls, name, value)


RECOMMENDERS: Registry[ModelTraits] = Registry(
    "model",
    {
        "knn": Registered(
            "audiorec.recommenders.knn:KNNRecommender",
            f"{_OPTIONS}:KNNConfig",
            ModelTraits(uses_embeddings=True, ranks_unseen_items=True, ranks_by_inner_product=True),
        ),
        "popularity": Registered(
            "audiorec.recommenders.baselines:PopularityRecommender", f"{_OPTIONS}:NoOptions", ModelTraits()
        ),
        "random": Registered(
            "audiorec.recommenders.baselines:RandomRecommender",
            f"{_OPTIONS}:NoOptions",
            ModelTraits(deterministic=False, ranks_unseen_items=True, is_chance=True),
        ),
        "shallow": Registered(
            "audiorec.recommenders.shallow:ShallowNetRecommender",
            f"{_OPTIONS}:ShallowNetOptions",
            _network("shallow_random"),
        ),
        "shallow_random": Registered(
            "audiorec.recommenders.shallow:RandomShallowNetRecommender",
            f"{_OPTIONS}:RandomShallowNetOptions",
            _network(None),
        ),
        "bert4rec": Registered(
            "audiorec.recommenders.bert4rec:Bert4RecRecommender",
            f"{_OPTIONS}:Bert4RecOptions",
            _network("bert4rec_random"),
        ),
        "bert4rec_random": Registered(
            "audiorec.recommenders.bert4rec:RandomBert4RecRecommender",
            f"{_OPTIONS}:RandomBert4RecOptions",
            _network(None),
        ),
        "ease": Registered("audiorec.recommenders.ease:EASERecommender", f"{_OPTIONS}:EASEOptions", ModelTraits()),
        "itemknn": Registered(
            "audiorec.recommenders.item_knn:ItemKNNRecommender", f"{_OPTIONS}:ItemKNNOptions", ModelTraits()
        ),
        # Seeded random initialisation: rankings depend on the seed, so they run once per seed.
        "ials": Registered(
            "audiorec.recommenders.ials:IALSRecommender",
            f"{_OPTIONS}:IALSOptions",
            ModelTraits(deterministic=False, ranks_by_inner_product=True),
        ),
        "cf_hybrid": Registered(
            "audiorec.recommenders.hybrid:CFHybridRecommender",
            f"{_OPTIONS}:CFHybridOptions",
            ModelTraits(
                uses_embeddings=True, deterministic=False, ranks_unseen_items=True, ranks_by_inner_product=True
            ),
        ),
        # ELSA (journal version of Tamm & Aljanaki): trained on the interactions alone, no audio, no new items.
        "elsa": Registered(
            "audiorec.recommenders.elsa:ELSARecommender",
            f"{_OPTIONS}:ELSAOptions",
            ModelTraits(trained=True, uses_gpu=True, deterministic=False, ranks_by_inner_product=True),
        ),
        # The journal's Hybrid: ELSA's item factors from audio, so it ranks new releases (unlike cf_hybrid's iALS
        # map, it is trained end to end on the users' rows).
        "hybrid": Registered(
            "audiorec.recommenders.audio_elsa:AudioELSARecommender",
            f"{_OPTIONS}:AudioELSAOptions",
            ModelTraits(
                trained=True,
                uses_gpu=True,
                uses_embeddings=True,
                deterministic=False,
                ranks_unseen_items=True,
                ranks_by_inner_product=True,
            ),
        ),
        # The journal version's Bimodal net, one kind per scoring of the same trained towers: only the audio
        # tower's space scores new releases (audiorec.recommenders.bimodal).
        "bimodal_content": Registered(
            "audiorec.recommenders.bimodal:BimodalContentRecommender",
            f"{_OPTIONS}:BimodalOptions",
            dataclasses.replace(_BIMODAL, ranks_unseen_items=True),
        ),
        "bimodal_collaborative": Registered(
            "audiorec.recommenders.bimodal:BimodalCollaborativeRecommender", f"{_OPTIONS}:BimodalOptions", _BIMODAL
        ),
        "bimodal_average": Registered(
            "audiorec.recommenders.bimodal:BimodalAverageRecommender", f"{_OPTIONS}:BimodalOptions", _BIMODAL
        ),
    },
    plugins=PluginHooks("audiorec.recommenders", _plugin_traits, _prepare_plugin),
)
"""Every built-in model kind; a config's ``kind`` is one of these or a plugin (:mod:`audiorec.common.plugins`)."""


def recommender_class(kind: str) -> type:
    """Import and return the class registered for ``kind`` (a :class:`~audiorec.recommenders.base.Recommender`)."""
    return RECOMMENDERS.load(kind)


_BASE = "audiorec.recommenders.base"
_EXPORTS = {
    name: _BASE
    for name in (
        "Catalogue",
        "FittedRecommender",
        "Recommender",
        "RunFiles",
        "TrainData",
        "TrainedRecommender",
        "recommendations_frame",
    )
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["RECOMMENDERS", "ModelTraits", "recommender_class", *sorted(_EXPORTS)]
