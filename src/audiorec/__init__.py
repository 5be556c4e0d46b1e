"""audiorec: measure how well music audio representations serve recommendation and MIR tasks.

The library is organised by job (audio decoding, tables, datasets, backbones, extraction, split,
recommenders, metrics); the Snakemake workflow in the repository root wires these functions together.
"""

from audiorec.errors import AudioError, AudiorecError, ParameterError, SchemaError

__all__ = ["AudioError", "AudiorecError", "ParameterError", "SchemaError"]
__version__ = "0.1.0"
