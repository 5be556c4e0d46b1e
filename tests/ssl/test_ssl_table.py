"""The self-supervised encoders' table in the layout of Choi et al. (2022), Table 3."""

from __future__ import annotations

import polars as pl

from audiorec.reporting.ssl_table import ssl_markdown, ssl_table

ENCODERS = {
    "cpc": {"loss": "cpc"},
    "random_multi": {"loss": "multi", "positive": "random"},
    "adjacent_infonce": {"loss": "infonce", "positive": "adjacent"},
    "mfcc": None,
    "self_multi": {"loss": "multi", "positive": "self"},
    "self_infonce": {"loss": "infonce", "positive": "self"},
    "not_probed": {"loss": "infonce", "positive": "random"},
}


def probes() -> pl.DataFrame:
    backbones = ["mfcc", "self_infonce", "self_multi", "adjacent_infonce", "random_multi", "cpc", "unlisted"]
    return pl.DataFrame(
        {
            "backbone": backbones,
            "dim": [104, 256, 1280, 256, 1280, 512, 8],  # what the probes read: mean and std over segments
            "genre SVM": [0.40, 0.41, 0.37, 0.47, 0.44, 0.48, 0.9],
            "genre LR": [0.40, 0.42, 0.41, 0.46, 0.46, 0.49, 0.9],
            "playlist HR@10": [0.20, 0.25, 0.24, 0.28, 0.26, 0.28, 0.9],
            "playlist MPR": [0.38, 0.34, 0.35, 0.32, 0.33, 0.316, 0.1],
            "playlist full NDCG@10": [0.1] * 7,
        }
    )


def test_rows_follow_the_papers_order_and_names_and_keep_the_probe_values():
    table = ssl_table(probes(), ENCODERS)
    assert table.select("feature", "loss", "backbone").rows() == [
        ("MFCC", "-", "mfcc"),
        ("Siamese-Self-aug", "InfoNCE", "self_infonce"),
        ("Siamese-Self-aug", "InfoNCE-Multi", "self_multi"),
        ("Siamese-Adjacent", "InfoNCE", "adjacent_infonce"),
        ("Siamese-Random", "InfoNCE-Multi", "random_multi"),
        ("MelCPC", "InfoNCE", "cpc"),
    ]
    assert table.columns == [
        "feature",
        "loss",
        "backbone",
        "dim",
        "probed dim",
        "genre SVM",
        "genre LR",
        "playlist HR@10",
        "playlist MPR",
    ]
    assert table.filter(pl.col("backbone") == "self_multi")["genre LR"].item() == 0.41
    # Table 3's dimension column: the encoder's output per segment, from each encoder's options.
    assert table["dim"].to_list() == [104, 128, 640, 128, 640, 256]


def test_markdown_bolds_the_best_of_each_column_lowest_for_mpr():
    text = ssl_markdown(ssl_table(probes(), ENCODERS))
    assert "| MelCPC | InfoNCE | cpc | 256 | 512 | **0.480** | **0.490** | **0.280** | **0.316** |" in text
    assert "| Siamese-Adjacent | InfoNCE | adjacent_infonce | 128 | 256 | 0.470 | 0.460 | **0.280** | 0.320 |" in text
    assert "| MFCC | - | mfcc | 104 | 104 | 0.400 | 0.400 | 0.200 | 0.380 |" in text
