"""Send a workflow script's stderr and the library's log records to the rule's declared log file.

Done before heavy imports, so that a failing import or a traceback also lands in the log Snakemake points
the user to (``--show-failed-logs``).
"""

from __future__ import annotations

import logging
import sys


def log_to(path: str) -> None:
    """Redirect ``sys.stderr`` (tracebacks, tqdm bars) and ``logging`` to ``path``."""
    stream = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives for the whole job
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
