"""The descriptors the entry points in ``pyproject.toml`` name: what audiorec needs to plan the example's kinds.

Each names its implementation and its options class as ``"module:Class"`` strings (imported only by the job that
runs the kind, and by the plan for the options) and declares the traits the workflow schedules by.
"""

from __future__ import annotations

from audiorec.backbones import BackboneTraits
from audiorec.common.registry import Registered
from audiorec.recommenders import ModelTraits

TINY_CNN = Registered(
    implementation="audiorec_example.backbone:TinyCNNBackbone",
    options="audiorec_example.options:TinyCNNOptions",
    traits=BackboneTraits(uses_gpu=True),
)
"""``kind: tiny_cnn``: extraction asks the scheduler for a GPU and runs on the CPU where there is none."""

RP3BETA = Registered(
    implementation="audiorec_example.rp3beta:RP3betaRecommender",
    options="audiorec_example.options:RP3betaOptions",
    traits=ModelTraits(),
)
"""``kind: rp3beta``: reads no embeddings, trains no epochs (it is fitted in closed form before it ranks), and its
ranking does not depend on the seed."""
