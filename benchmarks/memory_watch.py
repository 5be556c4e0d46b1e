"""A watchdog for benchmark children: stop one whose resident memory outgrows a limit, and say that it did.

A child that would need more memory than the machine has is recorded as "did not fit" instead of taking the
machine (and the benchmark) down with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


@contextmanager
def memory_watchdog(pid: int, limit_gb: float, every_s: float = 0.2) -> Iterator[threading.Event]:
    """Poll process ``pid`` while the block runs and kill it above ``limit_gb``; yields the event set if it did."""
    done, stopped = threading.Event(), threading.Event()

    def watch() -> None:
        monitor = psutil.Process(pid)
        while not done.wait(every_s):
            try:
                if monitor.memory_info().rss > limit_gb * 2**30:
                    stopped.set()
                    monitor.kill()
                    return
            except psutil.NoSuchProcess:
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield stopped
    finally:
        done.set()
        thread.join()
