"""Atomic writes after a writer was killed outright: its partial file is never taken for the output, and goes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import polars as pl

from audiorec.storage.atomic import remove_abandoned_temporaries
from audiorec.storage.tables import read_table, write_table

WRITER = textwrap.dedent(
    """
    import sys, time
    from audiorec.storage.atomic import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half an embeddings table")
        print(tmp, flush=True)
        time.sleep(60)
    """
)


def test_sigkilled_writer_leaves_only_a_hidden_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "mfcc.parquet"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    temporary = writer.stdout.readline().strip()
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(temporary)]
    assert temporary.startswith(f"{tmp_path}/.mfcc.parquet.{socket.gethostname()}.{writer.pid}.")

    write_table(pl.DataFrame({"track_id": ["a"]}), target)
    assert [p.name for p in tmp_path.iterdir()] == ["mfcc.parquet"]
    assert read_table(target)["track_id"].to_list() == ["a"]


def test_temporaries_of_live_writers_other_machines_and_other_outputs_are_kept(tmp_path):
    host = socket.gethostname()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    abandoned = tmp_path / f".out.parquet.{host}.{dead}.x0.tmp"
    live = tmp_path / f".out.parquet.{host}.{os.getpid()}.x1.tmp"
    other_machine = tmp_path / f".out.parquet.another-node.{dead}.x2.tmp"
    other_output = tmp_path / f".out.parquet.bak.{host}.{dead}.x3.tmp"
    for path in (abandoned, live, other_machine, other_output):
        path.write_bytes(b"partial")
    assert remove_abandoned_temporaries(tmp_path / "out.parquet") == [abandoned]
    assert live.exists() and other_machine.exists() and other_output.exists()
