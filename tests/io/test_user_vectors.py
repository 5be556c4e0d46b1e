"""A researcher's own vector file as a ``precomputed`` backbone: what it must hold, how a layer is chosen, what the
tables record, and what the plan refuses before any job runs."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from snakemake.utils import validate

from audiorec.backbones.precomputed import PrecomputedBackbone
from audiorec.backbones.user_vectors import read_user_vectors
from audiorec.errors import DatasetError, ParameterError
from audiorec.plan import Plan
from audiorec.storage.tables import read_embeddings, read_metadata, read_table, write_table

REPO = Path(__file__).resolve().parents[2]
TRACKS = ["t1", "t2", "t3", "t4"]
EARLY = np.arange(12, dtype=np.float32).reshape(4, 3)
LATE = -np.arange(12, dtype=np.float64).reshape(4, 3) / 7


def fixed(rows: np.ndarray) -> pa.Array:
    """A fixed-size list column of float32 vectors."""
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1), type=pa.float32()), rows.shape[1])


def write_parquet(path: Path, columns: dict[str, pa.Array | list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def good_file(path: Path) -> Path:
    """Two layers (``early``, fixed-size float32; ``late``, float64 lists) for t1..t3 and the unknown id ``x9``."""
    ids = ["t3", "x9", "t1", "t2"]  # not in the tracks table's order, one unknown
    return write_parquet(
        path,
        {
            "track_id": ids,
            "early": fixed(EARLY),
            "late": pa.array(LATE.tolist(), type=pa.list_(pa.float64())),
        },
    )


@pytest.fixture
def tracks(tmp_path: Path) -> Path:
    path = tmp_path / "tracks.parquet"
    write_table(
        pl.DataFrame({"track_id": TRACKS, "audio_path": [f"{t}.flac" for t in TRACKS], "duration_s": [3.0] * 4}),
        path,
        kind="tracks",
    )
    return path


def embed(file: Path, tracks: Path, layer: str | int = "last") -> tuple[int, Path]:
    """Run the backbone on ``file`` as rule embed_precomputed does; the number of tracks with a vector, the table."""
    out = tracks.parent / "mine.parquet"
    written = PrecomputedBackbone.from_options({"path": str(file)}).write_embeddings(
        "mine", "demo", {}, tracks, out, tracks.parent / "mine.failures.parquet", layer
    )
    return written, out


# -- bad files ---------------------------------------------------------------------------------------------------


def _vectors(rows: list) -> pa.Array:
    return pa.array(rows, type=pa.list_(pa.float32()))


BAD_FILES = {
    "no track id column": (
        {"id": ["t1"], "emb": _vectors([[1.0]])},
        r"no track_id column; its columns are \['id', 'emb'\]",
    ),
    "track ids that are not text": (
        {"track_id": [1, 2], "emb": _vectors([[1.0], [2.0]])},
        "column track_id has type int64; track ids must be text",
    ),
    "no vector column": ({"track_id": ["t1", "t2"]}, "no vector column besides track_id"),
    "a vector column of integers": (
        {"track_id": ["t1"], "emb": pa.array([[1, 2]], type=pa.list_(pa.int64())), "title": ["a song"]},
        r"2 column\(s\) are not vectors of floats: emb \(list<\w+: int64>\), title \(string\)",
    ),
    "mixed widths": (
        {"track_id": ["t1", "t2", "t3", "t4"], "emb": _vectors([[1.0, 2.0], [1.0, 2.0], [3.0], [4.0, 5.0]])},
        r"column 'emb' mixes vector widths \(1 of width 1, 3 of width 2\); e.g. track ids \['t3'\] differ",
    ),
    "empty vectors": ({"track_id": ["t1"], "emb": _vectors([[]])}, r"column 'emb' holds empty vectors \(width 0\)"),
    "NaN and infinite values": (
        {"track_id": ["t1", "t2", "t3"], "emb": _vectors([[1.0, math.nan], [1.0, 2.0], [math.inf, 0.0]])},
        r"column 'emb' has NaN, infinite or missing values in 2 of 3 vectors, e.g. track ids \['t1', 't3'\]",
    ),
    "missing values inside a vector": (
        {"track_id": ["t1", "t2"], "emb": _vectors([[1.0, None], [1.0, 2.0]])},
        r"NaN, infinite or missing values in 1 of 2 vectors, e.g. track ids \['t1'\]",
    ),
    "values beyond float32": (
        {"track_id": ["t1"], "emb": pa.array([[1e300]], type=pa.list_(pa.float64()))},
        r"NaN, infinite or missing values in 1 of 1 vectors, e.g. track ids \['t1'\]",
    ),
    "duplicate track ids": (
        {"track_id": ["t1", "t2", "t1", "t3", "t2", "t1"], "emb": _vectors([[float(i)] for i in range(6)])},
        r"2 track ids appear more than once \(3 extra rows\), e.g. \['t1', 't2'\]; give each track one row",
    ),
    "null vectors": (
        {"track_id": ["t1", "t2", "t3"], "emb": _vectors([[1.0], None, None])},
        r"column 'emb' has 2 null vectors of 3, e.g. track ids \['t2', 't3'\]",
    ),
    "null track ids": (
        {"track_id": ["t1", None, "t3"], "emb": _vectors([[1.0], [2.0], [3.0]])},
        r"1 of 3 rows have a null track_id, e.g. rows \[1\]",
    ),
    "no rows": ({"track_id": pa.array([], pa.string()), "emb": _vectors([])}, "the file holds no rows"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_naming_the_file_and_the_problem(tmp_path: Path, tracks: Path, case: str) -> None:
    columns, problem = BAD_FILES[case]
    file = write_parquet(tmp_path / "my_vectors.parquet", columns)
    with pytest.raises(DatasetError, match=re.escape(str(file)) + ".*" + problem):
        embed(file, tracks)
    assert not (tmp_path / "mine.parquet").exists()


def test_a_missing_file_or_one_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.parquet"
    with pytest.raises(DatasetError, match=re.escape(f"{missing}: no such file")):
        read_user_vectors(missing, "last")
    text = tmp_path / "vectors.csv"
    text.write_text("track_id,x\nt1,1.0\n")
    with pytest.raises(DatasetError, match=re.escape(f"{text}: cannot read it as a Parquet file")):
        read_user_vectors(text, "last")


@pytest.mark.parametrize(
    ("layer", "problem"),
    [
        (2, r"layer 2 is out of range for its 2 vector column\(s\) \['early', 'late'\]"),
        ("middle", r"layer must be 'last', 'mean', an index or one of its vector columns \['early', 'late'\]"),
    ],
)
def test_a_layer_the_file_does_not_have_is_refused(tmp_path: Path, layer: str | int, problem: str) -> None:
    file = good_file(tmp_path / "my_vectors.parquet")
    with pytest.raises(ParameterError, match=re.escape(str(file)) + ": " + problem):
        read_user_vectors(file, layer)


def test_the_mean_of_layers_of_different_widths_is_refused(tmp_path: Path) -> None:
    file = write_parquet(
        tmp_path / "my_vectors.parquet", {"track_id": ["t1"], "a": _vectors([[1.0]]), "b": _vectors([[1.0, 2.0]])}
    )
    with pytest.raises(ParameterError, match=re.escape(str(file)) + ": layer 'mean' needs layers of one size"):
        read_user_vectors(file, "mean")


# -- a good file -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "columns", "expected"),
    [
        ("last", ["late"], LATE),
        (-1, ["late"], LATE),
        (0, ["early"], EARLY),
        ("early", ["early"], EARLY),
        ("mean", ["early", "late"], (EARLY + LATE) / 2),
    ],
)
def test_the_layer_picks_a_column_and_tracks_follow_the_tracks_table(
    tmp_path: Path, tracks: Path, layer: str | int, columns: list[str], expected: np.ndarray
) -> None:
    file = good_file(tmp_path / "my_vectors.parquet")
    written, table = embed(file, tracks, layer)
    track_ids, vectors = read_embeddings(table)
    assert written == 3 and track_ids == ["t1", "t2", "t3"]
    rows = [2, 3, 0]  # t1, t2, t3 in the file's order
    np.testing.assert_allclose(vectors, expected[rows].astype(np.float32), rtol=1e-6)
    metadata = read_metadata(table)
    assert metadata["layer"] == layer and metadata["columns"] == columns and metadata["dim"] == 3


def test_metadata_records_the_file_its_digest_the_backbone_and_unknown_ids(tmp_path: Path, tracks: Path) -> None:
    file = good_file(tmp_path / "my_vectors.parquet")
    _, table = embed(file, tracks)
    metadata = read_metadata(table)
    assert metadata["path"] == str(file)
    assert metadata["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert (metadata["backbone"], metadata["backbone_kind"]) == ("mine", "precomputed")
    assert metadata["unknown_track_ids"] == 1 and metadata["unknown_track_id_examples"] == ["x9"]
    assert metadata["dropped"] == {"vector rows: track not in the tracks table": 1}


def test_tracks_without_a_vector_go_to_the_failures_table_naming_the_file(tmp_path: Path, tracks: Path) -> None:
    file = good_file(tmp_path / "my_vectors.parquet")
    embed(file, tracks)
    failures = read_table(tmp_path / "mine.failures.parquet", "failures")
    assert failures.select("track_id", "audio_path", "error").rows() == [
        ("t4", "t4.flac", f"no vector for this track in {file}")
    ]


# -- the plan ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_config() -> dict:
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))  # fills the schema's defaults, as the Snakefile does
    return config


def with_backbone(config: dict, options: dict, layer: str | int = "last") -> dict:
    config["backbones"]["mine"] = {"kind": "precomputed", "options": options, "layer": layer}
    return config


def test_the_plan_runs_a_user_file_as_a_backbone_and_tells_the_rule_its_layer(tmp_path: Path, tiny_config) -> None:
    file = good_file(tmp_path / "my_vectors.parquet")
    plan = Plan.from_config(with_backbone(tiny_config, {"path": str(file)}, "early"))
    plan.check()
    assert plan.precomputed_backbones() == ["mine"] and "mine" not in plan.extracted_backbones()
    assert plan.precomputed_spec("mine") == {"kind": "precomputed", "options": {"path": str(file)}, "layer": "early"}
    assert "mine" in {run.backbone for run in plan.runs(["knn"])}


EXACTLY_ONE = r"backbones.mine.options: backbone precomputed takes exactly one of the options feature .* and path .*; "


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "x.parquet", "feature": "mfcc_stats"}, EXACTLY_ONE + "got both"),
        ({}, EXACTLY_ONE + "got neither"),
        ({"path": ""}, "backbones.mine.options: backbone precomputed option path must be a non-empty string"),
    ],
)
def test_path_and_feature_together_or_neither_fail_when_the_plan_is_built(tiny_config, options, message) -> None:
    with pytest.raises(ParameterError, match=message):
        Plan.from_config(with_backbone(tiny_config, options))


@pytest.mark.parametrize(
    ("columns", "layer", "problem"),
    [
        (None, "last", "no such file"),
        ({"id": ["t1"], "emb": _vectors([[1.0]])}, "last", "no track_id column"),
        ({"track_id": ["t1"], "emb": _vectors([[1.0]])}, 3, "layer 3 is out of range"),
    ],
)
def test_the_plan_check_refuses_a_missing_or_bad_file(tmp_path: Path, tiny_config, columns, layer, problem) -> None:
    file = tmp_path / "my_vectors.parquet"
    if columns is not None:
        write_parquet(file, columns)
    plan = Plan.from_config(with_backbone(tiny_config, {"path": str(file)}, layer))
    with pytest.raises(ParameterError, match=re.escape(f"backbones.mine.options.path: {file}") + ".*" + problem):
        plan.check()
