"""benchmarks/gpu_check.py, the one command run on a lent GPU machine, must work when it finally gets one.

Its ``--tiny`` mode runs every section's code on the CPU at tiny sizes; here it runs as the GPU command would (a
subprocess), and its JSON must hold every section's figures, finite and positive. The budget and failure handling
are checked in-process with stand-in sections.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))

import gpu_check  # noqa: E402


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, str(SCRIPT), "--tiny", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [path.name for path in out.iterdir()] == ["gpu_check_tiny.json"]
    return json.loads((out / "gpu_check_tiny.json").read_text())


def test_tiny_run_records_the_machine_and_the_command(tiny_report):
    assert tiny_report["tiny"] is True and tiny_report["budget_s"] == 480.0
    assert "gpu_check.py --tiny --out" in tiny_report["command"]
    environment = tiny_report["environment"]
    assert environment["card"] == "cpu" and environment["peak_bf16_tflops"] is None
    assert environment["torch"] and "driver" in environment and "cuda" in environment
    assert positive(tiny_report["wall_s"])
    assert list(tiny_report["sections"]) == ["extraction", "bert4rec", "knn", "precision", "journal"]
    for name, section in tiny_report["sections"].items():
        assert section["status"] == "ok", (name, section.get("error"), section.get("where"))
        assert positive(section["wall_s"]) and positive(section["budget_s"])
        assert section["wall_s"] <= section["budget_s"]


def test_tiny_extraction_figures_are_finite_and_positive(tiny_report):
    extraction = tiny_report["sections"]["extraction"]
    for kind in ("mert", "jukebox"):
        figures = extraction[kind]
        for key in ("clips_per_s", "audio_seconds_per_s", "flops_per_clip", "achieved_tflops", "parameters"):
            assert positive(figures[key]), (kind, key, figures[key])
        assert figures["audio_seconds_per_s"] == pytest.approx(figures["clips_per_s"] * figures["clip_seconds"])
        assert figures["achieved_tflops"] == pytest.approx(figures["flops_per_clip"] * figures["clips_per_s"] / 1e12)
        assert figures["fraction_of_bf16_peak"] is None  # no known peak on a CPU
    assert extraction["jukebox"]["size"] == "tiny-2-blocks"


def test_tiny_bert4rec_and_knn_figures_are_finite_and_positive(tiny_report):
    bert4rec = tiny_report["sections"]["bert4rec"]
    for key in ("epoch_train_s", "epoch_validation_s", "peak_memory_gb", "batches", "train_pairs", "sequences_per_s"):
        assert positive(bert4rec[key]), (key, bert4rec[key])
    assert bert4rec["batches"] == math.ceil(bert4rec["users"] / bert4rec["batch_size"])
    assert math.log(bert4rec["items"]) / 2 < bert4rec["train_loss"] < 2 * math.log(bert4rec["items"])  # about chance
    knn = tiny_report["sections"]["knn"]
    for dim in (16, 48):
        exact = knn[f"exact_{dim}"]
        assert exact["dim"] == dim and all(positive(exact[key]) for key in ("seconds", "users_per_s", "score_tflops"))
        faiss = knn[f"faiss_{dim}"]
        assert faiss["status"] in ("ok", "not available"), faiss
        if faiss["status"] == "ok":
            assert positive(faiss["flat_seconds"]) and positive(faiss["ivf_seconds"])
            assert 0 < faiss["ivf_recall_of_flat"] <= 1


def test_tiny_journal_epochs_train_every_kind_once(tiny_report):
    journal = tiny_report["sections"]["journal"]
    assert set(journal) == {"elsa", "hybrid", "bimodal", "status", "budget_s", "wall_s"}
    for kind in ("elsa", "hybrid", "bimodal"):
        figures = journal[kind]
        for key in ("epoch_train_s", "epoch_validation_s", "peak_memory_gb", "batches", "train_pairs"):
            assert positive(figures[key]), (kind, key, figures[key])
        assert figures["width"] == 16 and math.isfinite(figures["train_loss"])
    assert journal["elsa"]["batches"] == math.ceil(journal["elsa"]["users"] / 128)  # ELSA's batches of 128 users
    assert journal["bimodal"]["batch_size"] == 256


def test_tiny_precision_drift_is_measured_against_float32(tiny_report):
    precision = tiny_report["sections"]["precision"]
    if precision.get("availability") == "not available":
        pytest.skip(precision["reason"])
    drift = precision["mert"]
    assert list(drift) == ["float32", "bf16", "fp16", "tf32"]
    assert drift["float32"]["cosine_vs_float32"] == pytest.approx(1.0)
    for figures in drift.values():
        assert 0.99 < figures["cosine_vs_float32"] <= 1 + 1e-9 and positive(figures["seconds_per_clip"])
    assert drift["bf16"]["relative_error_vs_float32"] > 0  # bf16 really ran (the check allows it on the CPU)


def test_a_failing_section_is_recorded_and_the_next_still_runs(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("CUDA out of memory (stand-in)")

    def slow(sizes, device, budget, out, scratch):
        out["measured_before_the_budget_ran_out"] = 1.5
        while True:
            try:  # a model's own failure handling must not swallow the section's timeout
                time.sleep(0.01)
            except Exception:
                out["timeout_swallowed"] = True

    def fine(sizes, device, budget, out, scratch):
        out["budget_seen"] = budget

    monkeypatch.setattr(gpu_check, "SECTIONS", {"extraction": broken, "bert4rec": slow, "knn": fine})
    monkeypatch.setattr(gpu_check, "environment", lambda device: {"card": "cpu", "peak_bf16_tflops": None})
    started = time.perf_counter()
    assert gpu_check.main(["--tiny", "--out", str(tmp_path), "--budget-s", "4", "--sections", *gpu_check.SECTIONS]) == 0
    assert time.perf_counter() - started < 10
    sections = json.loads((tmp_path / "gpu_check_tiny.json").read_text())["sections"]
    assert sections["extraction"]["status"] == "error"
    assert sections["extraction"]["error"] == "RuntimeError: CUDA out of memory (stand-in)"
    assert sections["bert4rec"]["status"] == "error" and "SectionTimeout" in sections["bert4rec"]["error"]
    assert sections["bert4rec"]["measured_before_the_budget_ran_out"] == 1.5
    assert "timeout_swallowed" not in sections["bert4rec"]
    assert sections["bert4rec"]["wall_s"] == pytest.approx(sections["bert4rec"]["budget_s"], abs=0.5)
    assert sections["knn"]["status"] == "ok" and sections["knn"]["budget_seen"] > 0


def test_a_section_without_budget_left_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "SECTIONS", {"knn": lambda *args: None})
    monkeypatch.setattr(gpu_check, "environment", lambda device: {"card": "cpu", "peak_bf16_tflops": None})
    gpu_check.main(["--tiny", "--out", str(tmp_path), "--budget-s", "0.5", "--sections", "knn"])
    knn = json.loads((tmp_path / "gpu_check_tiny.json").read_text())["sections"]["knn"]
    assert knn["status"] == "skipped" and knn["reason"] == "--budget-s spent"


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L4", None),
    ],
)
def test_peak_is_looked_up_by_card_name(name, peak):
    assert gpu_check.peak_tflops(name) == peak


def test_result_file_is_named_after_the_card():
    assert gpu_check.card_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
