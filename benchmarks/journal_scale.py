"""The journal version's matrix at paper size on one machine: `config/examples/journal2026_synthetic.yaml`.

The world is the Onion-sized synthetic one (17k train users, ~57k train items, 5M train pairs) with one feature per
backbone of the journal at that backbone's width, split by the journal's protocol. The whole matrix (ten backbones
with shuffled controls, eight kinds, three seeds) is hundreds of trained runs; on a CPU the run keeps a slice that
two cores finish in about 25 minutes and that touches every rule and every kind at the narrowest and the widest
width:

* every kind once on the narrowest feature (`mfcc_like`, 104-d), seed 1, no shuffled controls (a control costs
  what its row costs);
* KNN, the Hybrid and the Bimodal content scoring also on the widest (`jukebox_like`, 4800-d);
* each trained run one epoch cut after `--max-batches` batches (ELSA's pre-fit inside the Bimodal runs too), its
  validation pass whole.

Recorded in the same run: every rule's wall time and memory (its `benchmark:` file's 30-s samples, and the
high-water mark its log ends with); the job counts of the whole matrix (`snakemake -n --forceall` on the example
config as it stands); and, from the training logs, each trained run's seconds per batch and per whole epoch, with
the whole matrix's one-epoch training projected from them (linear in the width between the two measured widths;
a kind measured at one width counts at that cost, a lower bound for the wider rows). `--full` runs the example
config unchanged (a GPU machine: `--device cuda`).

    python benchmarks/journal_scale.py                      # ~25 min on 2 cores, 12 GB of disk in /tmp
    python benchmarks/journal_scale.py --device cuda --full # the whole matrix, whole epochs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "journal_scale.json"
CONFIG = REPO / "config" / "examples" / "journal2026_synthetic.yaml"
DATASET = "journal_synthetic"
NARROW, WIDE = "mfcc_like", "jukebox_like"
WIDE_KINDS = ("knn", "hybrid", "bimodal_content")
"""The kinds the CPU slice also runs on the widest feature."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiorec-journal-scale"))
    parser.add_argument("--max-batches", type=int, default=4, help="batches per epoch of each trained run")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--full", action="store_true", help="the example config unchanged: every row, whole epochs")
    parser.add_argument("--scale", default="onion", help="the synthetic world's preset (tiny: a smoke run)")
    args = parser.parse_args()

    from onion_scale import MEMORY_LIMIT_GB, machine, timed, workflow_copy
    from onion_scale_parts import peak_gb, rule_table

    example = yaml.safe_load(CONFIG.read_text())
    example["datasets"][DATASET]["options"]["scale"] = args.scale
    config = example if args.full else cpu_slice(example, args.max_batches)
    host = machine()
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})
    workdir = workflow_copy(args.workdir, config)
    run = timed([sys.executable, "-m", "snakemake", "--cores", str(args.cores)], workdir, env)
    if run["returncode"] != 0:
        sys.exit(f"the workflow failed:\n{run['output'][-5000:]}")
    load_after = os.getloadavg()[0]
    results = workdir / "results" / DATASET
    rules = rule_table(results / "benchmarks")
    peak = max(peak_gb(rule) for rule in rules)
    trained = training_rows(results, example)

    workflow_copy(args.workdir, example)  # the whole matrix planned over this run's outputs
    planned = timed(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1", "--quiet", "rules"], workdir, env
    )
    workflow_copy(args.workdir, config)  # a rerun resumes the measured slice

    report = {
        "what": "the journal version's matrix at paper size (config/examples/journal2026_synthetic.yaml) through the "
        + ("whole DAG" if args.full else "DAG, the CPU slice of the module docstring"),
        "machine": host,
        "device": args.device,
        "max_batches_per_epoch": None if args.full else args.max_batches,
        "workflow": {
            "wall_s": run["seconds"],
            "jobs": sum(rule["jobs"] for rule in rules),
            "peak_rule_rss_gb": peak,
        },
        "goals": {"no rule above 8 GB": peak <= MEMORY_LIMIT_GB},
        "rules": rules,
        "training": trained,
        "whole_matrix": {
            "jobs_by_rule": job_stats(planned["output"]),
            "dry_run_s": planned["seconds"],
            **projection(trained, example),
        },
        "load_1min_after": load_after,
    }
    out = RESULTS if args.scale == "onion" else args.workdir / "journal_scale.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report[key] for key in ("workflow", "goals", "whole_matrix")}, indent=2))


