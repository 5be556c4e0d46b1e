"""CPU extraction throughput: the engine (:func:`audiorec.extraction.embed.extract`) against a naive loop, in one run.

The naive loop is what one writes without the engine: ``librosa.load`` each file, then one track per call of
the same backbone, in one process. The engine decodes in DataLoader worker processes while the main process
computes, and batches tracks. Both run on the same synthetic collection (30-s 44.1 kHz stereo FLAC, so every
track is decoded, down-mixed and resampled), alternately, ``--repeats`` times; medians are reported.

    python benchmarks/extraction_cpu.py                 # writes benchmarks/results/extraction_cpu.json
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
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from audiorec.backbones import Backbone, build_backbone
from audiorec.backbones.mfcc import mfcc_statistics
from audiorec.backbones.musicnn import MusiCNNBackbone
from audiorec.backbones.musicnn_model import TIMBRAL_FRAMES, MusiCNNArchitecture
from audiorec.backbones.options import MusiCNNConfig
from audiorec.errors import ParameterError
from audiorec.extraction.embed import extract
from audiorec.storage.atomic import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "extraction_cpu.json"


def write_collection(folder: Path, n_tracks: int, seconds: float, sample_rate: int = 44100) -> list[Path]:
    """Deterministic stereo FLAC tracks: a few harmonic notes per track over noise."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    paths = []
    for index in range(n_tracks):
        notes = rng.uniform(110, 880, size=4)
        mono = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t)) for f in notes)
        stereo = 0.1 * mono[:, None] + rng.normal(0, 0.02, (t.size, 2))
        paths.append(folder / f"track{index:03d}.flac")
        sf.write(paths[-1], stereo.astype(np.float32), sample_rate)
    return paths


def naive_loop(paths: list[Path], backbone: Backbone) -> np.ndarray:
    """``librosa.load`` each file and embed it alone: no workers, one track per forward."""
    vectors = []
    for path in paths:
        signal, _ = librosa.load(path, sr=backbone.sample_rate, mono=True, duration=backbone.clip_policy.max_duration_s)
        signal = backbone.clip_policy.apply(signal, backbone.sample_rate)
        vectors.append(backbone.embed_batch([signal])[backbone.layers[-1]][0])
    return np.stack(vectors)


def librosa_mfcc_loop(paths: list[Path], backbone: Backbone) -> np.ndarray:
    """The textbook MFCC loop: ``librosa.load`` then ``librosa.feature.mfcc`` per file."""
    config = backbone.config
    vectors = []
    for path in paths:
        signal, _ = librosa.load(path, sr=config.sample_rate, mono=True, duration=config.max_duration_s)
        mfcc = librosa.feature.mfcc(
            y=signal,
            sr=config.sample_rate,
            n_mfcc=config.n_mfcc,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
        )
        vectors.append(mfcc_statistics(mfcc))
    return np.stack(vectors)


def engine(paths: list[Path], backbone: Backbone, workers: int, batch_size: int) -> np.ndarray:
    result = extract(
        [p.stem for p in paths], paths, backbone, batch_size=batch_size, num_workers=workers, progress=False
    )
    if result.failures:
        raise RuntimeError(f"benchmark tracks failed: {result.failures}")
    return result.layer_matrices(backbone)[backbone.layers[-1]]


