"""``audiorec check``: every built-in kind passes the contract; a broken plugin fails it with the reason."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from audiorec.backbones import BACKBONES
from audiorec.cli import main as cli_main
from audiorec.contracts.backbone import check_backbone
from audiorec.contracts.recommender import check_recommender
from audiorec.errors import ContractError
from audiorec.recommenders import RECOMMENDERS
from audiorec.recommenders.contract import check_ranking

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAS_MUSICNN = importlib.util.find_spec("musicnn") is not None
TINY_PRETRAINED = {"size": "tiny", "device": "cpu"}
SSL_OPTIONS = {"loss": "infonce", "positive": "self", "channels": [2, 4, 4, 8, 8], "embedding_dim": 8, "device": "cpu"}
BACKBONE_OPTIONS = {
    "mfcc": {},
    "musicnn": {},
    "mert": TINY_PRETRAINED,
    "music2vec": TINY_PRETRAINED,
    "musicfm": TINY_PRETRAINED,
    "muq": TINY_PRETRAINED,
    "muq_mulan": TINY_PRETRAINED,
    "mule": TINY_PRETRAINED,
    "encodecmae": TINY_PRETRAINED,
    "jukebox": TINY_PRETRAINED,
    "ssl": SSL_OPTIONS,  # plus the checkpoint, written below
    "hear": {"module": "hear_api_module"},
    "precomputed": {"feature": "mfcc_stats"},
}
MODEL_OPTIONS = {
    "knn": {},
    "popularity": {},
    "random": {},
    "shallow": {"max_epochs": 2},
    "shallow_random": {"max_epochs": 2, "item_dim": 8},
    "bert4rec": {"max_epochs": 1, "max_len": 16, "hidden_size": 8, "feedforward_dim": 16},
    "bert4rec_random": {"max_epochs": 1, "max_len": 16, "hidden_size": 8, "feedforward_dim": 16},
    "ease": {"l2": 50.0},
    "itemknn": {"neighbours": 10, "shrink": 1.0},
    "ials": {"factors": 8, "iterations": 3},
    "cf_hybrid": {"mapping": "mlp", "factors": 8, "iterations": 3, "epochs": 3, "hidden": 16},
    "elsa": {"factors": 8, "max_epochs": 2},
    "hybrid": {"factors": 8, "max_epochs": 2},
    **{
        f"bimodal_{scoring}": {"max_epochs": 2, "hidden_dim": 8, "elsa_factors": 8, "elsa_max_epochs": 2}
        for scoring in ("content", "collaborative", "average")
    },
}


def test_the_lists_above_name_every_built_in_kind():
    assert set(BACKBONE_OPTIONS) == set(BACKBONES.entries)
    assert set(MODEL_OPTIONS) == set(RECOMMENDERS.entries)


def ssl_checkpoint(folder) -> str:
    from audiorec.ssl import SSLConfig, SSLModel, TrainingHistory, save_checkpoint

    path = folder / "encoder.pt"
    config = SSLConfig.from_mapping({key: value for key, value in SSL_OPTIONS.items() if key != "device"})
    save_checkpoint(SSLModel(config), TrainingHistory(), path)
    return str(path)


@pytest.mark.parametrize("kind", sorted(BACKBONE_OPTIONS))
def test_every_built_in_backbone_passes_its_contract(kind, tmp_path):
    if kind == "musicnn" and not HAS_MUSICNN:
        pytest.skip("musicnn wheel not installed (pip install --no-deps musicnn==0.1.0)")
    options = dict(BACKBONE_OPTIONS[kind])
    if kind == "ssl":
        options["weights"] = ssl_checkpoint(tmp_path)
    results = check_backbone(kind, options)
    assert [result.line() for result in results if result.status == "FAIL"] == []
    expected = "SKIP" if kind == "precomputed" else "PASS"
    assert {result.status for result in results} == {expected}


@pytest.mark.parametrize("kind", sorted(MODEL_OPTIONS))
def test_every_built_in_recommender_passes_its_contract(kind):
    results = check_recommender(kind, MODEL_OPTIONS[kind])
    assert [result.line() for result in results if result.status == "FAIL"] == []
    statuses = {result.name: result.status for result in results}
    trained = RECOMMENDERS.traits(kind).trained
    assert statuses["fit, save and load round trip: a restored model ranks the same"] == ("PASS" if trained else "SKIP")


def failures(results) -> dict[str, str]:
    return {result.name: result.reason for result in results if result.status == "FAIL"}


def test_a_backbone_of_the_wrong_width_fails_the_shape_checks_naming_kind_layer_and_widths():
    failed = failures(check_backbone("plugin_fixtures:NarrowBackbone"))
    reason = failed["embeds a batch of unequal tracks: every layer (n, width), float32, finite"]
    assert reason == (
        "ContractError: backbone kind 'plugin_fixtures:NarrowBackbone': layer 'envelope' came out (2, 5) "
        "for 2 tracks; it declares width 6"
    )
    assert "declares width 6" in failed["runs through the extraction driver (decode, resample, crop, pool)"]
    assert failed["the same options give the same vectors"].startswith("not run:")


def test_a_backbone_of_nan_vectors_fails_naming_the_problem():
    failed = failures(check_backbone("plugin_fixtures:NaNBackbone"))
    assert (
        "layer 'envelope' has NaN or infinite values"
        in failed["embeds a batch of unequal tracks: every layer (n, width), float32, finite"]
    )
    assert "NaN or infinite" in failed["runs through the extraction driver (decode, resample, crop, pool)"]


def test_a_recommender_that_returns_heard_items_fails_that_check_only():
    failed = failures(check_recommender("plugin_fixtures:HeardFirstRecommender"))
    assert list(failed) == ["leaves out every track a user heard before the evaluation window"]
    assert "items their users heard before the evaluation window" in failed[next(iter(failed))]


def test_a_plugin_that_cannot_be_imported_fails_the_first_check_and_names_why():
    results = check_recommender("no_such_package.models:Model")
    assert results[0].reason.endswith(
        "cannot import no_such_package.models: ModuleNotFoundError: No module named 'no_such_package'"
    )
    assert all(result.reason.startswith("not run:") for result in results[1:])


def test_the_cli_prints_one_line_per_check_and_exits_1_on_a_failure(capsys):
    assert cli_main(["check", "recommender", "plugin_fixtures:MostHeardRecommender"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0] == "PASS  options are checked at plan time" and lines[-1] == "9 checks: 7 passed, 0 failed, 2 skipped"
    )
    assert cli_main(["check", "backbone", "plugin_fixtures:NarrowBackbone", "--options", '{"width": 4}']) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  embeds a clip shorter than 0.1 s or refuses it with an error (a failures row): ContractError: "
        "backbone kind 'plugin_fixtures:NarrowBackbone': layer 'envelope' came out (1, 3) for 1 tracks; it declares "
        "width 4" in out
    )


class TestRankingContract:
    """The check every ranking job runs on a model's lists before writing them, on hand-built cases."""

    excluded = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=bool))
    users = np.array(["u1", "u2"], dtype=object)

    def check(self, items, scores=None, k=2):
        items = np.asarray(items)
        scores = np.ones(items.shape, dtype=np.float32) if scores is None else np.asarray(scores)
        check_ranking("x", self.users, self.excluded, scores, items, k)

    def test_a_valid_ranking_with_padding_passes(self):
        self.check([[1, 2], [0, -1]])

    @pytest.mark.parametrize(
        ("items", "scores", "message"),
        [
            ([[0, 1], [0, 1]], None, r"returned 1 items their users heard .* \(user u1 among them\)"),
            ([[1, 2], [3, 2]], None, r"returned 1 items their users heard .* \(user u2 among them\)"),
            ([[1, 1], [0, 1]], None, "the same item twice in one user's list"),
            ([[1, 5], [0, 1]], None, "outside the catalogue of 5 items"),
            ([[1, -2], [0, 1]], None, "outside the catalogue of 5 items"),
            ([[1, 2], [0, 1]], [[1.0, np.nan], [1.0, 1.0]], "NaN or infinite scores"),
            ([[1, 2, 3], [0, 1, 3]], None, r"items \(2, 3\) and scores \(2, 3\); expected \(2, 2\) each"),
            ([[1.0, 2.0], [0.0, 1.0]], None, "item indices of dtype float64, not integers"),
        ],
    )
    def test_a_broken_ranking_is_refused_naming_the_kind_and_the_problem(self, items, scores, message):
        with pytest.raises(ContractError, match=rf"model kind 'x': .*{message}"):
            self.check(items, scores)
