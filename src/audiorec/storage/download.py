"""Fetch the files a dataset declares: over HTTP(S) or from a local path, verified before they appear.

A dataset's config lists its files (``datasets.<name>.downloads``), each with a URL or a local path, a
checksum and optionally an archive format. The workflow's ``download`` rule calls :func:`fetch` for each:

* HTTP(S) transfers retry with exponential backoff and resume where they stopped (an HTTP ``Range``
  request), because multi-gigabyte archives from research servers are routinely cut off;
* the bytes go to a hidden ``.part`` file beside the destination, are checked against the declared digest,
  and only then renamed onto the final name, so a file under its final name is always a verified file;
* a digest mismatch deletes the partial file and raises an error naming the URL and both digests;
* a ``path:`` source (data a user already has, or obtained on request) is linked, or copied with
  ``copy: true``, and still verified when a digest is given.

Archives are unpacked by :func:`audiorec.storage.archives.extract_archive`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import DownloadError, ParameterError
from audiorec.storage.atomic import atomic_path

log = logging.getLogger(__name__)

DIGEST_ALGORITHMS: tuple[str, ...] = ("sha256", "sha1", "md5")
"""Accepted checksum keys, strongest first; sha1 and md5 exist because some publishers list only those."""

ARCHIVE_FORMATS: tuple[str, ...] = ("zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "gz", "bz2", "xz")
"""Formats :func:`audiorec.storage.archives.extract_archive` unpacks (``gz``, ``bz2``, ``xz``: one compressed file)."""

PLACEHOLDER = re.compile(r"\{download:([^{}]+)\}")
"""``{download:NAME}`` in a dataset option stands for where the download ``NAME`` lands."""

_CHUNK = 1 << 20
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class DownloadSpec:
    """One declared file: where it comes from, its checksum and whether it is an archive.

    Attributes
    ----------
    name
        The key in the config; the file lands at ``resources/{dataset}/downloads/{name}``.
    url
        An ``http://`` or ``https://`` address; exactly one of ``url`` and ``path`` is given.
    path
        A local file, linked (or copied, see ``copy``) rather than transferred. Folders are not declared
        here: a dataset's options name them directly.
    sha256, sha1, md5
        The expected digest, hexadecimal; at most one. Required for ``url`` (an unverified download
        could be anything); optional for ``path``.
    archive
        One of :data:`ARCHIVE_FORMATS` when the file should be unpacked, else None.
    copy
        For ``path`` sources: copy the file instead of linking to it.
    """

    name: str
    url: str | None = None
    path: str | None = None
    sha256: str | None = None
    sha1: str | None = None
    md5: str | None = None
    archive: str | None = None
    copy: bool = False

    def __post_init__(self) -> None:
        where = f"download {self.name!r}"
        if (self.url is None) == (self.path is None):
            raise ParameterError(f"{where}: give exactly one of url and path; got url={self.url!r}, path={self.path!r}")
        if self.url is not None and not self.url.lower().startswith(("http://", "https://")):
            raise ParameterError(f"{where}: url must start with http:// or https://; got {self.url!r}")
        given = [name for name in DIGEST_ALGORITHMS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ParameterError(f"{where}: give one checksum, got {given}")
        if self.url is not None and not given:
            raise ParameterError(f"{where}: a url needs a checksum ({' or '.join(DIGEST_ALGORITHMS)})")
        for name in given:
            if not isinstance(getattr(self, name), str):
                raise ParameterError(f"{where}: {name} must be a quoted string of hexadecimal digits")
            value = getattr(self, name).strip().lower()
            expected_length = hashlib.new(name).digest_size * 2
            if len(value) != expected_length or any(c not in "0123456789abcdef" for c in value):
                raise ParameterError(
                    f"{where}: {name} must be {expected_length} hexadecimal digits; got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, value)
        if self.archive is not None and self.archive not in ARCHIVE_FORMATS:
            raise ParameterError(f"{where}: archive must be one of {list(ARCHIVE_FORMATS)}; got {self.archive!r}")
        if self.copy and self.path is None:
            raise ParameterError(f"{where}: copy applies to path sources only")

    @classmethod
    def from_mapping(cls, name: str, mapping: Mapping[str, Any]) -> DownloadSpec:
        """Build a spec from its config block (unknown keys are an error)."""
        return dataclass_from_mapping(cls, {**dict(mapping), "name": name}, f"download {name!r}")

    @property
    def digest(self) -> tuple[str, str] | None:
        """``(algorithm, hexdigest)`` of the declared checksum, or None."""
        for name in DIGEST_ALGORITHMS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None

    @property
    def source(self) -> str:
        """The URL or the path, for messages."""
        return self.url if self.url is not None else str(self.path)


def substitute_downloads(value: Any, locations: Mapping[str, str], where: str) -> Any:
    """Replace ``{download:NAME}`` in every string of a config value by ``locations[NAME]``.

    Lets a dataset's options point into its downloads (``"{download:fma_small}/fma_small"``) without
    repeating where the workflow puts them; nested mappings and lists are walked.

    Raises
    ------
    ParameterError
        Naming ``where`` and the placeholder, when ``NAME`` is not a declared download.
    """
    if isinstance(value, Mapping):
        return {key: substitute_downloads(item, locations, where) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute_downloads(item, locations, where) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in locations:
            raise ParameterError(f"{where}: {match.group(0)} names no declared download; declared: {sorted(locations)}")
        return locations[name]

    return PLACEHOLDER.sub(replace, value)


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """Hexadecimal digest of a file, read in chunks (archives can be larger than memory)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, algorithm).hexdigest()


