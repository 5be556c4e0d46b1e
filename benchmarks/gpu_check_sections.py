"""The measurements of ``gpu_check.py``, one function per section, each returning a JSON-ready dict.

Every section builds its models with random weights (nothing is downloaded) and stops measuring once its own
time is spent (``budget_s``), so that the whole check fits the time a GPU machine is lent for. The functions run
on the CPU as well, with the tiny sizes of :data:`TINY`, which is how the test suite keeps them working.
"""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.flop_counter import FlopCounterMode

from audiorec.backbones.base import Backbone
from audiorec.backbones.pretrained import PretrainedBackbone
from audiorec.backbones.shipped import shipped_config


@dataclass(frozen=True)
class Sizes:
    """Every size the check runs at: the paper's (:data:`FULL`) or a tiny set for the CPU (:data:`TINY`)."""

    mert_size: str
    mert_clip_s: float
    mert_batch: int
    jukebox_size: str
    jukebox_clip_s: float
    jukebox_batch: int
    users: int
    items: int
    pairs_per_user: int
    bert4rec_hidden: int
    bert4rec_max_len: int
    knn_dims: tuple[int, ...]
    knn_k: int
    faiss_ivf: str
    faiss_nprobe: int
    precision_clip_s: float
    """The fixture clips are cropped to this (the longest is 10.5 s)."""
    measure_s: float
    """Longest time each extraction throughput is measured for (within its budget)."""
    journal_width: int
    """ELSA's factors, the Hybrid's and the Bimodal net's audio width and towers (the journal's 768)."""
    bimodal_batch: int


FULL = Sizes(
    mert_size="v1-330M",
    mert_clip_s=30.0,  # the first paper's 30-s crops, cut into MERT's 5-s windows
    mert_batch=16,
    jukebox_size="5b",
    jukebox_clip_s=25.0,  # JukeMIR's first 25 s
    jukebox_batch=4,
    users=17_053,  # Music4All-Onion: 17,053 users x 56,193 tracks, 5.12M train pairs (references_fit.py)
    items=56_193,
    pairs_per_user=345,  # about 5.1M distinct pairs once repeated draws merge
    bert4rec_hidden=1024,
    bert4rec_max_len=300,
    knn_dims=(768, 4800),  # MERT-95M-sized and Jukebox-sized vectors
    knn_k=50,
    faiss_ivf="IVF1024,Flat",
    faiss_nprobe=32,
    precision_clip_s=30.0,
    measure_s=40.0,
    journal_width=768,
    bimodal_batch=10_000,
)
TINY = Sizes(
    mert_size="tiny",
    mert_clip_s=1.0,
    mert_batch=2,
    jukebox_size="tiny-2-blocks",
    jukebox_clip_s=0.5,
    jukebox_batch=2,
    users=200,
    items=600,
    pairs_per_user=20,
    bert4rec_hidden=32,
    bert4rec_max_len=24,
    knn_dims=(16, 48),
    knn_k=10,
    faiss_ivf="IVF8,Flat",
    faiss_nprobe=4,
    precision_clip_s=0.5,
    measure_s=1.0,
    journal_width=16,
    bimodal_batch=256,
)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall clocks measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gb(device: torch.device) -> dict[str, Any]:
    """The section's peak GPU memory (allocated by torch), or on the CPU the process's peak resident size."""
    if device.type == "cuda":
        return {"peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30, "memory": "cuda max allocated"}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_gb": peak_kb / 2**20, "memory": "process max RSS (CPU run)"}


def repeat_for(step: Callable[[], None], seconds: float, device: torch.device, max_runs: int = 50) -> tuple[int, float]:
    """Run ``step`` once to warm up, then until ``seconds`` have passed (at least once): (runs, seconds taken)."""
    step()
    synchronize(device)
    runs, started = 0, time.perf_counter()
    while runs < max_runs and (runs == 0 or time.perf_counter() - started < seconds):
        step()
        synchronize(device)
        runs += 1
    return runs, time.perf_counter() - started


def tiny_jukebox_config(folder: Path) -> str:
    """The shipped tiny Jukebox with 2 kept prior blocks, written as a config file the backbone's ``size`` takes."""
    spec = shipped_config("jukebox", "tiny")
    spec["prior"] = {**spec["prior"], "kept_blocks": 2}
    spec = {key: value for key, value in spec.items() if key != "source"}
    path = folder / "jukebox-tiny-2-blocks.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


@contextlib.contextmanager
def built_on(device: torch.device) -> Iterator[None]:
    """Create parameters directly on a GPU: initialising Jukebox's 36 blocks on the CPU alone takes minutes."""
    with torch.device(device) if device.type == "cuda" else contextlib.nullcontext():
        yield


def flops_per_clip(backbone: PretrainedBackbone, clip: np.ndarray) -> int:
    """FLOPs of one clip's forward passes (every window the backbone cuts it into), counted on the meta device.

    ``torch.utils.flop_counter`` counts matrix products, convolutions and attention, not element-wise work.
    """
    by_shape: dict[tuple[int, ...], int] = {}
    for window in backbone.windows(clip):
        by_shape[window.shape] = by_shape.get(window.shape, 0) + 1
    total = 0
    with torch.device("meta"):
        model = type(backbone).build_model(backbone.spec).eval()
        for shape, count in by_shape.items():
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                type(backbone).hidden_states(model, torch.zeros(count, *shape))
            total += int(counter.get_total_flops())
    return total


