"""Published weights: the registry, the pinned sources, and verified fetches from a Hub emulator on loopback."""

from __future__ import annotations

import hashlib
import io
import json

import huggingface_hub.constants
import pytest
import torch
from hub_emulator import Hub, serve_hub

from audiorec.backbones import build_backbone
from audiorec.backbones.shipped import shipped_config, shipped_sizes
from audiorec.errors import DownloadError, ParameterError
from audiorec.storage.published_weights import (
    WEIGHTS_ROOT,
    parse_source,
    registry,
    resolve_backbone,
    resolve_weights,
    verify_local_copy,
)
from audiorec.storage.weights_fetch import fetch_published_file

REPO = "audiorec-test/mert-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hub_source(files: dict[str, bytes], **digests: str) -> dict:
    """A config-style source for ``files`` of the test repository (``digests`` override declared sha256s)."""
    declared = {name: {"sha256": digests.get(name.replace(".", "_"), sha256(data))} for name, data in files.items()}
    return {"repo": REPO, "revision": COMMIT, "files": declared}


@pytest.fixture
def hub_client(monkeypatch, tmp_path):
    """huggingface_hub pointed at the emulator, with its cache in the test's folder, as HF_ENDPOINT would."""
    hub = Hub()
    with serve_hub(hub):
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(
            huggingface_hub.constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        yield hub


@pytest.fixture
def mert_release() -> tuple[dict[str, bytes], dict[str, torch.Tensor]]:
    """A tiny MERT's files as the Hub holds a release: config.json and pytorch_model.bin (weights moved off init).

    Building a backbone switches huggingface_hub offline for the process, so tests ask for this fixture before
    ``hub_client``, which switches it back on.
    """
    torch.manual_seed(3)
    state = {key: value + 0.01 for key, value in build_backbone("mert", {"size": "tiny"}).model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    config = json.dumps(shipped_config("mert", "tiny")["model"]).encode()
    return {"config.json": config, "pytorch_model.bin": buffer.getvalue()}, state


# The shipped registry -------------------------------------------------------------------------------------------


def test_every_shipped_source_is_pinned_checksummed_and_names_a_shipped_architecture():
    sources = registry()
    assert {"mert-v1-95m", "mert-v1-330m", "music2vec-v1", "musicfm-25hz-msd", "muq-large-msd-iter"} <= set(sources)
    assert {"encodecmae-base", "jukebox-5b", "musicfm-25hz-fma"} <= set(sources)
    for name, source in sources.items():
        assert source.size.lower() in shipped_sizes(source.backbone), name
        assert (source.repo is None) == (source.revision is None), name
        assert all(len(file.sha256) == 64 for file in source.files), name
        if source.repo is None:
            assert all(file.url.startswith("https://") for file in source.files), name


def test_omitted_or_published_weights_resolve_to_the_local_copy_and_random_stays_random():
    options = resolve_backbone("fm", "musicfm", {"size": "25hz"})[1]
    assert options["weights"] == f"{WEIGHTS_ROOT}/musicfm-25hz-msd/pretrained_msd.pt"
    assert options["stats"] == f"{WEIGHTS_ROOT}/musicfm-25hz-msd/msd_stats.json"
    fma = resolve_backbone("fm", "musicfm", {"size": "25hz", "weights": "published:musicfm-25hz-fma"})[1]
    assert fma["stats"].endswith("fma_stats.json") and fma["weights"].endswith("pretrained_fma.pt")
    assert resolve_backbone("m", "mert", {"size": "v1-95M", "weights": "published"})[1]["weights"] == (
        f"{WEIGHTS_ROOT}/mert-v1-95m"
    )
    assert "weights" not in resolve_backbone("m", "mert", {"size": "v1-95M", "weights": "random"})[1]
    assert resolve_backbone("m", "mert", {"size": "tiny"})[1] == {"size": "tiny"}
    assert resolve_backbone("m", "mert", {"size": "v1-95M", "weights": "/models/mert"})[1]["weights"] == "/models/mert"
    own = resolve_backbone("fm", "musicfm", {"size": "25hz", "stats": "/my/stats.json"})[1]
    assert own["stats"] == "/my/stats.json"


def test_a_source_that_cannot_be_resolved_is_refused_with_the_ways_out():
    with pytest.raises(ParameterError, match=r"no published source for mert size 'tiny'.*local path, 'random'"):
        resolve_weights("m", "mert", {"size": "tiny", "weights": "published"})
    with pytest.raises(ParameterError, match="holds musicfm weights, not mert"):
        resolve_weights("m", "mert", {"size": "v1-95M", "weights": "published:musicfm-25hz-fma"})
    with pytest.raises(ParameterError, match="no published source 'nope'"):
        resolve_weights("m", "mert", {"size": "v1-95M", "weights": "published:nope"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revision": "main"}, "full commit hash.*branch or tag can move"),
        ({"revision": COMMIT[:12]}, "full commit hash"),
        ({"files": {"model.bin": {"sha256": "abc"}}}, "64 hexadecimal digits"),
        ({"files": {"../escape.bin": {"sha256": "0" * 64}}}, "relative path inside the source"),
        ({"files": {"model.bin": {"sha256": "0" * 64, "url": "https://x/model.bin"}}}, "not url"),
        ({"repo": "not a repo id"}, "owner/name"),
        ({"weights": "other.bin"}, "must name one of its files"),
        ({"mirror": "x"}, "unknown key"),
    ],
)
def test_malformed_sources_are_refused_naming_the_problem(change, message):
    entry = {"repo": REPO, "revision": COMMIT, "files": {"model.bin": {"sha256": "0" * 64}}} | change
    with pytest.raises(ParameterError, match=message):
        parse_source("mine", entry, "backbones.mine.options.weights")
    with pytest.raises(ParameterError, match="needs an http"):
        parse_source("urls", {"files": {"a.bin": {"sha256": "0" * 64}}}, "w")


# Fetching from the Hub emulator ---------------------------------------------------------------------------------


def test_a_good_fetch_lands_verified_and_loads_strictly(mert_release, hub_client, tmp_path, monkeypatch):
    files, state = mert_release
    hub_client.repos[(REPO, COMMIT)] = files
    source = parse_source("mert-tiny", {**hub_source(files), "weights": "."}, "test")
    monkeypatch.chdir(tmp_path)
    for name in files:
        fetch_published_file(source, name, source.local_path(name), progress=False)
        assert (tmp_path / source.local_path(name)).read_bytes() == files[name]
    heads = [path for method, path, _ in hub_client.requests if method == "HEAD"]
    assert all(f"/resolve/{COMMIT}/" in path for path in heads) and len(heads) == 2

    options = source.resolved_options({"size": "tiny", "device": "cpu"})
    verify_local_copy({source.local_path(n): f.sha256 for n, f in zip(files, source.files, strict=True)}, "test")
    loaded = build_backbone("mert", options)
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)

    requests = len(hub_client.requests)
    fetch_published_file(source, "pytorch_model.bin", tmp_path / "again.bin", progress=False)
    assert len(hub_client.requests) == requests, "a file in huggingface_hub's cache is not transferred again"


def test_a_wrong_sha256_fails_naming_both_digests_and_leaves_nothing(hub_client, tmp_path):
    files = {"pytorch_model.bin": b"weights" * 1000}
    hub_client.repos[(REPO, COMMIT)] = files
    declared = "f" * 64
    source = parse_source("bad", hub_source(files, pytorch_model_bin=declared), "test")
    dest = tmp_path / "weights" / "pytorch_model.bin"
    with pytest.raises(DownloadError) as error:
        fetch_published_file(source, "pytorch_model.bin", dest, progress=False, retries=0)
    message = str(error.value)
    assert declared in message and sha256(files["pytorch_model.bin"]) in message
    assert str(dest.resolve()) in message, "the offline hint names where the file belongs"
    assert not dest.exists() and not list(dest.parent.glob("*"))
    blobs = [path for path in (tmp_path / "hf-cache").rglob("*") if path.is_file() and "blobs" in path.parts]
    assert blobs == [], "the unverified download is removed from the cache too"


def test_a_cut_transfer_resumes_with_a_range_request(hub_client, tmp_path):
    # huggingface_hub writes in 10 MiB chunks: a file cut after 12 MiB resumes after its first chunk.
    files = {"pytorch_model.bin": bytes(range(256)) * (24 * 4096)}
    hub_client.repos[(REPO, COMMIT)] = files
    hub_client.cut_once.add("pytorch_model.bin")
    source = parse_source("cut", hub_source(files), "test")
    dest = tmp_path / "w" / "pytorch_model.bin"
    fetch_published_file(source, "pytorch_model.bin", dest, progress=False)
    assert dest.read_bytes() == files["pytorch_model.bin"]
    gets = [(path, byte_range) for method, path, byte_range in hub_client.requests if method == "GET"]
    assert len(gets) == 2 and gets[0][1] is None
    resumed_at = int(gets[1][1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(files["pytorch_model.bin"]) // 2, "the second request asks only for what is missing"


def test_server_errors_are_retried_with_backoff_and_missing_files_are_not(hub_client, tmp_path):
    files = {"pytorch_model.bin": b"x" * 5000}
    hub_client.repos[(REPO, COMMIT)] = files
    hub_client.failures["pytorch_model.bin"] = 2
    source = parse_source("flaky", hub_source(files), "test")
    fetch_published_file(source, "pytorch_model.bin", tmp_path / "a.bin", progress=False, backoff_s=0.01)
    assert (tmp_path / "a.bin").read_bytes() == files["pytorch_model.bin"]

    other = parse_source("wrong-commit", {**hub_source(files), "revision": "f" * 40}, "test")
    with pytest.raises(DownloadError, match=r"RevisionNotFound.*\n.*place it at") as error:
        fetch_published_file(other, "pytorch_model.bin", tmp_path / "b.bin", progress=False, backoff_s=0.01)
    assert "sha256 is" in str(error.value)
    requests = [path for _, path, _ in hub_client.requests if "f" * 40 in path]
    assert len(requests) == 1, "a missing revision is not retried"


def test_a_url_source_is_fetched_verified_through_the_dataset_downloader(tmp_path):
    from loopback import Site, serve

    body = b"jukebox" * 3000
    with serve(Site(files={"/5b/vqvae.pth.tar": body})) as site:
        entry = {"files": {"vqvae.pth.tar": {"url": site.url("/5b/vqvae.pth.tar"), "sha256": sha256(body)}}}
        source = parse_source("jukebox-test", entry, "test")
        fetch_published_file(source, "vqvae.pth.tar", tmp_path / "vqvae.pth.tar", progress=False)
    assert (tmp_path / "vqvae.pth.tar").read_bytes() == body


# Files placed by hand -------------------------------------------------------------------------------------------


def test_hand_placed_files_are_verified_once_and_a_wrong_or_missing_one_is_refused(tmp_path):
    good = tmp_path / "model.bin"
    good.write_bytes(b"published")
    verify_local_copy({str(good): sha256(b"published")}, "owner/repo@c")
    assert (tmp_path / ".model.bin.sha256").read_text().endswith(sha256(b"published"))
    with pytest.raises(ParameterError, match=r"has sha256 .* but the source declares"):
        verify_local_copy({str(good): "0" * 64}, "owner/repo@c")
    good.write_bytes(b"changed!!")  # another size: the remembered digest no longer applies
    with pytest.raises(ParameterError, match=sha256(b"changed!!")):
        verify_local_copy({str(good): sha256(b"published")}, "owner/repo@c")
    with pytest.raises(ParameterError, match=r"absent.bin \(owner/repo@c\) is missing.*place the file there"):
        verify_local_copy({str(tmp_path / "absent.bin"): "0" * 64}, "owner/repo@c")


def test_the_command_line_fetches_a_published_source_then_embeds_with_it(
    mert_release, hub_client, tmp_path, monkeypatch
):
    import numpy as np
    import polars as pl
    import soundfile as sf

    from audiorec.cli import main

    files, _ = mert_release
    hub_client.repos[(REPO, COMMIT)] = files
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32), 24000)
    monkeypatch.chdir(tmp_path)
    options = {"size": "tiny", "device": "cpu", "weights": {**hub_source(files), "weights": "."}}
    assert (
        main(["embed", str(audio), "--backbone", "mert", "--options", json.dumps(options), "--out", "e.parquet"]) == 0
    )
    assert (tmp_path / WEIGHTS_ROOT / "cli" / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]
    assert pl.read_parquet(tmp_path / "e.parquet").height == 1
