"""Job logs: a failed or stopped job ends its log with one line naming the stage, the output and the error."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from audiorec.storage.logs import FAILURE_PREFIX, PEAK_MEMORY_LINE, failure_line, termination_line


def run_job(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    """Start a Python process that logs like a workflow script, then runs ``body``."""
    code = textwrap.dedent(
        """
        import sys
        from audiorec.storage.logs import log_to
        log_to(sys.argv[1], "embed_shard", [sys.argv[2], sys.argv[2] + ".failures"])
        """
    ) + textwrap.dedent(body)
    log = tmp_path / "job.log"
    return subprocess.Popen(
        [sys.executable, "-c", code, str(log), str(tmp_path / "shard0.parquet")],
        stdout=subprocess.PIPE,
        text=True,
    )


def last_line(path: Path) -> str:
    return path.read_text().rstrip("\n").splitlines()[-1]


def test_failure_line_is_one_line_naming_stage_output_and_error():
    error = ValueError("results/demo/data/tracks.parquet: bad\n   column   'x'")
    line = failure_line("embed_shard (→ shard0.parquet)", error)
    assert line == (
        f"{FAILURE_PREFIX} embed_shard (→ shard0.parquet) failed: ValueError: "
        "results/demo/data/tracks.parquet: bad column 'x'"
    )
    assert len(failure_line("x", RuntimeError("y" * 5000))) < 700
    assert "stopped by SIGTERM" in termination_line("x", signal.SIGTERM) and "rerun" in termination_line("x", 15)


def test_uncaught_error_ends_the_log_with_its_summary(tmp_path):
    job = run_job(
        tmp_path,
        """
        from audiorec.errors import SchemaError
        raise SchemaError("results/demo/data/tracks.parquet: tracks table lacks column(s) ['audio_path']")
        """,
    )
    assert job.wait(timeout=60) == 1
    log = (tmp_path / "job.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert last_line(tmp_path / "job.log") == (
        f"{FAILURE_PREFIX} embed_shard (→ {tmp_path / 'shard0.parquet'} and 1 more) failed: SchemaError: "
        "results/demo/data/tracks.parquet: tracks table lacks column(s) ['audio_path']"
    )


def test_sigterm_unwinds_the_atomic_write_and_says_so(tmp_path):
    job = run_job(
        tmp_path,
        """
        import time
        from audiorec.storage.atomic import atomic_path
        with atomic_path(sys.argv[2]) as tmp:
            tmp.write_bytes(b"half a shard")
            print("writing", flush=True)
            time.sleep(60)
        """,
    )
    assert job.stdout.readline().strip() == "writing"
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert last_line(tmp_path / "job.log").startswith(f"{FAILURE_PREFIX} embed_shard (→ {tmp_path / 'shard0.parquet'}")
    assert "stopped by SIGTERM" in last_line(tmp_path / "job.log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log"]  # neither the output nor its temporary


def test_a_clean_exit_adds_nothing(tmp_path):
    job = run_job(tmp_path, "import logging; logging.getLogger('x').info('done')")
    assert job.wait(timeout=60) == 0
    assert FAILURE_PREFIX not in (tmp_path / "job.log").read_text()


def test_a_successful_job_ends_its_log_with_its_peak_memory(tmp_path):
    job = run_job(
        tmp_path,
        """
        import numpy as np
        block = np.ones(300 * 2**20 // 8)  # 300 MiB resident, freed before the job ends
        del block
        """,
    )
    assert job.wait(timeout=60) == 0
    line = last_line(tmp_path / "job.log")
    assert line.split(": ", 1)[1].startswith("peak resident memory: ")
    prefix = PEAK_MEMORY_LINE.split("{process:.3f}")[0]
    process = float(line.split(prefix, 1)[1].split(" GiB")[0])
    assert 0.3 < process < 2.0  # the freed block counts: it is the high-water mark, not the memory at exit
