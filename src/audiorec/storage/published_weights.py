"""Published weights: where each shipped architecture's checkpoint comes from, pinned and checksummed.

A pretrained backbone's ``weights`` option takes one of:

* a local path (a checkpoint file or a Hugging Face-format folder), read as it is;
* ``published``, the default published source of the backbone's ``kind`` and ``size`` (what an omitted
  ``weights`` means too, when the size has one), or ``published:<name>`` for another entry of
  ``resources/backbones/published.yaml`` (e.g. MusicFM's FMA checkpoint);
* ``random``, the seeded random initialisation the untrained references and benchmarks use;
* a mapping of the same layout as a registry entry, for weights the registry does not list.

A published source is a Hugging Face repository at a **pinned commit** (a branch name could move under a
finished paper) or plain URLs, and names every file it needs with its sha256 and size. The workflow's
``download_weights`` rule fetches each file into ``resources/weights/<source>/`` (see
:mod:`audiorec.storage.weights_fetch`); the extraction jobs read only that verified local copy. This module imports
neither torch nor a network client, so the workflow resolves sources while it builds its DAG.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from audiorec.errors import ParameterError

REGISTRY = Path(__file__).resolve().parents[3] / "resources" / "backbones" / "published.yaml"
"""The shipped registry of published sources (the package is installed in editable mode from the source tree)."""

WEIGHTS_ROOT = "resources/weights"
"""Where published weights land, relative to the workflow's working directory: ``{root}/{source}/{file}``."""

PUBLISHED = "published"
RANDOM = "random"

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class PublishedFile:
    """One file of a source: its name in the repository (or the name it lands under), checksum and size."""

    name: str
    sha256: str
    size: int | None = None
    url: str | None = None
    """For URL sources: where the file is served (Hugging Face files are addressed by repo, revision and name)."""