def fetch(
    spec: DownloadSpec,
    dest: str | os.PathLike[str],
    *,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    progress: bool = True,
) -> Path:
    """Put the file ``spec`` declares at ``dest``, verified, atomically.

    Parameters
    ----------
    spec
        What to fetch.
    dest
        Final location; its folder is created.
    retries
        Consecutive failed attempts tolerated per transfer; an attempt that received bytes resets the count,
        so a long transfer over a flaky link is not abandoned while it progresses.
    backoff_s
        Wait before the first retry; doubled after each consecutive failure (at most a minute).
    timeout_s
        Socket timeout of each request.
    progress
        Show a progress bar.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        When the source does not exist, the server refuses, the retries run out (the partial file is kept
        so that the next run resumes), or the digest differs (the partial file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if spec.url is not None:
        part = dest.parent / f".{dest.name}.part"
        _transfer(spec.url, part, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s, progress=progress)
        _verify(spec, part, remove_on_mismatch=True)
        os.replace(part, dest)
    else:
        _place_local(spec, dest)
    log.info("%s: %s → %s", spec.name, spec.source, dest)
    return dest


def _verify(spec: DownloadSpec, path: Path, *, remove_on_mismatch: bool) -> None:
    """Compare ``path`` with the declared digest; on mismatch name the source and both digests."""
    if spec.digest is None:
        return
    algorithm, expected = spec.digest
    actual = file_digest(path, algorithm)
    if actual != expected:
        if remove_on_mismatch:
            path.unlink(missing_ok=True)
        raise DownloadError(
            f"{spec.source}: {algorithm} mismatch: the config declares {expected}, the file has {actual}"
            + ("; the downloaded file was deleted" if remove_on_mismatch else "")
        )
    log.info("%s: %s verified (%s)", spec.name, algorithm, actual)


def _place_local(spec: DownloadSpec, dest: Path) -> None:
    source = Path(os.path.expanduser(str(spec.path)))
    if not source.exists():
        raise DownloadError(f"download {spec.name!r}: path {source} does not exist")
    if source.is_dir():
        # A link to a folder as a workflow output would let a rerun delete what it points to.
        raise DownloadError(
            f"download {spec.name!r}: {source} is a folder; give its path in the dataset's options instead"
        )
    _verify(spec, source, remove_on_mismatch=False)
    with atomic_path(dest) as tmp:
        if spec.copy:
            shutil.copyfile(source, tmp)
        else:
            tmp.unlink()
            tmp.symlink_to(source.resolve())


class _Interrupted(Exception):
    """A transfer stopped early for a reason worth another attempt."""


def _transfer(url: str, part: Path, *, retries: int, backoff_s: float, timeout_s: float, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming from its current size; retry transient failures."""
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _attempt(url, part, timeout_s=timeout_s, progress=progress)
            return
        except _Interrupted as error:
            after = part.stat().st_size if part.exists() else 0
            failures = 0 if after > before else failures + 1
            if failures > retries:
                raise DownloadError(
                    f"{url}: transfer failed {failures} times in a row ({error}); {after} bytes kept in {part} "
                    "for the next attempt to resume"
                ) from error
            wait = min(backoff_s * 2 ** max(failures - 1, 0), _MAX_BACKOFF_S)
            log.warning("%s: %s; %d bytes so far, retrying in %.1f s", url, error, after, wait)
            time.sleep(wait)


def _attempt(url: str, part: Path, *, timeout_s: float, progress: bool) -> None:
    """One request: ask for the bytes after what ``part`` holds and append them."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "audiorec", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return  # nothing after ``offset``: the partial file is complete (the digest decides if it is right)
        if error.code in _RETRYABLE_STATUS:
            raise _Interrupted(f"HTTP {error.code} {error.reason}") from error
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise _Interrupted(str(getattr(error, "reason", error))) from error
    with response:
        if offset and response.status != 206:
            log.warning("%s: the server ignored the range request; starting over", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=part.name, disable=not progress)
        try:
            with open(part, mode) as stream, bar:
                while chunk := response.read(_CHUNK):
                    stream.write(chunk)
                    bar.update(len(chunk))
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
            raise _Interrupted(f"connection lost: {error!r}") from error
    received = part.stat().st_size
    if total is not None and received < total:
        raise _Interrupted(f"connection closed after {received} of {total} bytes")
