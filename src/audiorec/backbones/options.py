"""Options of every backbone kind, in a module that imports no model code.

The workflow validates each backbone's ``options`` against these dataclasses while it builds its DAG (see
:mod:`audiorec.plan`), before any job runs and without importing torch or librosa; the backbones build
themselves from the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiorec.audio.windows import check_short_audio, refuse_short_audio
from audiorec.common.validation import check_positive
from audiorec.errors import ParameterError

PRECISIONS = ("float32", "tf32", "bf16", "fp16")
"""Values of a torch backbone's ``precision`` option (:mod:`audiorec.backbones.precision` applies them)."""


def check_precision(value: object, where: str) -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else a :class:`ParameterError` naming ``where``."""
    if value not in PRECISIONS:
        raise ParameterError(f"{where} option precision must be one of {list(PRECISIONS)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class MFCCConfig:
    """Every hyper-parameter of the MFCC backbone."""

    sample_rate: int = 22050
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    max_duration_s: float | None = 30.0
    short_audio: None = None
    """Not a policy MFCC has: it summarises a track of any length (the option is refused with a reason)."""

    def __post_init__(self) -> None:
        refuse_short_audio(self.short_audio, "backbone mfcc")
        for name in ("sample_rate", "n_mfcc", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ParameterError(f"mfcc option {name} must be positive, got {getattr(self, name)}")
        if self.n_mfcc > self.n_mels:
            raise ParameterError(f"mfcc option n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")

    @property
    def dim(self) -> int:
        """Mean plus upper-triangular covariance."""
        return self.n_mfcc + self.n_mfcc * (self.n_mfcc + 1) // 2


MODELS = ("MSD_musicnn", "MTT_musicnn")
"""Checkpoints of the musicnn wheel this port loads (the VGG baselines there are other networks)."""


@dataclass(frozen=True)
class MusiCNNConfig:
    """Options of the ``musicnn`` backbone.

    Attributes
    ----------
    model
        ``MSD_musicnn`` (Million Song Dataset tags, the first paper's choice) or ``MTT_musicnn``
        (MagnaTagATune tags).
    weights
        A TensorFlow checkpoint (its prefix, or a folder holding ``.index`` and ``.data-00000-of-00001``) or a
        torch state dict of the port (``.pt``, ``.safetensors``). None takes the checkpoint of ``model`` from
        the installed ``musicnn`` package.
    max_duration_s
        Crop tracks to their first seconds before patching (None reads them whole).
    pad_last_patch
        False (the default, as the original ``musicnn`` extractor) averages whole 3-s patches only: the
        track's last frames that do not fill a patch are dropped. True zero-pads a last partial patch holding
        at least half a patch and averages it in.
    short_audio
        A track shorter than one patch: ``skip`` (the default, as the original extractor, which cannot embed
        it) records it in the failures table as "shorter than one patch (3 s)"; ``pad`` zero-pads its
        waveform to one patch and counts it in the embeddings' metadata.
    device
        ``cpu``, ``cuda``, ``cuda:N``, or None / ``auto`` for the GPU when one is visible.
    precision
        Arithmetic on a GPU (:data:`PRECISIONS`): ``float32`` (the default, as the original runs it) keeps the
        port's parity with the published model.
    """

    model: str = "MSD_musicnn"
    weights: str | None = None
    max_duration_s: float | None = 30.0
    pad_last_patch: bool = False
    short_audio: str = "skip"
    device: str | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ParameterError(f"backbone musicnn option model must be one of {list(MODELS)}, got {self.model!r}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ParameterError(f"backbone musicnn option max_duration_s must be positive, got {self.max_duration_s}")
        if not isinstance(self.pad_last_patch, bool):
            raise ParameterError(
                f"backbone musicnn option pad_last_patch must be true or false, got {self.pad_last_patch!r}"
            )
        check_short_audio(self.short_audio, "backbone musicnn")
        check_precision(self.precision, "backbone musicnn")


@dataclass(frozen=True)
class PretrainedOptions:
    """Options every pretrained backbone takes (families add their own fields).

    Attributes
    ----------
    size
        A shipped architecture (``{family}-{size}.json`` in ``resources/backbones/``) or a path to a JSON
        file of the same layout.
    weights
        Local checkpoint file or Hugging Face-format directory; ``None`` keeps a random initialisation.
    clip_seconds
        Length of the windows a track is cut into; ``None`` takes the family's pre-training context.
    max_duration_s
        Tracks are cropped to this many seconds before windowing (the first paper used 30 s clips).
    device
        ``cpu``, ``cuda``, ``cuda:1``…; ``None`` picks the GPU when there is one.
    precision
        Arithmetic on a GPU, one of :data:`PRECISIONS`. ``float32`` (IEEE, TF32 off), the default, is how the
        first paper's extraction code runs MERT, Music2Vec, MusicFM, MuQ and EncodecMAE; ``tf32``, ``bf16``
        and ``fp16`` are faster and drift from it (:mod:`audiorec.backbones.precision`).
    short_audio
        Refused: these models read a window of any length (a short track is one short window), so no
        short-track policy applies.
    """

    size: str
    weights: str | None = None
    clip_seconds: float | None = None
    max_duration_s: float | None = 30.0
    device: str | None = None
    precision: str = "float32"
    short_audio: None = None

    def __post_init__(self) -> None:
        refuse_short_audio(self.short_audio, "backbone")
        for name in ("clip_seconds", "max_duration_s"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, (bool, str)) or not value > 0):
                raise ParameterError(f"option {name} must be positive, got {value!r}")
        check_precision(self.precision, "backbone")


@dataclass(frozen=True)
class WaveformTransformerOptions(PretrainedOptions):
    """Options of MERT and Music2Vec; ``normalize_waveform`` ``None`` follows the shipped config."""

    normalize_waveform: bool | None = None


@dataclass(frozen=True)
class MusicFMOptions(PretrainedOptions):
    """Options of MusicFM; ``stats`` names shipped normalisation statistics (``msd``) or a stats JSON path."""

    stats: str = "msd"


@dataclass(frozen=True)
class MuQOptions(PretrainedOptions):
    """Options of MuQ; ``stats`` ``None`` takes the release's own statistics (else the shipped ``msd`` set)."""

    stats: str | None = None


@dataclass(frozen=True)
class MuQMuLanOptions(PretrainedOptions):
    """Options of MuQ-MuLan; ``stats`` normalises MuQ's log-mels: the shipped ``msd`` set (that of
    OpenMuQ/MuQ-large-msd-iter, the audio tower's origin), a stats JSON or a MuQ release's ``config.json``."""

    stats: str = "msd"


@dataclass(frozen=True)
class JukeboxOptions(PretrainedOptions):
    """Options of Jukebox (``size`` ``5b``; ``clip_seconds`` ``None`` reads JukeMIR's first 25 s of each track).

    ``weights`` is the folder of the published ``vqvae.pth.tar`` and ``prior_level_2.pth.tar`` or the
    safetensors file converted from them. A folder is converted once, to ``converted`` (default: a file in
    that folder, see :mod:`audiorec.backbones.jukebox_weights`), which later runs read instead.

    ``recipe`` names the published extraction whose defaults apply (:data:`JUKEBOX_RECIPES`): ``jukemirlib``
    (the default), the first paper's call ``jukemirlib.extract(fpath, fp16=True, layers=[36], duration=24)``,
    reads a track's first 24 s, divides them by their peak and runs the prior's residual stream and dense
    weights in float16; ``jukemir``, JukeMIR's own extraction, divides the whole track by its peak, runs the
    prior in float32 and refuses a track shorter than the context (8192 codes, 23.78 s). ``precision`` and
    ``max_duration_s`` left at ``recipe`` take the recipe's; set either to depart from it (e.g. ``precision:
    bf16, max_duration_s: 30`` for bfloat16 autocast, peak over the first 30 s).
    """

    max_duration_s: float | str | None = "recipe"  # type: ignore[assignment]
    precision: str = "recipe"
    converted: str | None = None
    recipe: str = "jukemirlib"

    def __post_init__(self) -> None:
        if self.recipe not in JUKEBOX_RECIPES:
            raise ParameterError(
                f"backbone jukebox option recipe must be one of {list(JUKEBOX_RECIPES)}, got {self.recipe!r}"
            )
        for name, value in JUKEBOX_RECIPES[self.recipe].items():
            if getattr(self, name) == "recipe":
                object.__setattr__(self, name, value)
        super().__post_init__()


JUKEBOX_RECIPES: dict[str, dict[str, str | float | None]] = {
    "jukemirlib": {"precision": "fp16", "max_duration_s": 24.0},
    "jukemir": {"precision": "float32", "max_duration_s": None},
}
"""What each Jukebox recipe sets where the options leave ``recipe``: the first paper's jukemirlib call, JukeMIR's."""


MULE_POOLINGS = ("mean", "sum")
"""How ``mule`` pools its slices: the mean (``mule_embedding_average.yml``) or the sum (the journal's script)."""


@dataclass(frozen=True)
class MuleOptions:
    """Options of the ``mule`` backbone (:mod:`audiorec.backbones.mule`).

    Attributes
    ----------
    size
        ``f0``, the published SF-NFNet-F0 (``resources/backbones/mule-f0.json``), ``tiny`` for tests, or a path
        to a JSON file of the same layout.
    weights
        The released ``model.keras`` (or a folder of its ``config.json`` and ``model.weights.h5``), a torch state
        dict of the port, or None for a seeded random initialisation.
    pooling
        ``mean`` over the track's 3-s slices (the original's "average" config) or ``sum`` (what the journal's
        extraction script stored, ``TimelineAverage._data``).
    max_duration_s
        Crop tracks to their first seconds (None reads them whole).
    short_audio
        A track whose log-mel is shorter than one 300-frame slice (under 2.99 s): ``skip`` (the default; the
        original cuts no proper slice from it) records it in the failures table as "shorter than one slice
        (3 s)"; ``pad`` appends silence up to one slice and counts it in the embeddings' metadata.
    device
        ``cpu``, ``cuda``, ``cuda:N``, or None / ``auto`` for the GPU when one is visible.
    precision
        Arithmetic on a GPU (:data:`PRECISIONS`): ``float32`` (the default) keeps the port's parity with the
        original; the others are faster and drift from it.
    """

    size: str
    weights: str | None = None
    pooling: str = "mean"
    max_duration_s: float | None = 30.0
    short_audio: str = "skip"
    device: str | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.size, str) or not self.size:
            raise ParameterError(f"backbone mule option size must be a shipped size or a .json path, got {self.size!r}")
        if self.pooling not in MULE_POOLINGS:
            raise ParameterError(
                f"backbone mule option pooling must be one of {list(MULE_POOLINGS)}, got {self.pooling!r}"
            )
        if self.max_duration_s is not None:
            check_positive("max_duration_s", self.max_duration_s, where="backbone mule")
        check_short_audio(self.short_audio, "backbone mule")
        check_precision(self.precision, "backbone mule")