@dataclass(frozen=True)
class PublishedSource:
    """A checkpoint as its authors published it; see the module docstring.

    Attributes
    ----------
    name
        The source's name: its registry key, or the backbone's name for a source declared in a config.
    files
        Every file the backbone reads, in the order they are listed.
    repo, revision
        The Hugging Face repository and the commit (40 hexadecimal digits) its files are taken from; both
        None for a source of plain URLs.
    weights
        What the backbone's ``weights`` option becomes, relative to the source's folder (``.``: the folder).
    options
        Further backbone options the source sets, with file names relative to its folder (MusicFM's
        ``stats`` JSON); a backbone's own option of the same name wins.
    """

    name: str
    files: tuple[PublishedFile, ...]
    repo: str | None = None
    revision: str | None = None
    weights: str = "."
    options: Mapping[str, str] | None = None
    backbone: str | None = None
    size: str | None = None
    description: str = ""

    @property
    def folder(self) -> str:
        """Where the files land, relative to the working directory."""
        return f"{WEIGHTS_ROOT}/{self.name}"

    def local_path(self, file: str) -> str:
        return f"{self.folder}/{file}"

    def local_files(self) -> list[str]:
        return [self.local_path(file.name) for file in self.files]

    def file(self, name: str) -> PublishedFile:
        for file in self.files:
            if file.name == name:
                return file
        raise ParameterError(f"published weights {self.name!r} declare no file {name!r}; they declare {self.names}")

    @property
    def names(self) -> list[str]:
        return [file.name for file in self.files]

    @property
    def origin(self) -> str:
        """``repo@revision`` or the URLs, for messages and table metadata."""
        if self.repo is not None:
            return f"{self.repo}@{self.revision}"
        return ", ".join(str(file.url) for file in self.files)

    def expected_files(self) -> dict[str, Any]:
        """The origin and every local file's sha256: what an extraction job checks before loading."""
        return {"origin": self.origin, "files": {self.local_path(f.name): f.sha256 for f in self.files}}

    def as_entry(self) -> dict[str, Any]:
        """The declaration :func:`parse_source` reads back: how the source reaches rule ``download_weights``."""
        files = {
            f.name: {key: value for key, value in (("sha256", f.sha256), ("size", f.size), ("url", f.url)) if value}
            for f in self.files
        }
        entry: dict[str, Any] = {"files": files, "weights": self.weights, "options": dict(self.options or {})}
        if self.repo is not None:
            entry |= {"repo": self.repo, "revision": self.revision}
        return entry

    def resolved_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The backbone's options with ``weights`` (and the source's own options) pointing at the local copy."""
        weights = self.folder if self.weights in (".", "") else self.local_path(self.weights)
        resolved = {**{key: self.local_path(value) for key, value in (self.options or {}).items()}, **options}
        resolved["weights"] = weights
        return resolved


def parse_source(name: str, entry: Mapping[str, Any], where: str) -> PublishedSource:
    """Check one source's declaration (registry entry or config mapping) and build it.

    Raises
    ------
    ParameterError
        Naming ``where`` and the problem: an unpinned revision (with the reason it must be pinned), a missing
        or malformed sha256, an unsafe file name, a URL that is not HTTP(S), unknown keys.
    """
    if not isinstance(entry, Mapping):
        raise ParameterError(f"{where}: a published source is a mapping, got {entry!r}")
    if not _SOURCE_NAME.fullmatch(name):
        raise ParameterError(f"{where}: source name {name!r} must be letters, digits, '.', '_' or '-'")
    known = {"repo", "revision", "files", "weights", "options", "backbone", "size", "description"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    repo, revision = entry.get("repo"), entry.get("revision")
    if repo is not None:
        if not isinstance(repo, str) or not _REPO_ID.fullmatch(repo):
            raise ParameterError(f"{where}: repo must be a Hugging Face id 'owner/name', got {repo!r}")
        if not isinstance(revision, str) or not _COMMIT.fullmatch(revision):
            raise ParameterError(
                f"{where}: revision must be a full commit hash (40 hexadecimal digits), got {revision!r}: a branch "
                "or tag can move to other weights after a paper's numbers were made, so sources are pinned"
            )
    elif revision is not None:
        raise ParameterError(f"{where}: revision is for Hugging Face sources; this source has no repo")
    files = entry.get("files")
    if not isinstance(files, Mapping) or not files:
        raise ParameterError(f"{where}: files must map each file name to its sha256 (and size, or url)")
    parsed = tuple(_parse_file(file, spec, repo is not None, f"{where}.files.{file}") for file, spec in files.items())
    weights = entry.get("weights", ".")
    options = entry.get("options") or {}
    for option, value in {"weights": weights, **options}.items():
        if not isinstance(value, str) or (value not in (".", "") and value not in files):
            raise ParameterError(f"{where}: {option} must name one of its files ({list(files)}) or '.', got {value!r}")
    return PublishedSource(
        name=name,
        files=parsed,
        repo=repo,
        revision=revision,
        weights=weights,
        options=dict(options),
        backbone=entry.get("backbone"),
        size=None if entry.get("size") is None else str(entry["size"]),
        description=str(entry.get("description", "")),
    )


def _parse_file(name: Any, spec: Any, from_hub: bool, where: str) -> PublishedFile:
    path = PurePosixPath(str(name))
    if not isinstance(name, str) or path.is_absolute() or ".." in path.parts or str(path) != name or name == ".":
        raise ParameterError(f"{where}: a file name must be a relative path inside the source, got {name!r}")
    if not isinstance(spec, Mapping):
        raise ParameterError(f"{where}: give its sha256 (and size or url) as a mapping, got {spec!r}")
    unknown = sorted(set(spec) - {"sha256", "size", "url"})
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {unknown}; known keys are ['sha256', 'size', 'url']")
    sha256 = spec.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise ParameterError(f"{where}: sha256 must be 64 hexadecimal digits (quoted), got {sha256!r}")
    size = spec.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ParameterError(f"{where}: size must be a number of bytes, got {size!r}")
    url = spec.get("url")
    if from_hub and url is not None:
        raise ParameterError(f"{where}: a Hugging Face source addresses files by repo and revision, not url")
    if not from_hub and (not isinstance(url, str) or not url.lower().startswith(("http://", "https://"))):
        raise ParameterError(f"{where}: a source without repo needs an http(s) url for every file, got {url!r}")
    return PublishedFile(name=name, sha256=sha256.lower(), size=size, url=url)


@cache
def registry(path: str = str(REGISTRY)) -> dict[str, PublishedSource]:
    """Every source of the shipped registry, by name (read once per process)."""
    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(f"published weights registry {path} is not readable YAML: {error}") from error
    sources = entries.get("sources") if isinstance(entries, Mapping) else None
    if not isinstance(sources, Mapping):
        raise ParameterError(f"published weights registry {path} must hold a 'sources' mapping")
    return {name: parse_source(name, entry, f"{path}: {name}") for name, entry in sources.items()}


def default_source(kind: str, size: str | None) -> PublishedSource | None:
    """The first registry entry for this backbone kind and size (case-insensitive), or None."""
    if size is None:
        return None
    for source in registry().values():
        if source.backbone == kind and (source.size or "").lower() == str(size).lower():
            return source
    return None


def resolve_weights(backbone: str, kind: str, options: Mapping[str, Any]) -> PublishedSource | None:
    """The published source a backbone's ``weights`` option asks for, or None for local or random weights.

    Raises
    ------
    ParameterError
        When ``published`` names no source for the kind and size (the message lists the sources there are and
        the two other ways: a local path, or ``random``), or a named source belongs to another kind.
    """
    where = f"backbones.{backbone}.options.weights"
    weights = options.get("weights")
    size = options.get("size")
    if isinstance(weights, Mapping):
        return parse_source(backbone, weights, where)
    if weights is None:
        return default_source(kind, size)
    if not isinstance(weights, str) or not (weights == PUBLISHED or weights.startswith(f"{PUBLISHED}:")):
        return None
    if weights == PUBLISHED:
        source = default_source(kind, size)
        if source is None:
            raise ParameterError(
                f"{where}: no published source for {kind} size {size!r}; published sources are "
                f"{_listing()}. Give a local path, 'random', or a source mapping (repo, revision, files)"
            )
        return source
    name = weights.split(":", 1)[1]
    source = registry().get(name)
    if source is None:
        raise ParameterError(f"{where}: no published source {name!r}; published sources are {_listing()}")
    if source.backbone != kind:
        raise ParameterError(f"{where}: published source {name!r} holds {source.backbone} weights, not {kind}")
    return source


def resolve_backbone(backbone: str, kind: str, options: Mapping[str, Any]) -> tuple[PublishedSource | None, dict]:
    """The published source a backbone's options ask for (or None), and the options it is built from.

    Published weights become their local copy (with the source's own options, such as MusicFM's statistics, where
    the backbone sets none); ``random`` becomes no weights; a local path stays as it is.
    """
    source = resolve_weights(backbone, kind, options)
    others = {key: value for key, value in options.items() if key != "weights"}
    if source is not None:
        return source, source.resolved_options(others)
    return None, others if options.get("weights") == RANDOM else dict(options)


def _listing() -> list[str]:
    return [f"{name} ({source.backbone} {source.size})" for name, source in registry().items()]


def verify_local_copy(files: Mapping[str, str], origin: str) -> None:
    """Check every local file of a published source against its sha256 before a backbone loads it.

    Rule ``download_weights`` verifies what it fetches, but a file placed by hand (an offline cluster) never
    went through it. A verified digest is remembered beside the file (``.NAME.sha256``, keyed by size and
    modification time), so the extraction shards of one backbone hash a multi-gigabyte checkpoint once.

    Raises
    ------
    ParameterError
        Naming the file, the source and both digests, or the missing file and where it should be.
    """
    for path, expected in files.items():
        local = Path(path)
        if not local.is_file():
            raise ParameterError(
                f"published weights file {local} ({origin}) is missing: run the workflow's download_weights rule, "
                f"or place the file there by hand (sha256 {expected})"
            )
        actual = _remembered_sha256(local)
        if actual != expected:
            raise ParameterError(
                f"published weights file {local} ({origin}) has sha256 {actual}, but the source declares "
                f"{expected}: delete it and fetch it again"
            )


def _remembered_sha256(path: Path) -> str:
    stat = path.stat()
    key = f"{stat.st_size} {stat.st_mtime_ns}"
    record = path.with_name(f".{path.name}.sha256")
    try:
        remembered_key, digest = record.read_text(encoding="utf-8").rsplit(" ", 1)
        if remembered_key == key:
            return digest.strip()
    except (OSError, ValueError):
        pass
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    try:
        temporary = record.with_name(f"{record.name}.{os.getpid()}")
        temporary.write_text(f"{key} {digest}", encoding="utf-8")
        os.replace(temporary, record)
    except OSError:
        pass  # a read-only folder: the file is simply hashed again next time
    return digest
