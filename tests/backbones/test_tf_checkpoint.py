"""The numpy reader of TensorFlow checkpoints, on checkpoints written in the test (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest
from tf_checkpoint_writer import entry_proto, write_checkpoint

from audiorec.backbones.tf_checkpoint import TFCheckpoint
from audiorec.errors import ParameterError


def sample_tensors(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Names that share long prefixes (as TensorFlow's do), several dtypes, a scalar and an empty tensor."""
    return {
        "batch_normalization/beta": rng.normal(size=3).astype(np.float32),
        "batch_normalization/beta/Adam": rng.normal(size=3).astype(np.float32),
        "batch_normalization_1/moving_variance": rng.random(5).astype(np.float64),
        "conv2d/kernel": rng.normal(size=(7, 38, 1, 4)).astype(np.float32),
        "conv2d_1/kernel": rng.normal(size=(2, 3)).astype(np.float16),
        "global_step": np.array(123456789012, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "empty": np.zeros((0, 4), np.float32),
    }


def test_reads_back_every_tensor_across_several_blocks(tmp_path, rng):
    tensors = sample_tensors(rng)
    write_checkpoint(tmp_path / "model.ckpt", tensors, records_per_block=3)
    checkpoint = TFCheckpoint(tmp_path / "model.ckpt")
    assert set(checkpoint.entries) == set(tensors)
    assert checkpoint.num_shards == 1
    for name, expected in tensors.items():
        got = checkpoint.tensor(name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)


def test_folder_with_empty_prefix_as_the_musicnn_wheel_ships_it(tmp_path, rng):
    folder = tmp_path / "MSD_musicnn"
    folder.mkdir()
    write_checkpoint(f"{folder}/", {"dense/bias": np.arange(4, dtype=np.float32)})
    assert (folder / ".index").is_file()
    np.testing.assert_array_equal(TFCheckpoint(folder).tensor("dense/bias"), np.arange(4, dtype=np.float32))


def test_unreadable_checkpoints_fail_naming_the_file(tmp_path, rng):
    with pytest.raises(ParameterError, match=r"absent\.index does not exist"):
        TFCheckpoint(tmp_path / "absent")
    (tmp_path / "junk.index").write_bytes(b"not a table" * 10)
    with pytest.raises(ParameterError, match=r"junk\.index is not a TensorFlow checkpoint index"):
        TFCheckpoint(tmp_path / "junk")
    write_checkpoint(tmp_path / "big", {"x": np.ones(2, np.float32)}, big_endian=True)
    with pytest.raises(ParameterError, match="big-endian"):
        TFCheckpoint(tmp_path / "big")


def test_bad_tensors_fail_when_read_and_name_the_tensor(tmp_path):
    extra = {
        "partitioned": entry_proto(1, (4,), 0, 16, sliced=True),
        "strings": entry_proto(7, (2,), 0, 8),
        "wrong_size": entry_proto(1, (3,), 0, 16),
        "beyond_end": entry_proto(1, (8,), 8, 32),
    }
    write_checkpoint(tmp_path / "m", {"ok": np.ones(4, np.float32)}, extra_records=extra)
    checkpoint = TFCheckpoint(tmp_path / "m")
    np.testing.assert_array_equal(checkpoint.tensor("ok"), np.ones(4, np.float32))
    with pytest.raises(ParameterError, match=r"'partitioned'.*partitioned"):
        checkpoint.tensor("partitioned")
    with pytest.raises(ParameterError, match=r"'strings'.*unsupported TensorFlow dtype 7"):
        checkpoint.tensor("strings")
    with pytest.raises(ParameterError, match=r"'wrong_size'.*16 bytes do not hold shape \(3,\)"):
        checkpoint.tensor("wrong_size")
    with pytest.raises(ParameterError, match=r"truncated.*'beyond_end'"):
        checkpoint.tensor("beyond_end")
    with pytest.raises(ParameterError, match="'nothing' is not in checkpoint"):
        checkpoint.tensor("nothing")