@dataclass(frozen=True)
class PrecomputedOptions:
    """Options of a ``precomputed`` backbone: exactly one of ``feature`` and ``path``.

    Attributes
    ----------
    feature
        A feature the dataset's source ships (Music4All-Onion's ``mfcc_stats``, a synthetic world's generated
        ones); every dataset of the config must provide it.
    path
        A Parquet file of the researcher's own vectors: a ``track_id`` column and one vector column per layer
        (:mod:`audiorec.backbones.user_vectors`). It serves every dataset of the config, each taking the vectors
        of its own tracks; a relative path is relative to the folder the workflow runs in.
    """

    feature: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        # Both would leave it to the code which one wins, and neither gives nothing to read.
        if (self.feature is None) == (self.path is None):
            given = "both" if self.feature is not None else "neither"
            raise ParameterError(
                "backbone precomputed takes exactly one of the options feature (a feature the dataset ships) and "
                f"path (a Parquet file of your own vectors); got {given}"
            )
        for name in ("feature", "path"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ParameterError(f"backbone precomputed option {name} must be a non-empty string, got {value!r}")


HEAR_EMBEDDINGS = ("scene", "timestamp_mean")
"""What a ``hear`` backbone keeps of a model: its scene embedding, or the mean of its timestamp embeddings."""


@dataclass(frozen=True)
class HearOptions:
    """Options of the ``hear`` backbone, which runs any module following the HEAR 2021 API.

    Only the module's name is checked here: importing it would load the model's own dependencies while the
    workflow plans, so whether it imports and follows the API is checked when the backbone is built.

    Attributes
    ----------
    module
        Importable name of the module that provides ``load_model``, ``get_scene_embeddings`` and
        ``get_timestamp_embeddings`` (e.g. ``hearbaseline.wav2vec2``).
    weights
        Model file passed to ``load_model``; empty for models that need none (``load_model`` is then called
        without an argument, so the module's own default applies).
    embedding
        ``scene`` (one ``get_scene_embeddings`` vector per track) or ``timestamp_mean`` (the mean over the
        track's ``get_timestamp_embeddings`` frames).
    max_duration_s
        Crop tracks to their first seconds (None reads them whole).
    device
        ``cpu``, ``cuda``, ``cuda:N``, or None / ``auto`` for the GPU when one is visible.
    """

    module: str
    weights: str = ""
    embedding: str = "scene"
    max_duration_s: float | None = 30.0
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.module, str) or not all(part.isidentifier() for part in self.module.split(".")):
            raise ParameterError(f"backbone hear option module must be a dotted module name, got {self.module!r}")
        if not isinstance(self.weights, str):
            raise ParameterError(f"backbone hear option weights must be a file path or empty, got {self.weights!r}")
        if self.embedding not in HEAR_EMBEDDINGS:
            raise ParameterError(
                f"backbone hear option embedding must be one of {list(HEAR_EMBEDDINGS)}, got {self.embedding!r}"
            )
        if self.max_duration_s is not None:
            check_positive("max_duration_s", self.max_duration_s, where="backbone hear")

    def code_modules(self) -> list[str]:
        """The module whose code makes the vectors: its version and source digest enter the extraction jobs'
        parameters (:func:`audiorec.common.plugins.code_version`), so updating it reruns this backbone."""
        return [self.module]