def timed(run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = run()
    return time.perf_counter() - start, vectors


def compare(
    name: str, paths: list[Path], runs: dict[str, Callable[[], np.ndarray]], repeats: int, seconds: float
) -> dict:
    """Run every variant ``repeats`` times, interleaved so that background load hits all of them alike."""
    times: dict[str, list[float]] = {variant: [] for variant in runs}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for variant, run in runs.items():
            elapsed, outputs[variant] = timed(run)
            times[variant].append(elapsed)
            print(f"{name} {variant}: {len(paths) / elapsed:.2f} tracks/s", file=sys.stderr)
    rates = {variant: len(paths) / statistics.median(values) for variant, values in times.items()}
    reference = outputs["naive_loop"]
    return {
        "tracks": len(paths),
        "track_seconds": seconds,
        "tracks_per_s": {variant: round(rate, 3) for variant, rate in rates.items()},
        "audio_seconds_per_s": {variant: round(rate * seconds, 1) for variant, rate in rates.items()},
        "speedup_vs_naive_loop": {variant: round(rate / rates["naive_loop"], 2) for variant, rate in rates.items()},
        "wall_seconds": {variant: [round(v, 2) for v in values] for variant, values in times.items()},
        "max_abs_difference_vs_naive_loop": {
            variant: float(np.abs(out - reference).max()) for variant, out in outputs.items()
        },
    }


def musicnn_gflop_per_patch(a: MusiCNNArchitecture) -> float:
    """Multiply-adds ×2 of one patch: front-end convolutions, mid-end Conv1d and the two dense layers."""
    t, f = a.patch_frames, a.n_mels
    timbral = sum(a.timbral_filters * TIMBRAL_FRAMES * w * t * (f - w + 1) for w in a.timbral_widths)
    temporal = sum(a.temporal_filters * length * t * f for length in a.temporal_lengths)
    midend = 7 * t * a.midend_filters * (a.frontend_channels + a.midend_filters * (a.midend_layers - 1))
    dense = 2 * a.midend_channels * a.backend_units + a.backend_units * a.n_classes
    return 2 * (timbral + temporal + midend + dense) / 1e9


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Float32 matrix-multiply throughput of this machine with torch's threads: the ceiling for conv layers."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def musicnn_compute(backbone: MusiCNNBackbone, repeats: int = 3) -> dict:
    """Forward-pass throughput alone on batches of patches, against the float32 matmul ceiling."""
    a = backbone.architecture
    patches = torch.randn(backbone.max_windows_per_forward, a.patch_frames, a.n_mels)
    with torch.inference_mode():
        backbone.model(patches)
        start = time.perf_counter()
        for _ in range(repeats):
            backbone.model(patches)
        rate = repeats * patches.shape[0] / (time.perf_counter() - start)
    gflop = musicnn_gflop_per_patch(backbone.architecture)
    peak = sgemm_gflops()
    return {
        "gflop_per_patch": round(gflop, 3),
        "patches_per_s": round(rate, 2),
        "gflops": round(rate * gflop, 1),
        "sgemm_gflops": round(peak, 1),
        "fraction_of_sgemm": round(rate * gflop / peak, 3),
    }


def musicnn_backbone(seconds: float) -> tuple[MusiCNNBackbone, str]:
    """The published MSD model when the musicnn package is installed; the same network, random, otherwise."""
    options = {"device": "cpu", "max_duration_s": seconds}
    try:
        return build_backbone("musicnn", options), "MSD_musicnn (musicnn package)"
    except ParameterError:
        return MusiCNNBackbone(MusiCNNConfig(**options), load=False), "random initialisation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mfcc-tracks", type=int, default=64)
    parser.add_argument("--musicnn-tracks", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    report: dict = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "naive_loop": "librosa.load each file, then backbone.embed_batch([signal]); one process, no workers",
        "engine": f"audiorec.extraction.embed.extract, batch_size={args.batch_size}, N DataLoader decoding workers",
    }
    with tempfile.TemporaryDirectory() as folder:
        n_files = max(args.mfcc_tracks, args.musicnn_tracks)
        paths = write_collection(Path(folder), n_files, args.seconds)
        mfcc = build_backbone("mfcc", {"max_duration_s": args.seconds})
        mfcc_paths = paths[: args.mfcc_tracks]
        report["mfcc"] = compare(
            "mfcc",
            mfcc_paths,
            {
                "librosa_mfcc_loop": lambda: librosa_mfcc_loop(mfcc_paths, mfcc),
                "naive_loop": lambda: naive_loop(mfcc_paths, mfcc),
                "engine_1_worker": lambda: engine(mfcc_paths, mfcc, 1, args.batch_size),
                "engine_2_workers": lambda: engine(mfcc_paths, mfcc, 2, args.batch_size),
            },
            args.repeats,
            args.seconds,
        )
        musicnn, weights = musicnn_backbone(args.seconds)
        musicnn_paths = paths[: args.musicnn_tracks]
        report["musicnn"] = {
            "weights": weights,
            **compare(
                "musicnn",
                musicnn_paths,
                {
                    "naive_loop": lambda: naive_loop(musicnn_paths, musicnn),
                    "engine_1_worker": lambda: engine(musicnn_paths, musicnn, 1, args.batch_size),
                    "engine_2_workers": lambda: engine(musicnn_paths, musicnn, 2, args.batch_size),
                },
                args.repeats,
                args.seconds,
            ),
            "forward_only": musicnn_compute(musicnn),
        }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    write_text_atomic(json.dumps(report, indent=2) + "\n", args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
