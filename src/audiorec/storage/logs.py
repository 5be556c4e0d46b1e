"""Send a workflow script's stderr and the library's log records to the rule's declared log file.

Done before heavy imports, so that a failing import or a traceback also lands in the log Snakemake points
the user to (``--show-failed-logs``). A job that fails, or that the scheduler stops (``SIGTERM`` at a
wall-time limit, ``scancel``, Ctrl-C), ends its log with one line a person can act on without reading the
traceback above it: which stage, which output it was producing, and what went wrong. A job that succeeds ends
it with its peak resident memory, the kernel's high-water mark: Snakemake's ``benchmark:`` files sample memory
every 30 s after a job's first 30 s, so they miss short peaks (a training step's loss) in long jobs.
"""

from __future__ import annotations

import atexit
import logging
import os
import resource
import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType, TracebackType

FAILURE_PREFIX = "audiorec:"
"""Start of the one-line summary that ends the log of a failed or stopped job (easy to grep for)."""

MAX_MESSAGE_CHARS = 600

PEAK_MEMORY_LINE = "peak resident memory: {process:.3f} GiB (largest child process: {child:.3f} GiB)"
"""How a successful job's log ends; ``benchmarks/onion_scale_parts.py`` reads it back."""

log = logging.getLogger(__name__)


def log_to(path: str, stage: str | None = None, outputs: Sequence[str] = ()) -> None:
    """Redirect ``sys.stderr`` (tracebacks, tqdm bars) and ``logging`` to ``path``, and summarise failures.

    Parameters
    ----------
    path
        The rule's log file (``snakemake.log[0]``).
    stage
        The stage (rule) name the summary line names, ``snakemake.rule`` in a workflow script.
    outputs
        The files the job produces (``snakemake.output``); the summary names the first of them.
    """
    stream = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives for the whole job
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    what = _job_description(stage, [str(output) for output in outputs])
    ended_badly: list[bool] = []
    sys.excepthook = _summarising_excepthook(what, ended_badly)
    _stop_cleanly_on_termination(what, ended_badly)
    owner = os.getpid()

    def report_peak_memory() -> None:
        """After a success only (a failure's summary stays the last line), in the job's own process only."""
        if not ended_badly and os.getpid() == owner:
            log.info(peak_memory_line())

    atexit.register(report_peak_memory)


def peak_memory_line() -> str:
    """This process's and its largest finished child's peak resident memory, in GiB."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return PEAK_MEMORY_LINE.format(process=own_peak_gib(), child=child)


def own_peak_gib() -> float:
    """The process's high-water mark since it started its program: ``VmHWM`` where Linux reports it.

    ``ru_maxrss`` is not that: Linux carries it across ``exec``, so a job started from a large process (Snakemake,
    pytest) would report at least its parent's size. It is the fallback elsewhere (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def failure_line(what: str, error: BaseException) -> str:
    """One line saying which job failed and why, e.g. ``audiorec: embed_shard (→ shard0.parquet) failed: ...``.

    Library errors name the offending file in their message, so type and message are enough to act on.
    """
    message = " ".join(str(error).split()) or "(no message)"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return f"{FAILURE_PREFIX} {what} failed: {type(error).__name__}: {message}"


def termination_line(what: str, signum: int) -> str:
    """One line saying the job was stopped from outside, and that rerunning resumes it."""
    name = signal.Signals(signum).name
    return (
        f"{FAILURE_PREFIX} {what} stopped by {name} (wall-time limit, scancel or Ctrl-C); "
        "its output was not written, finished jobs are kept, rerun to resume"
    )


def _job_description(stage: str | None, outputs: list[str]) -> str:
    label = stage or "job"
    if not outputs:
        return label
    more = f" and {len(outputs) - 1} more" if len(outputs) > 1 else ""
    return f"{label} (→ {outputs[0]}{more})"


def _summarising_excepthook(what: str, ended_badly: list[bool]):
    """Print the traceback as Python would, then the summary line as the log's last line."""

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        ended_badly.append(True)
        traceback.print_exception(kind, error, tb, file=sys.stderr)
        if isinstance(error, KeyboardInterrupt):
            line = termination_line(what, signal.SIGINT)
        else:
            line = failure_line(what, error)
        print(line, file=sys.stderr, flush=True)

    return hook


def _stop_cleanly_on_termination(what: str, ended_badly: list[bool]) -> None:
    """Turn ``SIGTERM`` into ``SystemExit(143)`` in this process, so ``finally`` blocks run.

    Unwinding removes the temporary file of a half-done atomic write and leaves a summary line; the exit
    status stays the conventional 128 + signal number. Forked children (decoding workers) inherit the
    handler but keep the default behaviour, so only the job's main process reports.
    """
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        ended_badly.append(True)
        print(termination_line(what, signum), file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
