"""Memory of the steps that hold whole embedding tables: at the Onion's size (109k tracks × 4800-d, 2 GB) every
extra copy costs gigabytes, and a ranking job of the 4800-d backbone peaked at 9.4 GB (8 GB is the ceiling)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pyarrow.parquet as pq

from audiorec.evaluation.controls import shuffle_rows
from audiorec.storage.tables import ROW_GROUP_BYTES, embeddings_table, write_table

READ_PEAK = textwrap.dedent(
    """
    import resource, sys
    from audiorec.storage.tables import read_embeddings
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ids, vectors = read_embeddings(sys.argv[1])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("PEAK", (after - before) * 1024 / vectors.nbytes)
    """
)


def test_reading_an_embeddings_table_takes_about_its_own_size(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(6000, 4096)).astype(np.float32)  # 98 MB
    path = tmp_path / "wide.parquet"
    write_table(embeddings_table([f"t{i}" for i in range(len(vectors))], vectors), path)
    metadata = pq.ParquetFile(path).metadata
    groups = [metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)]
    assert max(groups) <= 1.1 * ROW_GROUP_BYTES, f"row groups of {groups} bytes: a reader must hold one whole"
    process = subprocess.run([sys.executable, "-c", READ_PEAK, str(path)], capture_output=True, text=True, check=True)
    peak = float(next(line for line in process.stdout.splitlines() if line.startswith("PEAK")).split()[1])
    assert peak < 1.6, f"reading took {peak:.2f}x the matrix (materialising the whole table took 4x)"


def test_the_shuffled_control_copies_its_table_once():
    vectors = np.ones((2000, 512), dtype=np.float32)
    tracemalloc.start()
    try:
        shuffled = shuffle_rows(vectors, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert shuffled.shape == vectors.shape
    assert peak < 1.2 * vectors.nbytes, f"{peak / vectors.nbytes:.2f}x the table"
