"""Fetch one file of a published weights source, verified before it appears under its final name.

Hugging Face files go through ``huggingface_hub`` (:func:`huggingface_hub.hf_hub_download`), so its cache
(``HF_HOME``, ``HF_HUB_CACHE``), endpoint (``HF_ENDPOINT``: a mirror, or a test server) and token (``HF_TOKEN``,
``hf auth login``) conventions hold, and a file already in the cache is not transferred again. It resumes a
connection cut mid-file with a range request; a run killed outright restarts that file (huggingface_hub keeps
no partial file across processes). URL sources (Jukebox's) go through :func:`audiorec.storage.download.fetch`, which
also resumes across runs.

Either way the file's sha256 is compared with the declared one before it is placed: a mismatch deletes what
was downloaded (the cache's copy included) and names both digests. The verified file is then hard-linked from
the cache into ``resources/weights/<source>/`` (copied where the cache is on another file system) through an
atomic rename, so the extraction jobs, which never touch the network, read only verified files.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from audiorec.errors import DownloadError
from audiorec.storage.atomic import atomic_path
from audiorec.storage.download import DownloadSpec, fetch, file_digest
from audiorec.storage.published_weights import PublishedFile, PublishedSource

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 60.0


def fetch_published_file(
    source: PublishedSource,
    name: str,
    dest: str | os.PathLike[str],
    *,
    retries: int = 4,
    backoff_s: float = 2.0,
    progress: bool = True,
) -> Path:
    """Put the file ``name`` of ``source`` at ``dest``, verified; return ``dest``.

    Raises
    ------
    DownloadError
        When the file cannot be fetched after ``retries`` attempts (the message says where to place it by hand
        on a machine without network access), or its sha256 is not the declared one (nothing is left behind).
    """
    file = source.file(name)
    dest = Path(dest)
    try:
        if source.repo is None:
            spec = DownloadSpec(name=name, url=file.url, sha256=file.sha256)
            fetch(spec, dest, retries=retries, backoff_s=backoff_s, progress=progress)
        else:
            cached = _with_retries(lambda: _hub_download(source, file, progress), source, file, retries, backoff_s)
            _verify_cached(source, file, cached)
            _place(cached, dest)
    except DownloadError as error:
        raise DownloadError(f"{error}\n{_offline_hint(source, file, dest)}") from error
    log.info("%s/%s: %s verified (sha256 %s) → %s", source.name, name, source.origin, file.sha256, dest)
    return dest


def ensure_local_copy(source: PublishedSource, *, progress: bool = True) -> None:
    """Fetch every file of ``source`` that is not in its folder yet (the command line's path to published weights)."""
    for file in source.files:
        if not Path(source.local_path(file.name)).is_file():
            fetch_published_file(source, file.name, source.local_path(file.name), progress=progress)


def _hub_download(source: PublishedSource, file: PublishedFile, progress: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    (enable_progress_bars if progress else disable_progress_bars)()
    return Path(hf_hub_download(repo_id=source.repo, filename=file.name, revision=source.revision))


def _with_retries(
    attempt: Callable[[], Path], source: PublishedSource, file: PublishedFile, retries: int, backoff_s: float
) -> Path:
    """Run ``attempt``, retrying transient failures (5xx, 429, lost connections) with exponential backoff."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    permanent = (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError)
    where = f"{source.origin}/{file.name}"
    for failures in range(retries + 1):
        try:
            return attempt()
        except permanent as error:
            raise DownloadError(f"{where}: {type(error).__name__}: {_first_line(error)}") from error
        except Exception as error:
            if not _is_transient(error) or failures == retries:
                raise DownloadError(f"{where}: {type(error).__name__}: {_first_line(error)}") from error
            wait = min(backoff_s * 2**failures, _MAX_BACKOFF_S)
            log.warning("%s: %s; retrying in %.1f s", where, _first_line(error), wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _is_transient(error: Exception) -> bool:
    """Whether another attempt may succeed: server errors, rate limits, lost or refused connections."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return status in (408, 425, 429) or status >= 500
    return isinstance(error, OSError | TimeoutError) or type(error).__module__.startswith(("httpx", "httpcore"))


def _verify_cached(source: PublishedSource, file: PublishedFile, cached: Path) -> None:
    """Compare the cached file with the declared sha256; on mismatch remove the cache's copy and raise."""
    actual = file_digest(cached, "sha256")
    if actual == file.sha256:
        return
    blob = cached.resolve()
    cached.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    raise DownloadError(
        f"{source.origin}/{file.name}: sha256 mismatch: the source declares {file.sha256}, the downloaded file has "
        f"{actual}; the download was deleted"
    )


def _place(cached: Path, dest: Path) -> None:
    """Hard-link (or copy) the verified cache file onto ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(cached.resolve(), tmp)
        except OSError:
            shutil.copyfile(cached.resolve(), tmp)


def _offline_hint(source: PublishedSource, file: PublishedFile, dest: Path) -> str:
    """What to do where this machine cannot reach the source: the exact file, digest and path to place."""
    if source.repo is None:
        where = file.url
    else:
        from huggingface_hub import hf_hub_url

        where = hf_hub_url(source.repo, file.name, revision=source.revision)
    return (
        f"Without network access, download {where} elsewhere, check that its sha256 is {file.sha256}, and place it "
        f"at {dest.resolve()} (or set the backbone's weights option to a local path)."
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