def extraction(
    backbone: PretrainedBackbone, clip_s: float, batch: int, seconds: float, peak_tflops: float | None
) -> dict[str, Any]:
    """Clips per second through :meth:`embed_batch` (the path extraction jobs run), and the FLOP rate it reaches."""
    clips = np.random.default_rng(0).normal(0, 0.1, (batch, round(clip_s * backbone.sample_rate))).astype(np.float32)
    runs, taken = repeat_for(lambda: backbone.embed_batch(list(clips)), seconds, backbone.device)
    clips_per_s = runs * batch / taken
    flops = flops_per_clip(backbone, clips[0])
    achieved = flops * clips_per_s / 1e12
    return {
        "clip_seconds": clip_s,
        "batch_clips": batch,
        "clips_measured": runs * batch,
        "precision": backbone.precision,
        "clips_per_s": clips_per_s,
        "audio_seconds_per_s": clips_per_s * clip_s,
        "flops_per_clip": flops,
        "achieved_tflops": achieved,
        "fraction_of_bf16_peak": achieved / peak_tflops if peak_tflops else None,
        "parameters": sum(p.numel() for p in backbone.model.parameters()),
    }


@functools.lru_cache(maxsize=1)
def synthetic_log(users: int, items: int, pairs_per_user: int, seed: int = 0) -> tuple[Any, Any]:
    """Train and validation :class:`TrainData` of an Onion-shaped log: Zipf-like item popularity, lognormal
    history lengths around ``pairs_per_user``, first listens in random order; one validation track for a tenth
    of the users."""
    from audiorec.recommenders.base import TrainData

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(pairs_per_user) - 0.5, 1.0, users), 1, items // 2).astype(np.int64)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    user_index = np.repeat(np.arange(users), lengths)
    item_index = rng.choice(items, size=user_index.size, p=popularity / popularity.sum())
    heard = sp.csr_matrix((np.ones(user_index.size, dtype=bool), (user_index, item_index)), shape=(users, items))
    heard.sum_duplicates()  # a repeated draw is one (user, item) pair; CSR's counting sort beats np.unique here
    user_index, item_index = np.repeat(np.arange(users), np.diff(heard.indptr)), heard.indices.astype(np.int64)
    first_ts = rng.integers(0, 10**13, item_index.size)
    plays = np.bincount(item_index, minlength=items).astype(np.float32)
    ids = np.array([f"u{i}" for i in range(users)], dtype=object)
    train = TrainData(ids, heard, heard, plays, (user_index, item_index, first_ts))
    val_users = rng.choice(users, size=max(users // 10, 1), replace=False)
    val_items = rng.integers(0, items, val_users.size)
    unheard = ~np.asarray(heard[val_users, val_items]).ravel()
    val_users, val_items = val_users[unheard], val_items[unheard]
    truth = sp.csr_matrix((np.ones(val_users.size, dtype=bool), (val_users, val_items)), shape=(users, items))
    return train, TrainData(ids, truth, truth, np.zeros(items, dtype=np.float32))


def epoch_figures(sizes: Sizes, train: Any, batch_size: int, epoch: dict[str, Any]) -> dict[str, Any]:
    """What every training section reports of its one epoch (a row of the trainer's history): the log's size,
    the batches, the seconds of training and validation, and the loss."""
    return {
        "users": sizes.users,
        "items": sizes.items,
        "train_pairs": int(train.heard.nnz),
        "batch_size": batch_size,
        "batches": int(epoch["train_batches"]),
        "epoch_train_s": float(epoch["train_seconds"]),
        "epoch_validation_s": float(epoch["val_seconds"]),
        "train_loss": float(epoch["train_loss"]),
    }


def bert4rec_epoch(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """One training epoch of BERT4Rec at the paper's settings through the workflow's trainer, on frozen items."""
    from audiorec.recommenders.bert4rec import Bert4RecNet, Bert4RecTask
    from audiorec.recommenders.options import Bert4RecOptions
    from audiorec.recommenders.trainer import train as train_task

    train, validation = synthetic_log(sizes.users, sizes.items, sizes.pairs_per_user)
    options = Bert4RecOptions(max_epochs=1, max_len=sizes.bert4rec_max_len, hidden_size=sizes.bert4rec_hidden)
    torch.manual_seed(0)
    items = torch.randn(sizes.items, sizes.bert4rec_hidden) * 0.1
    module = Bert4RecNet(items, freeze_items=True, hidden=sizes.bert4rec_hidden, options=options).to(device)
    task = Bert4RecTask(module, train, validation, options)
    started = time.perf_counter()
    result = train_task(task, options, seed=0, progress=False)
    synchronize(device)
    epoch = result.history[-1]
    return {
        **epoch_figures(sizes, train, options.batch_size, epoch),
        "max_len": options.max_len,
        "hidden": sizes.bert4rec_hidden,
        "sequences_per_s": len(task.sequences) / float(epoch["train_seconds"]),
        "wall_with_two_validations_s": time.perf_counter() - started,
        **peak_memory_gb(device),
    }


def knn(sizes: Sizes, device: torch.device, dim: int) -> dict[str, Any]:
    """Exact top-K for every user of an Onion-sized catalogue (train pairs excluded) by ``top_k_inner_product``."""
    from audiorec.recommenders.inner_product import top_k_inner_product

    train, _ = synthetic_log(sizes.users, sizes.items, sizes.pairs_per_user)
    generator = torch.Generator().manual_seed(dim)
    users = torch.nn.functional.normalize(torch.randn(sizes.users, dim, generator=generator), dim=1)
    items = torch.nn.functional.normalize(torch.randn(sizes.items, dim, generator=generator), dim=1)
    top_k_inner_product(users[:8], items, train.excluded[:8], sizes.knn_k, device)  # CUDA context, kernels
    synchronize(device)
    started = time.perf_counter()
    _, top = top_k_inner_product(users, items, train.excluded, sizes.knn_k, device)
    seconds = time.perf_counter() - started
    if top.shape != (sizes.users, sizes.knn_k):
        raise RuntimeError(f"top_k_inner_product returned {top.shape}, expected {(sizes.users, sizes.knn_k)}")
    return {
        "users": sizes.users,
        "items": sizes.items,
        "dim": dim,
        "k": sizes.knn_k,
        "seconds": seconds,
        "users_per_s": sizes.users / seconds,
        "score_tflops": 2 * sizes.users * sizes.items * dim / seconds / 1e12,
    }


def faiss_knn(sizes: Sizes, device: torch.device, dim: int) -> dict[str, Any]:
    """The FAISS backend on the same problem, an exact (``Flat``) and an IVF index, and the IVF's recall of the
    exact top K; or why it cannot run here."""
    try:
        import faiss

        from audiorec.recommenders.faiss_retrieval import top_k_faiss
        from audiorec.recommenders.retrieval_options import RetrievalOptions
    except ImportError as error:
        return {"status": "not available", "reason": f"{type(error).__name__}: {error}"}
    train, _ = synthetic_log(sizes.users, sizes.items, sizes.pairs_per_user)
    rng = np.random.default_rng(dim)
    users = rng.normal(size=(sizes.users, dim)).astype(np.float32)
    items = rng.normal(size=(sizes.items, dim)).astype(np.float32)
    out: dict[str, Any] = {"status": "ok", "dim": dim, "k": sizes.knn_k, "faiss": faiss.__version__}
    tops = {}
    for name, index in (("flat", "Flat"), ("ivf", sizes.faiss_ivf)):
        options = RetrievalOptions(backend="faiss", index=index, nprobe=sizes.faiss_nprobe)
        started = time.perf_counter()
        _, tops[name] = top_k_faiss(users, items, train.excluded, sizes.knn_k, options, device)
        out[f"{name}_seconds"] = time.perf_counter() - started
        out[f"{name}_index"] = options.describe()
    found = sum(len(np.intersect1d(a[a >= 0], b)) for a, b in zip(tops["ivf"], tops["flat"], strict=True))
    out["ivf_recall_of_flat"] = found / max(int((tops["flat"] >= 0).sum()), 1)
    return out


def fixture_clips(folder: Path, sample_rate: int, seconds: float) -> list[np.ndarray]:
    """The clips of the MusiCNN fixture (10.5 s and 2 s of int16 PCM at 16 kHz, the inputs the original extractor
    was run on), their first ``seconds`` resampled to ``sample_rate``."""
    import librosa

    reference = np.load(folder / "musicnn" / "track_reference.npz")
    clips = [reference[f"{name}_int16"][: round(seconds * 16000)] / np.float32(32768) for name in ("multi", "short")]
    return [librosa.resample(clip.astype(np.float32), orig_sr=16000, target_sr=sample_rate) for clip in clips]


def backbone_of(kind: str, options: dict[str, Any], device: torch.device) -> Backbone:
    """A registered backbone with random weights, its parameters created on ``device``."""
    from audiorec.backbones import backbone_class
    from audiorec.backbones.musicnn import MusiCNNBackbone
    from audiorec.backbones.options import MusiCNNConfig

    with built_on(device):
        if kind == "musicnn":  # the published architecture; its options always load weights
            return MusiCNNBackbone(MusiCNNConfig(**options, device=str(device)), load=False)
        return backbone_class(kind).from_options({**options, "device": str(device)})


def sample_rate_of(kind: str, options: dict[str, Any]) -> int:
    """A backbone's sample rate, from its shipped config for a pretrained family, without building the model."""
    from audiorec.backbones import backbone_class

    if kind == "musicnn":
        from audiorec.backbones.musicnn import SAMPLE_RATE

        return SAMPLE_RATE
    return int(shipped_config(backbone_class(kind).family, options["size"])["sample_rate"])
