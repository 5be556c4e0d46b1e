"""Training throughput of the paper's full-size contrastive encoder, against the CPU's (or GPU's) matmul rate.

Choi et al.'s encoder (channels 128-256-256-512-512, 128-d vectors, batch 32, siamese InfoNCE on 3-s segments) is
timed two ways in one run:

* **compute**: forward, backward and Adam step on a fixed batch of log-mel inputs already in memory, the ceiling
  the model can reach, as 3-s segments per second and as a fraction of the device's dense float32 matmul rate
  (measured here with a large ``torch.mm``; the encoder's FLOPs are counted with ``torch.utils.flop_counter``);
* **end to end**: :func:`audiorec.ssl.train` for one epoch on a synthetic collection of 30-s tracks, decoding,
  cropping (and, for the ``self`` positive, augmenting) in DataLoader workers, with 0 and 1 workers. The ratio of
  its segments per second to the compute figure says how long the model waits on data.

    python benchmarks/ssl_training.py                   # writes benchmarks/results/ssl_training.json
    python benchmarks/ssl_training.py --device cuda     # the same on a GPU (bf16 autocast is not used in training)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.flop_counter import FlopCounterMode

from audiorec.ssl import SSLConfig, SSLModel, train
from audiorec.ssl.features import N_MELS, SAMPLE_RATE, SEGMENT_FRAMES
from audiorec.ssl.trainer import pretext_loss
from audiorec.storage.atomic import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "ssl_training.json"
PAPER = {"channels": [128, 256, 256, 512, 512], "embedding_dim": 128, "batch_size": 32}
PAPER_TRACKS = 200_000
PAPER_EPOCHS = 100


def matmul_rate(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """Dense float32 FLOP/s of a ``size``-square ``torch.mm`` (the median of ``repeats``)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    times = []
    for _ in range(repeats + 1):
        _synchronise(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _synchronise(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times[1:])


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compute_throughput(config: SSLConfig, device: torch.device, steps: int, channels_last: bool) -> tuple[float, float]:
    """(3-s segments per second, FLOPs per step) of training steps on an in-memory batch."""
    model = SSLModel(config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    batch = torch.randn(config.batch_size, 2, SEGMENT_FRAMES, N_MELS, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        pretext_loss(model, batch).backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()  # warm-up
    _synchronise(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronise(device)
    seconds = (time.perf_counter() - start) / steps
    return 2 * config.batch_size / seconds, flops


def write_collection(folder: Path, n_tracks: int, seconds: float) -> list[Path]:
    """Deterministic 16-kHz mono FLAC tracks: a few harmonic notes over noise."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    paths = []
    for index in range(n_tracks):
        notes = rng.uniform(110, 880, size=3)
        mono = sum(np.sin(2 * np.pi * f * t) for f in notes) * 0.1 + rng.normal(0, 0.02, t.size)
        paths.append(folder / f"track{index:03d}.flac")
        sf.write(paths[-1], mono.astype(np.float32), SAMPLE_RATE)
    return paths


def end_to_end(config: SSLConfig, paths: list[Path], workers: int) -> float:
    """3-s segments per second of one epoch of :func:`audiorec.ssl.train` (input scan excluded)."""
    _, history = train(config, paths, num_workers=workers, progress=False)
    n_segments = 2 * config.batch_size * (len(paths) // config.batch_size)
    return n_segments / history.seconds[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed compute steps")
    parser.add_argument("--tracks", type=int, default=96, help="tracks of the end-to-end epoch (3 batches)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = SSLConfig.from_mapping({**PAPER, "loss": "infonce", "positive": "adjacent", "device": args.device})
    rate = matmul_rate(device)
    compute = {}
    for layout in ("contiguous", "channels_last"):
        segments_per_second, flops = compute_throughput(config, device, args.steps, layout == "channels_last")
        achieved = flops * segments_per_second / (2 * config.batch_size)
        compute[layout] = {
            "segments_per_second": segments_per_second,
            "flop_per_step": flops,
            "achieved_flop_per_second": achieved,
            "fraction_of_matmul_rate": achieved / rate,
        }
        print(f"compute ({layout}): {segments_per_second:.1f} segments/s, {achieved / rate:.1%} of the matmul rate")
    best = max(entry["segments_per_second"] for entry in compute.values())
    end_to_end_results = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = write_collection(Path(folder), args.tracks, 30.0)
        for positive in ("adjacent", "self"):
            options = {**PAPER, "loss": "infonce", "positive": positive, "epochs": 1, "device": args.device}
            for workers in (0, 1):
                value = end_to_end(SSLConfig.from_mapping(options), paths, workers)
                best = max(entry["segments_per_second"] for entry in compute.values())
                end_to_end_results[f"{positive}, {workers} workers"] = {
                    "segments_per_second": value,
                    "fraction_of_compute": value / best,
                }
                print(
                    f"end to end ({positive}, {workers} workers): {value:.1f} segments/s, {value / best:.0%} of compute"
                )
    best = max(entry["segments_per_second"] for entry in compute.values())
    projected = PAPER_TRACKS * PAPER_EPOCHS * 2 / best
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "load_average": os.getloadavg(),
        },
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__},
        "settings": {**PAPER, "loss": "infonce", "segment_frames": SEGMENT_FRAMES, "tracks": args.tracks},
        "matmul_flop_per_second": rate,
        "compute": compute,
        "end_to_end": end_to_end_results,
        "projected_paper_run_hours": projected / 3600,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(result, indent=2) + "\n", args.out)
    print(f"paper's run ({PAPER_TRACKS} tracks x {PAPER_EPOCHS} epochs) at the compute rate: {projected / 3600:.0f} h")


if __name__ == "__main__":
    main()
