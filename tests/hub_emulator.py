"""A stand-in for the Hugging Face Hub's file endpoints on 127.0.0.1, for download tests without the internet.

It answers ``HEAD`` and ``GET`` of ``/{owner}/{name}/resolve/{revision}/{file}`` the way the Hub does for a
file stored in LFS: ``X-Repo-Commit``, ``X-Linked-Etag`` (the content's SHA-256), ``X-Linked-Size``, range
requests, and ``X-Error-Code`` on a 404, which ``huggingface_hub`` turns into its typed errors. Point
``HF_ENDPOINT`` at :attr:`Hub.endpoint`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from loopback import running_server, send_body

_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)")


@dataclass
class Hub:
    """Repositories by ``(repo, commit)``, each a mapping of file name to bytes, and a log of the requests.

    ``cut_once`` holds file names whose first full ``GET`` announces the whole length but sends half the body
    before closing; ``failures`` maps a file name to a number of ``503`` answers to give first.
    """

    repos: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    endpoint: str = ""

    def lookup(self, repo: str, revision: str, name: str) -> tuple[bytes | None, str | None]:
        """The file's bytes, or None with the Hub's error code."""
        commits = [files for (owner, _), files in self.repos.items() if owner == repo]
        if not commits:
            return None, "RepoNotFound"
        files = self.repos.get((repo, revision))
        if files is None:
            return None, "RevisionNotFound"
        if name not in files:
            return None, "EntryNotFound"
        return files[name], None


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.answer(with_body=False)

        def do_GET(self) -> None:
            self.answer(with_body=True)

        def answer(self, with_body: bool) -> None:
            range_header = self.headers.get("Range")
            hub.requests.append((self.command, self.path, range_header))
            match = _RESOLVE.fullmatch(self.path)
            if match is None:
                self.send_error(404)
                return
            body, error = hub.lookup(match["repo"], match["revision"], match["file"])
            if body is None:
                self.send_response(404)
                self.send_header("X-Error-Code", error)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if with_body and hub.failures.get(match["file"], 0) > 0:
                hub.failures[match["file"]] -= 1
                self.send_error(503)
                return
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1)) if range_header else 0
            self.send_response(206 if range_header else 200)
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("X-Repo-Commit", match["revision"])
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(body)))
            self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if not with_body:
                return
            cut = not range_header and match["file"] in hub.cut_once
            hub.cut_once -= {match["file"]} if cut else set()
            send_body(self, body, start, cut)

    return Handler


@contextmanager
def serve_hub(hub: Hub) -> Iterator[Hub]:
    """Run the emulator for the duration of the block; ``hub.endpoint`` is set to ``http://127.0.0.1:PORT``."""
    with running_server(_handler(hub)) as base_url:
        hub.endpoint = base_url
        yield hub
