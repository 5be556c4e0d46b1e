"""One command that checks a GPU machine end to end, with random weights, and writes one JSON of what it measured.

Five sections, each timed against a budget of its own (a share of ``--budget-s``, default 480 s), each recording
its error in the JSON instead of stopping the others:

1. ``extraction``: clips/s, seconds of audio per second, achieved TFLOP/s and its fraction of the card's dense
   bf16 peak, for MERT-v1-330M on 30-s clips (5-s windows) and for JukeMIR's Jukebox (VQ-VAE top encoder and
   the first 36 of the 5B prior's 72 blocks) on 25-s clips, through ``embed_batch`` as extraction jobs run it;
2. ``bert4rec``: one training epoch at the paper's settings (max length 300, hidden 1024 on frozen 1024-d items,
   softmax over 56k items) on a synthetic log of Music4All-Onion's size, through the workflow's trainer: seconds
   per epoch and peak GPU memory;
3. ``knn``: exact top-K of 17k users over 56k items at 768 and 4800 dimensions by ``top_k_inner_product``, and
   the FAISS backend where it is installed;
4. ``precision``: per backbone at full size, the cosine of bf16 / fp16 / tf32 track vectors against float32 and
   the time per clip of each, on the test fixtures' clips, by ``audiorec.backbones.precision``;
5. ``journal``: one epoch each of ELSA, the Hybrid and the Bimodal net at the journal version's settings on the
   same Onion-shaped log (``gpu_check_journal.py``): seconds of training and validation, peak GPU memory.

    python benchmarks/gpu_check.py                  # on one H100/H200: benchmarks/results/gpu_check_<card>.json
    python benchmarks/gpu_check.py --tiny --out /tmp  # the same code on the CPU at tiny sizes, in seconds

Nothing is downloaded: every model keeps its seeded random initialisation, whose speed is that of the trained one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpu_check_sections as sections
import torch
from gpu_check_journal import KINDS as JOURNAL_KINDS
from gpu_check_journal import journal_epoch

from audiorec.storage.atomic import write_text_atomic

RESULTS = Path(__file__).parent / "results"
FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"

DENSE_BF16_PEAK_TFLOPS = (("H200", None, 989.0), ("H100", "PCIe", 756.0), ("H100", "NVL", None), ("H100", None, 989.0))
DENSE_BF16_PEAK_TFLOPS += (("A100", None, 312.0),)
"""(name part, variant part, dense bf16 TFLOP/s from the vendor data sheets): the first row whose parts the device
name contains wins; a variant without a figure here (H100 NVL) and any other card get None."""

SHARES = {"extraction": 0.31, "bert4rec": 0.2, "knn": 0.12, "precision": 0.27, "journal": 0.1}
"""Each section's share of ``--budget-s``; what a section leaves unused goes to the ones after it."""

PRECISIONS = ("bf16", "fp16", "tf32")
PRECISION_BACKBONES = {
    "full": {
        "mert": {"size": "v1-330M"},
        "jukebox": {"size": "5b"},
        "musicnn": {},
        "music2vec": {"size": "v1"},
        "musicfm": {"size": "25hz"},
        "muq": {"size": "large"},
        "encodecmae": {"size": "base"},
        "muq_mulan": {"size": "large"},
    },
    "tiny": {"mert": {"size": "tiny"}},
}
"""Backbones of the precision section (random weights), at full size and in ``--tiny``."""


def peak_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak from its name, or None for a card this table does not know."""
    for name, variant, peak in DENSE_BF16_PEAK_TFLOPS:
        if name in device_name and (variant is None or variant in device_name):
            return peak
    return None


class SectionTimeout(BaseException):
    """A section ran past its budget: a BaseException, so that the ``except Exception`` that records one model's
    failure and moves on to the next cannot swallow it (the next would then run with no deadline)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, checked between Python operations)."""

    def expire(signum: int, frame: Any) -> None:
        raise SectionTimeout(f"stopped after its budget of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def environment(device: torch.device) -> dict[str, Any]:
    """The card, driver, CUDA and library versions the figures belong to."""
    import transformers

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type != "cuda":
        return info | {"card": "cpu", "driver": None, "peak_bf16_tflops": None}
    name = torch.cuda.get_device_name(device)
    driver = None
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        driver = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout.split()[0]
    memory = torch.cuda.get_device_properties(device).total_memory / 2**30
    return info | {"card": name, "driver": driver, "memory_gb": memory, "peak_bf16_tflops": peak_tflops(name)}


def card_slug(card: str) -> str:
    """``NVIDIA H100 80GB HBM3`` → ``nvidia-h100-80gb-hbm3``, for the result's file name."""
    return re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")


