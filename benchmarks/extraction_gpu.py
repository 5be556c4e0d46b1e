"""GPU extraction throughput of MERT-330M on 30 s clips (or Jukebox-5B on 25 s clips), and the fraction of the bf16
matmul roofline it reaches.

Two runs on the same randomly initialised ``HubertModel`` in MERT-v1-330M's published layout, on the same
batches of 30 s, 24 kHz clips (decoding is measured by ``extraction_cpu.py``; here the clips are synthetic
and already in memory, so the GPU side is measured alone):

* ``engine``: :meth:`audiorec.backbones.hf.MERTBackbone.embed_batch`, the path extraction jobs run: pinned
  host memory, ``torch.inference_mode``, bf16 autocast, every one of the 25 hidden layers pooled over time
  on the GPU and only the pooled vectors copied back. The backbone is built with ``precision: bf16``, since the
  backbones default to IEEE float32 (Jukebox to its recipe's float16); the JSON records the precision used;
* ``naive``: every hidden state of the model in float32 under ``torch.no_grad``, batch 16, stacked and pooled,
  as a straightforward script would.

The model's FLOPs per clip are counted once with ``torch.utils.flop_counter`` on the meta device (matmuls,
convolutions and attention; element-wise work is not counted), so ``achieved TFLOP/s = FLOPs per clip ×
clips/s`` and the roofline fraction divides it by the GPU's dense bf16 peak (from its name, or
``--peak-tflops``).

    python benchmarks/extraction_gpu.py          # on a CUDA machine; writes benchmarks/results/extraction_gpu.json
    python benchmarks/extraction_gpu.py --size tiny --device cpu --clips 4 --batch-size 2   # smoke run
    python benchmarks/extraction_gpu.py --backbone jukebox --batch-size 2   # Jukebox-5B, 25 s clips, random weights

With ``--backbone jukebox`` the model is JukeMIR's (the VQ-VAE top encoder and the first 36 prior blocks, see
:mod:`audiorec.backbones.jukebox`) and ``naive`` is the same forward in float32 under ``torch.no_grad``; the goal
is ≥ 40 % of the roofline, which puts Music4All's 56k clips well under 2 GPU-hours.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from audiorec.backbones.hf import MERTBackbone
from audiorec.backbones.jukebox import JukeboxBackbone
from audiorec.backbones.options import JukeboxOptions, WaveformTransformerOptions
from audiorec.backbones.shipped import shipped_config
from audiorec.storage.atomic import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "extraction_gpu.json"

DENSE_BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}
"""Dense (no sparsity) bf16 tensor-core peaks from the vendor data sheets; the first name contained wins."""


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a GPU from its name, or None for one this table does not know."""
    for name, peak in DENSE_BF16_PEAK_TFLOPS.items():
        if all(part in device_name for part in name.split()):
            return peak
    return None


BACKBONES = {
    "mert": (MERTBackbone, WaveformTransformerOptions, "v1-330M", 30.0),
    "jukebox": (JukeboxBackbone, JukeboxOptions, "5b", 25.0),
}
"""Benchmarked backbone → (class, options class, default size, default clip seconds)."""


def flops_per_clip(backbone_class: type, size: str, samples: int) -> int:
    """FLOPs of one forward pass of one clip, counted on the meta device (no memory, no compute)."""
    spec = shipped_config(backbone_class.family, size)
    with torch.device("meta"):
        model = backbone_class.build_model(spec).eval()
        clip = torch.zeros(1, samples)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            backbone_class.hidden_states(model, clip)
    return int(counter.get_total_flops())


def timed(step, batches: list, device: torch.device) -> float:
    """Seconds for ``step`` over all ``batches`` after one warm-up batch, synchronising the GPU."""
    step(batches[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="mert")
    parser.add_argument("--size", default=None, help="shipped config (default: MERT v1-330M, Jukebox 5b)")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default: MERT 30, Jukebox 25)")
    parser.add_argument("--clips", type=int, default=128, help="clips per measured run (default 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward in both runs (default 16)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak, if the GPU is not known")
    parser.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/extraction_gpu[_jukebox].json"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU (or --device cpu for a smoke run)", file=sys.stderr)
        return 2

    backbone_class, options_class, default_size, default_seconds = BACKBONES[args.backbone]
    args.size = args.size or default_size
    args.seconds = args.seconds or default_seconds
    args.out = args.out or (
        RESULTS if args.backbone == "mert" else RESULTS.with_name(f"extraction_gpu_{args.backbone}.json")
    )
    options = options_class(
        size=args.size, clip_seconds=args.seconds, max_duration_s=args.seconds, device=args.device, precision="bf16"
    )
    backbone = backbone_class(options)
    backbone.max_windows_per_forward = args.batch_size
    samples = round(args.seconds * backbone.sample_rate)
    rng = np.random.default_rng(0)
    clips = rng.normal(0, 0.1, (args.batch_size, samples)).astype(np.float32)
    n_batches = max(1, args.clips // args.batch_size)
    host_batches = [list(clips)] * n_batches
    device_batches = [torch.from_numpy(clips).to(device)] * n_batches

    def engine(batch: list[np.ndarray]) -> None:
        backbone.embed_batch(batch)

    def naive(batch: torch.Tensor) -> None:
        with torch.no_grad():
            hidden = backbone_class.hidden_states(backbone.model, batch)
            torch.stack(hidden).mean(dim=2).cpu()

    n_clips = n_batches * args.batch_size
    engine_rate = n_clips / timed(engine, host_batches, device)
    naive_rate = n_clips / timed(naive, device_batches, device)
    flops = flops_per_clip(backbone_class, args.size, samples)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak = args.peak_tflops or (peak_tflops(device_name) if device.type == "cuda" else None)
    result = {
        "model": f"{args.backbone} {args.size} architecture, random weights",
        "clip_seconds": args.seconds,
        "sample_rate": backbone.sample_rate,
        "batch_size": args.batch_size,
        "clips_measured": n_clips,
        "device": device_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "flops_per_clip": flops,
        "peak_bf16_tflops": peak,
        "engine": {"precision": backbone.precision, "clips_per_s": round(engine_rate, 3)},
        "naive_fp32": {"precision": "float32", "clips_per_s": round(naive_rate, 3)},
        "speedup": round(engine_rate / naive_rate, 2),
    }
    for run in ("engine", "naive_fp32"):
        achieved = flops * result[run]["clips_per_s"] / 1e12
        result[run]["achieved_tflops"] = round(achieved, 2)
        result[run]["roofline_fraction"] = round(achieved / peak, 3) if peak else None
    write_text_atomic(json.dumps(result, indent=2) + "\n", args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
