"""BERT4Rec's catalogue-wide cross-entropy in chunks: the dense loss's value and gradients, without its logits.

The chunked path is checked against ``F.cross_entropy`` on the full logits (value and every gradient), forced on
a small problem by lowering the threshold; and its memory against the dense path's on 3,000 positions over a
40k-item catalogue, each in a fresh process (benchmarks/bert4rec_memory.py measures whole training steps at the
Onion's size).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from audiorec.recommenders import catalogue_softmax
from audiorec.recommenders.catalogue_softmax import catalogue_cross_entropy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def problem(positions: int, n_items: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(positions, dim, generator=generator, requires_grad=True)
    items = torch.randn(n_items, dim, generator=generator, requires_grad=True)
    bias = torch.randn(n_items, generator=generator, requires_grad=True)
    targets = torch.randint(0, n_items, (positions,), generator=generator)
    return hidden, items, bias, targets


def gradients(loss: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors))


@pytest.mark.parametrize("chunk_cells", [1, 7 * 50, 64 * 50])  # chunks of 1 row, of 6 (ragged), of 63 and 1
def test_chunks_give_the_dense_loss_and_its_gradients(monkeypatch, chunk_cells):
    hidden, items, bias, targets = problem(positions=64, n_items=50, dim=8)
    dense = F.cross_entropy(hidden @ items.T + bias, targets)
    monkeypatch.setattr(catalogue_softmax, "DENSE_CELLS", chunk_cells - 1 if chunk_cells > 1 else 0)
    chunked = catalogue_cross_entropy(hidden, items, bias, targets)
    assert chunked.grad_fn is not None and "Chunked" in type(chunked.grad_fn).__name__
    torch.testing.assert_close(chunked, dense, rtol=1e-6, atol=1e-6)
    for ours, reference in zip(
        gradients(chunked, hidden, items, bias), gradients(dense, hidden, items, bias), strict=True
    ):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_a_frozen_item_table_gets_no_gradient_and_the_rest_still_do(monkeypatch):
    hidden, items, bias, targets = problem(positions=20, n_items=30, dim=4)
    frozen = items.detach()
    monkeypatch.setattr(catalogue_softmax, "DENSE_CELLS", 100)
    loss = catalogue_cross_entropy(hidden, frozen, bias, targets)
    reference = F.cross_entropy(hidden @ frozen.T + bias, targets)
    for ours, expected in zip(gradients(loss, hidden, bias), gradients(reference, hidden, bias), strict=True):
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_below_the_threshold_the_dense_loss_runs_unchanged():
    hidden, items, bias, targets = problem(positions=32, n_items=40, dim=8)
    loss = catalogue_cross_entropy(hidden, items, bias, targets)
    assert torch.equal(loss, F.cross_entropy((hidden @ items.T + bias).float(), targets))
    assert "Chunked" not in type(loss.grad_fn).__name__


PEAK = textwrap.dedent(
    """
    import resource, sys, torch, torch.nn.functional as F
    from audiorec.recommenders import catalogue_softmax
    from audiorec.recommenders.catalogue_softmax import catalogue_cross_entropy
    torch.set_num_threads(1)
    catalogue_softmax.DENSE_CELLS = 1 << 22  # chunks of 16 MB: the batch below at a fifth of its size
    positions, n_items, dim = 3_000, 40_000, 16
    hidden = torch.randn(positions, dim, requires_grad=True)
    items, bias = torch.randn(n_items, dim), torch.zeros(n_items, requires_grad=True)
    targets = torch.randint(0, n_items, (positions,))
    from audiorec.storage.logs import own_peak_gib
    with open("/proc/self/statm") as statm:  # resident now, not the high-water mark of the imports
        before = int(statm.read().split()[1]) * resource.getpagesize() / 2**30
    if sys.argv[1] == "dense":
        loss = F.cross_entropy(hidden @ items.T + bias, targets)
    else:
        loss = catalogue_cross_entropy(hidden, items, bias, targets)
    loss.backward()
    print(own_peak_gib() - before)
    """
)


def test_a_large_batch_s_loss_takes_a_fraction_of_the_dense_memory():
    grown = {}
    for path in ("dense", "chunked"):
        done = subprocess.run(
            [sys.executable, "-c", PEAK, path], capture_output=True, text=True, timeout=300, check=True
        )
        grown[path] = float(done.stdout.split()[-1])  # GiB the step added to the process's peak
    assert grown["dense"] > 0.9  # logits, their log-softmax and their gradient: 0.45 GiB each
    assert grown["chunked"] < grown["dense"] / 3