def run_extraction(sizes: sections.Sizes, device: torch.device, budget: float, out: dict, scratch: Path) -> None:
    """MERT-330M and Jukebox's 36 blocks in bf16, each measured for a part of the section's budget."""
    jukebox_size = sections.tiny_jukebox_config(scratch) if sizes is sections.TINY else sizes.jukebox_size
    models = {
        "mert": ({"size": sizes.mert_size}, sizes.mert_clip_s, sizes.mert_batch, 0.3),
        "jukebox": ({"size": jukebox_size}, sizes.jukebox_clip_s, sizes.jukebox_batch, 0.45),
    }
    peak = peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    for kind, (options, clip_s, batch, seconds_share) in models.items():
        started = time.perf_counter()
        try:
            backbone = sections.backbone_of(kind, {**options, "max_duration_s": clip_s, "precision": "bf16"}, device)
            built = time.perf_counter() - started
            seconds = min(budget * seconds_share, sizes.measure_s)
            figures = sections.extraction(backbone, clip_s, batch, seconds, peak)
            out[kind] = {"size": sizes.mert_size if kind == "mert" else sizes.jukebox_size, "build_s": built, **figures}
            del backbone
        except Exception as error:
            out[kind] = failure(error)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_bert4rec(sizes: sections.Sizes, device: torch.device, budget: float, out: dict, scratch: Path) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out.update(sections.bert4rec_epoch(sizes, device))


def run_knn(sizes: sections.Sizes, device: torch.device, budget: float, out: dict, scratch: Path) -> None:
    """Exact retrieval at every width first, then FAISS, so a slow FAISS search cannot hide the exact figures."""
    for backend, measure in (("exact", sections.knn), ("faiss", sections.faiss_knn)):
        for dim in sizes.knn_dims:
            try:
                out[f"{backend}_{dim}"] = measure(sizes, device, dim)
            except Exception as error:
                out[f"{backend}_{dim}"] = failure(error)


def run_precision(sizes: sections.Sizes, device: torch.device, budget: float, out: dict, scratch: Path) -> None:
    """Per backbone, float32 against each reduced precision, through ``measure_precision_drift``."""
    try:
        from audiorec.backbones.precision import measure_precision_drift
    except ImportError as error:
        out.update({"availability": "not available", "reason": f"{type(error).__name__}: {error}"})
        return
    for kind, options in PRECISION_BACKBONES["tiny" if sizes is sections.TINY else "full"].items():
        try:
            clips = sections.fixture_clips(FIXTURES, sections.sample_rate_of(kind, options), sizes.precision_clip_s)

            def factory(precision: str, kind: str = kind, options: dict = options) -> Any:
                backbone = sections.backbone_of(kind, {**options, "precision": precision}, device)
                # On the CPU (--tiny) bf16 and fp16 would silently be float32; run them, to test the path.
                backbone.reduced_precision_on_cpu = device.type == "cpu"
                return backbone

            out[kind] = measure_precision_drift(factory, clips, PRECISIONS)
        except Exception as error:
            out[kind] = failure(error)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_journal(sizes: sections.Sizes, device: torch.device, budget: float, out: dict, scratch: Path) -> None:
    """ELSA, the Hybrid and the Bimodal net, one epoch each; a kind that fails does not stop the next."""
    for kind in JOURNAL_KINDS:
        try:
            out[kind] = journal_epoch(kind, sizes, device)
        except Exception as error:
            out[kind] = failure(error)
        if device.type == "cuda":
            torch.cuda.empty_cache()


SECTIONS: dict[str, Callable[..., None]] = {
    "extraction": run_extraction,
    "bert4rec": run_bert4rec,
    "knn": run_knn,
    "precision": run_precision,
    "journal": run_journal,
}


def failure(error: BaseException) -> dict[str, str]:
    """How a failed measurement is recorded: its error and where it came from."""
    return {"status": "error", "error": f"{type(error).__name__}: {error}", "where": traceback.format_exc(limit=-3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU: a check of the script itself")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall time of all sections (default 480)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON (default benchmarks/results)")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: gpu_check needs a CUDA GPU (--tiny checks the script on the CPU)", file=sys.stderr)
        return 2
    sizes = sections.TINY if args.tiny else sections.FULL
    started = time.perf_counter()
    env = environment(device)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tiny": args.tiny,
        "budget_s": args.budget_s,
        "environment": env,
        "sections": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for position, name in enumerate(args.sections):
            left = args.budget_s - (time.perf_counter() - started)
            later = sum(SHARES[other] for other in args.sections[position:])
            budget = left * SHARES[name] / later
            section_started = time.perf_counter()
            if budget < 1.0:
                report["sections"][name] = {"status": "skipped", "reason": "--budget-s spent", "budget_s": budget}
                continue
            figures: dict[str, Any] = {}  # filled as the section goes, so a timeout keeps what it measured
            try:
                with deadline(budget):
                    SECTIONS[name](sizes, device, budget, figures, Path(scratch))
                record = {"status": "ok", **figures}
            except (Exception, SectionTimeout) as error:  # a failed section is recorded, the next one runs
                record = {**figures, **failure(error)}
            record |= {"budget_s": budget, "wall_s": time.perf_counter() - section_started}
            report["sections"][name] = record
            print(f"{name}: {record['status']} in {record['wall_s']:.1f} s", file=sys.stderr)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    report["wall_s"] = time.perf_counter() - started
    path = args.out / f"gpu_check_{'tiny' if args.tiny else card_slug(env['card'])}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(report, indent=2, default=str) + "\n", path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