def cpu_slice(example: dict, max_batches: int) -> dict:
    """The example with seed 1 only, no shuffled controls, every kind on the narrowest feature and the
    :data:`WIDE_KINDS` on the widest too, each trained run one epoch of ``max_batches`` batches."""
    config = json.loads(json.dumps(example))
    config["seeds"] = config["seeds"][:1]
    for name, model in config["models"].items():
        if "backbones" in model:
            keep = (NARROW, WIDE) if name in WIDE_KINDS else (NARROW,)
            model["backbones"] = [entry for entry in model["backbones"] if isinstance(entry, str) and entry in keep]
        options = model.get("options")
        if options is not None and "max_epochs" in options:
            options["max_batches_per_epoch"] = max_batches
    used = {entry for model in config["models"].values() for entry in model.get("backbones", [])}
    config["backbones"] = {name: spec for name, spec in config["backbones"].items() if name in used}
    return config


def training_rows(results: Path, example: dict) -> list[dict]:
    """Seconds per batch and per whole epoch (batches × seconds per batch + the validation pass) of every trained
    run, from its training log; the Bimodal runs' ELSA pre-fit is in their job's wall time, not here."""
    from onion_scale_parts import first_epoch

    widths = example["datasets"][DATASET]["options"]["feature_dims"]
    rows = []
    for log_path in sorted((results / "runs").glob("*/*/seed*/training_log.csv")):
        model, backbone = log_path.parts[-4], log_path.parts[-3]
        per_batch, batches, val_seconds = first_epoch(log_path)
        rows.append(
            {
                "model": model,
                "backbone": backbone,
                "width": widths.get(backbone.removesuffix("_shuffled")),
                "seconds_per_batch": round(per_batch, 3),
                "batches_per_epoch": batches,
                "val_s": round(val_seconds, 1),
                "seconds_per_epoch": round(per_batch * batches + val_seconds, 1),
            }
        )
    return rows


def job_stats(output: str) -> dict[str, int]:
    """The ``Job stats`` table of a ``snakemake -n`` output, rule → jobs."""
    table = output.split("Job stats:", 1)[-1]
    return {rule: int(count) for rule, count in re.findall(r"^([a-z_]+)\s+(\d+)$", table, flags=re.MULTILINE)}


def projection(trained: list[dict], example: dict) -> dict:
    """The whole matrix's one-epoch training from the measured epochs: each (kind, width) at the cost linear in the
    width through the kind's two measured widths, or at its one measured width's cost (a lower bound)."""
    widths = example["datasets"][DATASET]["options"]["feature_dims"]
    measured: dict[str, dict[int, float]] = {}
    for row in trained:
        measured.setdefault(row["model"], {})[row["width"] or 0] = row["seconds_per_epoch"]
    elsa_epoch = measured.get("elsa", {}).get(0, 0.0)
    seconds, unmeasured = 0.0, []
    for name, model in example["models"].items():
        if "max_epochs" not in model.get("options", {}):
            continue  # not trained
        if name not in measured:
            unmeasured.append(name)
            continue
        entries = model.get("backbones", [None])
        for entry in entries:
            backbone = entry if isinstance(entry, str) or entry is None else entry["backbone"]
            cost = _at_width(measured[name], widths.get(backbone, 0))
            seconds += (cost + (elsa_epoch if name.startswith("bimodal") else 0.0)) * len(example["seeds"])
    return {
        "projected_training_hours_one_epoch_each": round(seconds / 3600, 1),
        "projection": "serial, one epoch per trained run (the example's max_epochs: 1), Bimodal runs with their "
        "one-epoch ELSA pre-fit; cost linear in the width between the measured widths",
        "kinds_not_measured": unmeasured,
    }


def _at_width(costs: dict[int, float], width: int) -> float:
    if len(costs) < 2:
        return next(iter(costs.values()))
    (w0, c0), (w1, c1) = sorted(costs.items())[:1] + sorted(costs.items())[-1:]
    return max(c0 + (c1 - c0) * (width - w0) / (w1 - w0), min(c0, c1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
