"""audiorec: measure how well music audio representations serve recommendation and MIR tasks.

The Snakemake workflow in the repository root wires the library's stage functions (:mod:`audiorec.stages`)
together; the library below them is a stack of packages, each with one job:

============  ==========================================================================================
package       its job
============  ==========================================================================================
common        option parsing and checks, registries, lazy exports, shared names, CPUs and devices
storage       files: Parquet table contracts, atomic writes, downloads, archives, published weights,
              training checkpoints, job logs
audio         decoding, spectrograms and windowing of audio signals
datasets      one module per dataset source, writing the workflow's tables
protocol      the evaluation protocol's data: the temporal split, (user, track) pairs, the candidate set
evaluation    ranking metrics, intervals and paired tests, controls, MIR probes, playlist continuation
ssl           the self-supervised encoders the workflow trains
backbones     the audio models, one module per family, behind a registry, and vectors a dataset ships
extraction    the extraction driver: tracks in, pooled vectors and a failures table out
recommenders  the recommenders, their trainer and exact retrieval, behind a registry
contracts     the checks every backbone and recommender kind passes, for ``audiorec check`` on a plugin
reporting     results tables, figures, the layer sweep, the MIR-versus-recommendation and SSL tables
plan          the config's meaning, decided and checked before any job runs (light: no torch)
stages        one path-level function per workflow rule: read, call the library, write atomically
cli           the same stage functions from the command line
============  ==========================================================================================

Layers
------
Every module may import :mod:`audiorec.errors` and the modules of its own package. Beyond that, a package
imports only the packages its row names, all of them on rows above it, so no import points down this list.
``tests/test_layers.py`` reads this table and fails on any other import, including an import inside a
function and a ``"module:name"`` string a registry imports later::

    common       <-
    storage      <- common
    audio        <-
    datasets     <- common, storage
    protocol     <- common, storage
    evaluation   <- common
    ssl          <- common, storage, audio
    backbones    <- common, storage, audio, datasets, ssl
    extraction   <- storage, audio, backbones
    recommenders <- common, storage, evaluation
    contracts    <- datasets, protocol, backbones, extraction, recommenders
    reporting    <- common, storage, evaluation, ssl, recommenders
    plan         <- common, storage, datasets, protocol, evaluation, backbones, recommenders
    stages       <- common, storage, audio, datasets, protocol, evaluation, ssl, backbones, extraction,
                    recommenders, reporting, plan
    cli          <- common, storage, contracts, stages, plan

The workflow's scripts import only :mod:`audiorec.stages` and :mod:`audiorec.storage.logs` (they are thin
adapters); its rule files only the light parts that describe a plan (:mod:`audiorec.plan`, :mod:`audiorec.common`,
the dataset and model registries).
"""

from audiorec.errors import AudioError, AudiorecError, ParameterError, SchemaError

__all__ = ["AudioError", "AudiorecError", "ParameterError", "SchemaError"]
__version__ = "0.1.0"
