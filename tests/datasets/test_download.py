"""Downloads against a loopback HTTP server, local sources, and archive extraction that refuses to escape."""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from loopback import Site, serve

from audiorec.errors import DownloadError, ParameterError
from audiorec.storage import archives
from audiorec.storage.archives import extract_archive
from audiorec.storage.download import DownloadSpec, fetch, file_digest, substitute_downloads

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, so a transfer spans several chunks
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
FAST = {"backoff_s": 0.01, "timeout_s": 5.0, "progress": False}


@pytest.fixture
def site() -> Site:
    with serve(Site(files={"/data.bin": PAYLOAD, "/tampered.bin": PAYLOAD[:-1] + b"x"})) as running:
        yield running


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_good_file_lands_verified(site: Site, tmp_path: Path) -> None:
    spec = DownloadSpec(name="data.bin", url=site.url("/data.bin"), sha256=SHA256.upper())
    dest = fetch(spec, tmp_path / "downloads" / "data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert _files_in(tmp_path / "downloads") == ["data.bin"]  # no partial file left behind


def test_corrupt_file_fails_naming_url_and_both_digests_and_leaves_nothing(site: Site, tmp_path: Path) -> None:
    url = site.url("/tampered.bin")
    spec = DownloadSpec(name="tampered.bin", url=url, sha256=SHA256)
    with pytest.raises(DownloadError) as error:
        fetch(spec, tmp_path / "tampered.bin", **FAST)
    message = str(error.value)
    actual = hashlib.sha256(site.files["/tampered.bin"]).hexdigest()
    assert url in message and SHA256 in message and actual in message
    assert _files_in(tmp_path) == []


def test_transfer_cut_halfway_resumes_with_a_range_request(site: Site, tmp_path: Path) -> None:
    site.cut_once.add("/data.bin")
    spec = DownloadSpec(name="data.bin", url=site.url("/data.bin"), sha256=SHA256)
    dest = fetch(spec, tmp_path / "data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert site.requests == [("/data.bin", None), ("/data.bin", f"bytes={len(PAYLOAD) // 2}-")]


def test_partial_file_from_an_earlier_run_is_resumed(site: Site, tmp_path: Path) -> None:
    (tmp_path / ".data.bin.part").write_bytes(PAYLOAD[:1000])
    spec = DownloadSpec(name="data.bin", url=site.url("/data.bin"), sha256=SHA256)
    assert fetch(spec, tmp_path / "data.bin", **FAST).read_bytes() == PAYLOAD
    assert site.requests == [("/data.bin", "bytes=1000-")]


def test_transient_errors_are_retried_with_backoff(site: Site, tmp_path: Path) -> None:
    site.failures["/data.bin"] = 2
    spec = DownloadSpec(name="data.bin", url=site.url("/data.bin"), sha256=SHA256)
    assert fetch(spec, tmp_path / "data.bin", **FAST).read_bytes() == PAYLOAD
    assert len(site.requests) == 3


def test_retries_run_out_and_missing_files_fail_fast(site: Site, tmp_path: Path) -> None:
    site.failures["/data.bin"] = 10
    spec = DownloadSpec(name="data.bin", url=site.url("/data.bin"), sha256=SHA256)
    with pytest.raises(DownloadError, match="failed 3 times in a row"):
        fetch(spec, tmp_path / "data.bin", retries=2, **FAST)
    missing = DownloadSpec(name="nope.bin", url=site.url("/nope.bin"), sha256=SHA256)
    with pytest.raises(DownloadError, match=r"/nope\.bin: HTTP 404"):
        fetch(missing, tmp_path / "nope.bin", **FAST)
    assert len(site.requests) == 3 + 1
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "nope.bin").exists()


def test_local_path_is_linked_or_copied_and_still_verified(tmp_path: Path) -> None:
    source = tmp_path / "mine.bin"
    source.write_bytes(PAYLOAD)
    linked = fetch(DownloadSpec(name="a", path=str(source), sha256=SHA256), tmp_path / "out" / "a", **FAST)
    assert linked.is_symlink() and linked.resolve() == source.resolve()
    by_md5 = DownloadSpec(name="b", path=str(source), md5=hashlib.md5(PAYLOAD).hexdigest(), copy=True)
    copied = fetch(by_md5, tmp_path / "out" / "b", **FAST)
    assert not copied.is_symlink() and copied.read_bytes() == PAYLOAD
    wrong = DownloadSpec(name="c", path=str(source), sha1="0" * 40)
    with pytest.raises(DownloadError, match=f"sha1 mismatch: the config declares {'0' * 40}, the file has"):
        fetch(wrong, tmp_path / "out" / "c", **FAST)
    assert source.exists() and not (tmp_path / "out" / "c").exists()
    with pytest.raises(DownloadError, match="is a folder; give its path in the dataset's options"):
        fetch(DownloadSpec(name="d", path=str(tmp_path / "out")), tmp_path / "d", **FAST)
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(DownloadSpec(name="e", path=str(tmp_path / "absent")), tmp_path / "e", **FAST)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"url": "http://x/y"}, "needs a checksum"),
        ({"url": "ftp://x/y", "sha256": SHA256}, "must start with http"),
        ({"url": "http://x/y", "path": "/y", "sha256": SHA256}, "exactly one of url and path"),
        ({"url": "http://x/y", "sha256": "abc"}, "64 hexadecimal digits"),
        ({"url": "http://x/y", "sha256": SHA256, "md5": "0" * 32}, "one checksum"),
        ({"url": "http://x/y", "sha256": SHA256, "archive": "rar"}, "archive must be one of"),
        ({"url": "http://x/y", "sha256": SHA256, "checksum": "x"}, "unknown option"),
    ],
)
def test_invalid_specs_name_the_download(mapping: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as error:
        DownloadSpec.from_mapping("archive.zip", mapping)
    assert "archive.zip" in str(error.value)


# -- archives ------------------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def test_zip_and_tar_extract_into_the_target_folder(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"fma/000/000002.mp3": b"mp3", "fma/README.txt": b"hi"})
    out = extract_archive(archive, "zip", tmp_path / "extracted" / "a.zip", progress=False)
    assert _files_in(out) == ["fma", "fma/000", "fma/000/000002.mp3", "fma/README.txt"]
    assert (out / "fma" / "000" / "000002.mp3").read_bytes() == b"mp3"
    tar = _tar(tmp_path / "b.tar.gz", [tarfile.TarInfo("d/x.txt"), _symlink("d/link", "x.txt")], {"d/x.txt": b"x"})
    out = extract_archive(tar, "tar.gz", tmp_path / "extracted" / "b", progress=False)
    assert (out / "d" / "link").is_symlink() and (out / "d" / "link").read_bytes() == b"x"


@pytest.mark.parametrize("evil", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_zip_slip_is_rejected_and_nothing_is_written(tmp_path: Path, evil: str) -> None:
    target = tmp_path / "data" / "extracted"
    archive = _zip(tmp_path / "evil.zip", {"fine.txt": b"fine", evil: b"evil"})
    with pytest.raises(DownloadError, match="outside the target folder") as error:
        extract_archive(archive, "zip", target, progress=False)
    assert repr(evil) in str(error.value) and str(archive) in str(error.value)
    assert _files_in(tmp_path) == ["data", "evil.zip"]  # the parent folder, empty
    assert not target.exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "member",
    [
        _symlink("d/escape", "../../outside"),
        _symlink("d/absolute", "/etc/passwd"),
        tarfile.TarInfo("../sneaky.txt"),
    ],
)
def test_tar_links_and_names_that_escape_are_rejected(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", [tarfile.TarInfo("d/ok.txt"), member], {"d/ok.txt": b"ok"})
    with pytest.raises(DownloadError, match="refusing"):
        extract_archive(archive, "tar.gz", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert _files_in(tmp_path) == ["evil.tar.gz"]


def test_single_file_decompression_and_unreadable_archives(tmp_path: Path) -> None:
    compressed = tmp_path / "events.tsv.bz2"
    compressed.write_bytes(bz2.compress(b"user_id\ttrack_id\ttimestamp\n"))
    out = extract_archive(compressed, "bz2", tmp_path / "events", progress=False)
    assert (out / "events.tsv").read_bytes() == b"user_id\ttrack_id\ttimestamp\n"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DownloadError, match="cannot read the zip archive"):
        extract_archive(broken, "zip", tmp_path / "broken", progress=False)
    assert not (tmp_path / "broken").exists()


def test_file_digest_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(PAYLOAD)
    assert file_digest(path, "sha1") == hashlib.sha1(PAYLOAD).hexdigest()


def test_options_refer_to_downloads_by_placeholder() -> None:
    locations = {"fma_small.zip": "resources/datasets/fma/extracted/fma_small.zip", "x": "resources/x"}
    options = {"audio_dir": "{download:fma_small.zip}/fma_small", "files": ["{download:x}", 3], "subset": "small"}
    assert substitute_downloads(options, locations, "datasets.fma.options") == {
        "audio_dir": "resources/datasets/fma/extracted/fma_small.zip/fma_small",
        "files": ["resources/x", 3],
        "subset": "small",
    }
    with pytest.raises(ParameterError, match=r"datasets.fma.options: \{download:audio\} names no declared download"):
        substitute_downloads({"a": "{download:audio}"}, locations, "datasets.fma.options")


@pytest.fixture(params=["lbzip2", "python"])
def bzip2_route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Decompress bz2 through lbzip2 (skipped where it is not installed) or, with it hidden, through Python."""
    real_which = shutil.which
    if request.param == "lbzip2":
        if real_which("lbzip2") is None:
            pytest.skip("lbzip2 is not installed")
    else:
        monkeypatch.setattr(archives.shutil, "which", lambda name, *a, **k: None)
    return request.param


def test_bz2_decompresses_by_either_route_with_progress_on_compressed_bytes(
    tmp_path: Path, bzip2_route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = b"".join(b"user_%d\ttrack_%d\t2019-02-20 13:45:07\n" % (i, i % 97) for i in range(200_000))
    compressed = tmp_path / "userid_trackid_timestamp.tsv.bz2"
    compressed.write_bytes(bz2.compress(lines))
    counted: list[int] = []
    real_update = archives.tqdm.update
    monkeypatch.setattr(archives.tqdm, "update", lambda bar, n=1: counted.append(n) or real_update(bar, n))
    out = extract_archive(compressed, "bz2", tmp_path / "events", progress=True)
    assert (out / "userid_trackid_timestamp.tsv").read_bytes() == lines
    assert sum(counted) == compressed.stat().st_size  # the bar ends at the compressed size


def test_corrupt_bz2_fails_by_either_route_and_leaves_nothing(tmp_path: Path, bzip2_route: str) -> None:
    broken = tmp_path / "events.tsv.bz2"
    broken.write_bytes(bz2.compress(b"x" * 100_000)[:-20])  # cut short
    with pytest.raises(DownloadError, match=r"events.tsv.bz2: cannot decompress \(bz2"):
        extract_archive(broken, "bz2", tmp_path / "events", progress=False)
    assert not (tmp_path / "events").exists()


def test_lbzip2_is_the_route_where_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel tool is looked up and run for bz2: a stand-in on PATH that records its call proves it."""
    tool = tmp_path / "bin" / "lbzip2"
    tool.parent.mkdir()
    record = tmp_path / "called"
    script = "import bz2, sys; sys.stdout.buffer.write(bz2.decompress(sys.stdin.buffer.read()))"
    tool.write_text(f'#!/bin/sh\necho "$@" > {record}\nexec {sys.executable} -c "{script}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    compressed = tmp_path / "events.tsv.bz2"
    compressed.write_bytes(bz2.compress(b"a\tb\n"))
    out = extract_archive(compressed, "bz2", tmp_path / "events", progress=False)
    assert (out / "events.tsv").read_bytes() == b"a\tb\n"
    assert record.read_text().split() == ["-d", "-c"]
