"""Atomic writes: a file appears complete or not at all.

Writing goes to a temporary file in the destination folder, which is renamed into place, so an interrupted job
never leaves a half-written file that looks complete to Snakemake or to a person. Kept apart from
:mod:`audiorec.storage.tables` (Parquet) so that light modules, such as downloads, can write atomically too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder so that the final ``os.replace`` is atomic on POSIX file
    systems. On error the temporary file is removed and ``path`` is left untouched. Temporaries that killed
    writers left behind (``SIGKILL`` runs no cleanup) are removed first, see :func:`remove_abandoned_temporaries`.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(final)
    fd, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _host_prefix(final: Path) -> str:
    return f".{final.name}.{socket.gethostname()}."


def _temporary_prefix(final: Path) -> str:
    """``.NAME.HOST.PID.``: hidden, and says which process on which machine is writing it."""
    return f"{_host_prefix(final)}{os.getpid()}."


def remove_abandoned_temporaries(final: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries of ``final`` whose writer, a process on this machine, no longer exists.

    A job killed outright (``SIGKILL`` after a wall-time limit's grace period, the OOM killer) leaves its
    partial file behind; for an embeddings table that can be gigabytes, so the next write of the same output
    clears it. Temporaries of live processes, and of other machines sharing the folder, are left alone.
    Returns the deleted paths.
    """
    final = Path(final)
    prefix = _host_prefix(final)
    removed = []
    for candidate in final.parent.glob(glob.escape(prefix) + "*.tmp"):
        pid = candidate.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
