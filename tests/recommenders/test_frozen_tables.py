"""A ranking job holds one copy of its embeddings, not three.

A frozen item table is read, never written, so a model keeps the caller's tensor instead of cloning it, and the
ranking stage drops the whole embeddings table once the catalogue holds the candidates' rows (the cold-start
stage, which needs rows outside the candidates, keeps it). At 4800-d over the Onion's catalogue each copy is
1.1-1.9 GB, and the Bimodal job at that width peaked past 8 GB with them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorec.recommenders.audio_elsa import AudioELSA
from audiorec.recommenders.bert4rec import Bert4RecNet
from audiorec.recommenders.bimodal import BimodalNet
from audiorec.recommenders.options import Bert4RecOptions
from audiorec.recommenders.shallow import ShallowNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frozen_modules(table: torch.Tensor) -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    """Each module with a frozen item table, and that table as the module holds it."""
    users = torch.randn(5, table.shape[1])
    options = Bert4RecOptions(max_len=8, n_heads=1, n_layers=1)
    shallow = ShallowNet(table, users, freeze_items=True, separate_towers=False)
    bert4rec = Bert4RecNet(table, freeze_items=True, hidden=table.shape[1], options=options)
    hybrid = AudioELSA(table, factors=4)
    bimodal = BimodalNet(table, torch.randn(table.shape[0], 3), hidden=4)
    return {
        "shallow": (shallow, shallow.item_table),
        "bert4rec": (bert4rec, bert4rec.item_table),
        "hybrid": (hybrid, hybrid.embeddings),
        "bimodal": (bimodal, bimodal.content_table),
    }


@pytest.mark.parametrize("name", ["shallow", "bert4rec", "hybrid", "bimodal"])
def test_a_frozen_item_table_is_the_caller_s_tensor_and_stays_out_of_the_weights(name):
    table = torch.from_numpy(np.random.default_rng(0).standard_normal((12, 8), dtype=np.float32))
    module, held = frozen_modules(table)[name]
    assert held.data_ptr() == table.data_ptr()  # no second copy of the table
    assert not any(parameter.data_ptr() == table.data_ptr() for parameter in module.parameters())
    assert not any(tensor.data_ptr() == table.data_ptr() for tensor in module.state_dict().values())


def test_a_trainable_item_table_is_still_a_copy():
    table = torch.randn(12, 8)
    shallow = ShallowNet(table, torch.randn(5, 8), freeze_items=False, separate_towers=False)
    with torch.no_grad():
        shallow.item_table.add_(1.0)  # what an optimiser step does
    assert shallow.item_table.data_ptr() != table.data_ptr() and torch.equal(table + 1.0, shallow.item_table)


def test_the_ranking_stage_keeps_the_whole_table_only_where_asked(neural_world, tmp_path_factory):
    from neural_world import run_paths, world_files

    from audiorec.stages.recommendation import RankingInputs

    folder = world_files(tmp_path_factory, "frozen_tables")
    paths = run_paths(folder, "val")
    embeddings = folder / "embeddings.parquet"
    lean = RankingInputs.read({"kind": "knn"}, 0, paths, embeddings, shuffle=False, threads=1)
    kept = RankingInputs.read({"kind": "knn"}, 0, paths, embeddings, shuffle=False, threads=1, keep_table=True)
    assert lean.embeddings is None
    assert kept.embeddings is not None and len(kept.embeddings.vectors) >= len(kept.catalogue)
    np.testing.assert_array_equal(lean.catalogue.embeddings, kept.catalogue.embeddings)
    rows = kept.embeddings.rows(list(kept.catalogue.track_ids))
    np.testing.assert_array_equal(kept.catalogue.embeddings, kept.embeddings.vectors[rows])
