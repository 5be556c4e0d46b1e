"""A tiny HTTP server on 127.0.0.1, in a thread, serving byte strings with Range support and scripted faults."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Site:
    """What the server serves, and a log of the requests it received.

    ``files`` maps a URL path (``/a.zip``) to its bytes; ``cut_once`` holds paths whose first plain GET sends
    the full ``Content-Length`` but only half the body before closing the connection; ``failures`` maps a
    path to a number of ``503`` answers to give before serving it.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            site.requests.append((self.path, range_header))
            body = site.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if site.failures.get(self.path, 0) > 0:
                site.failures[self.path] -= 1
                self.send_error(503)
                return
            start = 0
            if range_header:
                start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = not range_header and self.path in site.cut_once
            site.cut_once -= {self.path} if cut else set()
            send_body(self, body, start, cut)

    return Handler


def send_body(handler: BaseHTTPRequestHandler, body: bytes, start: int, cut: bool) -> None:
    """Write ``body`` from ``start``; ``cut`` sends half of it and closes, as a dropped connection would."""
    if cut:
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return
    handler.wfile.write(body[start:])


@contextmanager
def running_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread for the duration of the block; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve(site: Site) -> Iterator[Site]:
    """Run the server for the duration of the block; ``site.base_url`` is set to ``http://127.0.0.1:PORT``."""
    with running_server(_handler(site)) as base_url:
        site.base_url = base_url
        yield site
