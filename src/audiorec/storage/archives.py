"""Unpack downloaded archives without letting them write anywhere but their own folder.

Every member is checked before anything is written: an absolute name, a ``..`` component, or a link whose
target leaves the folder (the "zip-slip" family of attacks, and also of honest mistakes) rejects the whole
archive. Members are unpacked into a hidden temporary folder beside the destination, which is renamed onto
it only when everything succeeded, so the destination either holds the complete archive or does not exist.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from audiorec.errors import DownloadError, ParameterError
from audiorec.storage.download import ARCHIVE_FORMATS

log = logging.getLogger(__name__)

_SINGLE_FILE = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}
_DRIVE = re.compile(r"^[A-Za-z]:")


def extract_archive(
    archive: str | os.PathLike[str], fmt: str, out_dir: str | os.PathLike[str], *, progress: bool = True
) -> Path:
    """Unpack ``archive`` (format ``fmt``, one of :data:`audiorec.storage.download.ARCHIVE_FORMATS`) into ``out_dir``.

    ``gz``, ``bz2`` and ``xz`` archives hold one compressed file; it is written into ``out_dir`` under the
    archive's name without that suffix (``events.tsv.bz2`` → ``out_dir/events.tsv``).

    Raises
    ------
    DownloadError
        Naming the archive and the offending member, if a member would land outside ``out_dir``, is a
        device or pipe, or the archive is unreadable; ``out_dir`` is then not created.
    """
    if fmt not in ARCHIVE_FORMATS:
        raise ParameterError(f"archive format must be one of {list(ARCHIVE_FORMATS)}; got {fmt!r}")
    archive, out_dir = Path(archive), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        if fmt == "zip":
            _extract_zip(archive, tmp, progress)
        elif fmt.startswith("tar"):
            _extract_tar(archive, tmp, progress)
        else:
            _decompress(archive, fmt, tmp, progress)
        try:
            os.replace(tmp, out_dir)
        except OSError as error:
            raise DownloadError(f"{archive}: cannot move the unpacked files onto {out_dir}: {error}") from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s unpacked into %s", archive, out_dir)
    return out_dir


def _member_path(archive: Path, name: str) -> PurePosixPath:
    """Check a member name: relative, no ``..``, no drive; backslashes count as separators."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if not normalised or path.is_absolute() or _DRIVE.match(normalised) or ".." in path.parts:
        raise DownloadError(f"{archive}: member {name!r} would be written outside the target folder; refusing")
    return path


def _check_link(archive: Path, name: str, target: str, *, relative_to_member: bool) -> None:
    """A link target must stay inside the folder: resolved against the member's folder (symlinks) or the root."""
    if posixpath.isabs(target.replace("\\", "/")):
        raise DownloadError(f"{archive}: member {name!r} links to the absolute path {target!r}; refusing")
    base = posixpath.dirname(name.replace("\\", "/")) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        raise DownloadError(f"{archive}: member {name!r} links to {target!r}, outside the target folder; refusing")


def _extract_zip(archive: Path, out: Path, progress: bool) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _member_path(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    _check_link(archive, info.filename, zf.read(info).decode(), relative_to_member=True)
            for info in tqdm(members, desc=archive.name, unit="file", disable=not progress):
                zf.extract(info, out)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DownloadError(f"{archive}: cannot read the zip archive: {error}") from error


def _extract_tar(archive: Path, out: Path, progress: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _member_path(archive, member.name)
                if member.issym():
                    _check_link(archive, member.name, member.linkname, relative_to_member=True)
                elif member.islnk():
                    _check_link(archive, member.name, member.linkname, relative_to_member=False)
                elif not (member.isfile() or member.isdir()):
                    raise DownloadError(f"{archive}: member {member.name!r} is a device or pipe; refusing")
            for member in tqdm(members, desc=archive.name, unit="file", disable=not progress):
                # The "data" filter repeats these checks inside tarfile, and drops set-uid bits and owners.
                tar.extract(member, out, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DownloadError(f"{archive}: cannot read the tar archive: {error}") from error


def _decompress(archive: Path, fmt: str, out: Path, progress: bool) -> None:
    """Decompress a single-file archive into ``out``, with a progress bar on the compressed bytes read.

    A bz2 file goes through ``lbzip2`` when it is installed: it decompresses on every core (the Onion's
    2.2 GB log is bzip2, which Python's ``bz2`` decompresses on one). Otherwise the file streams through
    Python's decompressor, never held in memory either way.
    """
    suffix = f".{fmt}"
    name = archive.name[: -len(suffix)] if archive.name.endswith(suffix) and archive.name != suffix else archive.name
    tool = shutil.which(PARALLEL_BZIP2) if fmt == "bz2" else None
    size = archive.stat().st_size if archive.is_file() else None
    with tqdm(total=size, desc=archive.name, unit="B", unit_scale=True, disable=not progress) as bar:
        if tool is not None:
            _decompress_with(tool, archive, out / name, bar)
            return
        try:
            with (
                open(archive, "rb") as raw,
                _SINGLE_FILE[fmt](_Counted(raw, bar), "rb") as source,
                open(out / name, "wb") as target,
            ):
                shutil.copyfileobj(source, target, length=1 << 20)
        except (OSError, EOFError, lzma.LZMAError) as error:
            raise DownloadError(f"{archive}: cannot decompress ({fmt}): {error}") from error


PARALLEL_BZIP2 = "lbzip2"
"""The parallel bzip2 decompressor used when it is on PATH (Debian/Ubuntu package ``lbzip2``)."""


def _decompress_with(tool: str, archive: Path, target: Path, bar: tqdm) -> None:
    """Feed ``archive`` to ``tool -d`` (lbzip2) through a pipe, so that the bar counts the bytes it has read."""
    try:
        with open(archive, "rb") as raw, open(target, "wb") as sink:
            process = subprocess.Popen([tool, "-d", "-c"], stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.PIPE)
            try:
                while chunk := raw.read(1 << 20):
                    process.stdin.write(chunk)
                    bar.update(len(chunk))
            except BrokenPipeError:
                pass  # the tool stopped reading, having found an error it reports below
            finally:
                process.stdin.close()
            message = process.stderr.read().decode(errors="replace").strip()
            status = process.wait()
    except OSError as error:
        raise DownloadError(f"{archive}: cannot decompress (bz2, {tool}): {error}") from error
    if status != 0:
        raise DownloadError(f"{archive}: cannot decompress (bz2, {tool} exit status {status}): {message}")


class _Counted:
    """A binary file whose reads advance a progress bar: what the decompressors are given to read from."""

    def __init__(self, raw: BinaryIO, bar: tqdm) -> None:
        self._raw, self._bar = raw, bar

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._bar.update(len(data))
        return data
