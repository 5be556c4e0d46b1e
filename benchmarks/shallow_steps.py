"""The Shallow Net's two small-world shortcuts against the general paths they skip, side by side in one run.

- **Loss**: one forward + backward of ``ShallowNet.hinge_loss`` for a batch of 256 pairs with 20 negative users,
  computed from one ``(batch, users)`` score matrix or by gathering the named user rows, at several table sizes
  and widths. The paths are forced through ``SCORE_MATRIX_FACTOR`` (0: always the score matrix; a huge value:
  never), so both see the same inputs; their losses must agree. This is what sets ``SCORE_MATRIX_FACTOR``.
- **Negatives**: ``NegativeUserSampler.sample`` for the same batch, drawing positions in each item's list of
  non-listeners or rejecting draws that hit a listener (forced through ``DIRECT_SAMPLING_ENTRIES``), on grids
  whose users heard a given share of the catalogue.

One CPU thread, the best of several repeats of each; ratios are taken within the run.

    python benchmarks/shallow_steps.py      # ~30 s on 2 cores
"""

from __future__ import annotations

import json
import os
import platform
import timeit
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.recommenders import negatives, shallow
from audiorec.recommenders.negatives import NegativeUserSampler
from audiorec.recommenders.shallow import ShallowNet

RESULTS = Path(__file__).resolve().parent / "results" / "shallow_steps.json"
BATCH, N_NEGATIVES = 256, 20
LOSS_CASES = [(340, 104), (1000, 104), (3000, 104), (10000, 104), (340, 1024), (1000, 1024), (3000, 1024)]
"""(users, width): the demo's world (340 users, MFCC's 104-d) and larger tables and widths."""
SAMPLER_CASES = [(340, 380, 0.14), (340, 380, 0.4), (2000, 2000, 0.05)]
"""(users, items, share of the grid heard): the demo's train split is 27k pairs on 500 users by 380 items."""


def best_ms(step, repeat: int = 5, seconds_per_repeat: float = 0.2) -> float:
    """Best mean milliseconds per call over ``repeat`` repeats of about ``seconds_per_repeat`` each."""
    once = timeit.timeit(step, number=1)
    number = max(1, int(seconds_per_repeat / max(once, 1e-6)))
    return min(timeit.repeat(step, number=number, repeat=repeat)) / number * 1000


def loss_case(n_users: int, width: int, default_factor: int) -> dict:
    torch.manual_seed(0)
    module = ShallowNet(torch.randn(2000, width), torch.randn(n_users, width), freeze_items=True, separate_towers=False)
    users, items = torch.randint(n_users, (BATCH,)), torch.randint(2000, (BATCH,))
    negative_users = torch.randint(n_users, (BATCH, N_NEGATIVES))

    def step() -> float:
        module.zero_grad(set_to_none=True)
        loss = module.hinge_loss(users, items, negative_users, 0.2)
        loss.backward()
        return float(loss)

    row, losses = {"users": n_users, "width": width}, {}
    for path, factor in (("score_matrix", 0), ("gathered_rows", 1 << 40)):
        shallow.SCORE_MATRIX_FACTOR = factor
        losses[path] = step()
        row[f"{path}_ms"] = round(best_ms(step), 3)
    row["gathered_over_score_matrix"] = round(row["gathered_rows_ms"] / row["score_matrix_ms"], 2)
    row["loss_difference"] = abs(losses["score_matrix"] - losses["gathered_rows"])
    score_matrix_by_default = default_factor * n_users <= BATCH * (N_NEGATIVES + 1)
    row["chosen_by_default"] = "score_matrix" if score_matrix_by_default else "gathered_rows"
    return row


def sampler_case(n_users: int, n_items: int, share: float) -> dict:
    rng = np.random.default_rng(0)
    dense = rng.random((n_users, n_items)) < share
    heard = sp.csr_matrix(dense)
    items = torch.as_tensor(rng.choice(np.flatnonzero(heard.getnnz(axis=0) < n_users), BATCH))
    row = {"users": n_users, "items": n_items, "share_heard": share}
    for path, limit in (("direct", 1 << 40), ("rejection", 0)):
        negatives.DIRECT_SAMPLING_ENTRIES = limit
        sampler = NegativeUserSampler(heard, torch.device("cpu"))
        generator = torch.Generator().manual_seed(0)
        drawn = sampler.sample(items, N_NEGATIVES, generator)
        assert not dense[drawn.numpy(), items.numpy()[:, None]].any(), "a listener was drawn"
        row[f"{path}_ms"] = round(best_ms(lambda s=sampler, g=generator: s.sample(items, N_NEGATIVES, g)), 3)
    row["rejection_over_direct"] = round(row["rejection_ms"] / row["direct_ms"], 2)
    return row


def main() -> None:
    torch.set_num_threads(1)
    factor, limit = shallow.SCORE_MATRIX_FACTOR, negatives.DIRECT_SAMPLING_ENTRIES
    try:
        loss = [loss_case(*case, default_factor=factor) for case in LOSS_CASES]
        sampling = [sampler_case(*case) for case in SAMPLER_CASES]
    finally:
        shallow.SCORE_MATRIX_FACTOR, negatives.DIRECT_SAMPLING_ENTRIES = factor, limit
    result = {
        "what": "one Shallow Net step's loss (forward + backward) and negative sampling, small-world path against "
        f"the general one; batch {BATCH}, {N_NEGATIVES} negatives, one thread, best of 5 repeats",
        "loss": loss,
        "negatives": sampling,
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "torch": torch.__version__},
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
