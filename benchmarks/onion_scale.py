"""Paper scale on one machine: the Onion-sized synthetic world through the whole DAG, every rule measured.

The world is `config/examples/onion_scale.yaml` (17k train users, ~57k train items, 5M train pairs, ~12k
evaluated users; item vectors of 200, 1024 and 4800 dimensions). On a CPU the run keeps what two cores can
finish: every KNN, popularity and random row with its shuffled controls at all three widths, the Shallow Net
at 200 and 1024 dimensions and BERT4Rec at 200, each trained for one epoch cut after `--max-batches` batches
(`--steps-only`: no trained model in the workflow, every width timed by steps).
Beside the workflow, in the same process and run:

* every rule's wall time and peak memory, from its `benchmark:` file;
* `snakemake -n` before the run and over the whole DAG after it (`--forceall`, every job planned);
* KNN against the matrix-product bound: 2 · users · items · d FLOP at the sgemm rate measured here, and
  against the first paper's per-user FAISS loop (one `IndexFlatIP.search` per user, timed on a sample of
  users and scaled); both for the whole job (start-up and reading the tables included) and for its ranking
  step (matrix products, masking, top-k: what the FAISS loop's time covers);
* evaluate + aggregate (every run scored per user, significance tests and bootstrap over every row): the
  time of rules aggregate and cold_start, which score the ranked lists themselves;
* seconds per epoch of the Shallow Net and BERT4Rec at paper settings (BERT4Rec: max_len 300, hidden = the
  embedding width, full-catalogue softmax) and the time of the paper's epochs: from the training logs of the
  runs, and for the widths the run leaves out from timed training steps of the same modules.

    python benchmarks/onion_scale.py                      # ~1 h on 2 cores, 10 GB of disk
    python benchmarks/onion_scale.py --device cuda --full # on a GPU: every width, whole epochs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "onion_scale.json"
CONFIG = REPO / "config" / "examples" / "onion_scale.yaml"
TREE = ("Snakefile", "workflow", "config", "profiles", "envs")
DATASET = "onion_scale"
WIDTHS = {"musicnn_like": 200, "mert_like": 1024, "jukebox_like": 4800}
CPU_WIDTHS = {"shallow": ("musicnn_like", "mert_like"), "bert4rec": ("musicnn_like",)}
"""On a CPU, the widths each trained model runs at; the others are timed step by step (see module docstring)."""
PAPER_EPOCHS = {"shallow": 100, "bert4rec": 200}
"""The models' default (paper) epoch budgets: what full training is projected for."""
MEMORY_LIMIT_GB = 8.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiorec-onion-scale"))
    parser.add_argument("--max-batches", type=int, default=20, help="batches per epoch of each trained run")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--full", action="store_true", help="every width for every trained model")
    parser.add_argument(
        "--steps-only", action="store_true", help="time the trained models by steps only, not in the workflow"
    )
    parser.add_argument("--faiss-users", type=int, default=300, help="users timed in the per-user FAISS loop")
    parser.add_argument("--scale", default="onion", help="the synthetic world's preset (tiny: a smoke run)")
    parser.add_argument(
        "--remeasure",
        nargs="+",
        metavar="RULE",
        help="in the workdir of a finished run, rerun only these rules (after a change to their code) and add "
        "their figures to the results under 'remeasured', beside the full run's",
    )
    args = parser.parse_args()

    config = run_config(args)
    if args.remeasure:
        remeasure(args, config)
        return
    workdir = workflow_copy(args.workdir, config)
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})
    dry_before = timed([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet"], workdir, env)
    run = timed([sys.executable, "-m", "snakemake", "--cores", str(args.cores)], workdir, env)
    if run["returncode"] != 0:
        sys.exit(f"the workflow failed:\n{run['output'][-5000:]}")
    dry_full = timed([sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1"], workdir, env)

    from onion_scale_parts import peak_gb, rule_table, step_timings, training_rows

    results = workdir / "results" / DATASET
    rules = rule_table(results / "benchmarks")
    ranking = ranking_figures(results, rules, args)
    trained = training_rows(results, PAPER_EPOCHS)
    missing = [
        (model, backbone)
        for model in CPU_WIDTHS
        for backbone in WIDTHS
        if not any(row["model"] == model and row["backbone"] == backbone for row in trained)
    ]
    stepped = step_timings(missing, WIDTHS, results, PAPER_EPOCHS, args.device)

    report = {
        "what": "the Onion-sized synthetic world (config/examples/onion_scale.yaml) through the whole DAG",
        "machine": machine(),
        "device": args.device,
        "max_batches_per_epoch": args.max_batches,
        "workflow": {
            "wall_s": run["seconds"],
            "dry_run_before_s": dry_before["seconds"],
            "dry_run_whole_dag_s": dry_full["seconds"],
            "jobs": sum(rule["jobs"] for rule in rules),
            "peak_rule_rss_gb": max(peak_gb(rule) for rule in rules),
        },
        "goals": {
            **ranking.pop("goals"),
            "snakemake -n <= 10 s": max(dry_before["seconds"], dry_full["seconds"]) <= 10,
        },
        "rules": rules,
        **ranking,
        "training": trained + stepped,
        "load_1min_after": os.getloadavg()[0],
    }
    out = RESULTS if args.scale == "onion" else args.workdir / "onion_scale.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report[key] for key in ("workflow", "goals", "knn", "faiss_loop")}, indent=2))


def ranking_figures(results: Path, rules: list[dict], args: argparse.Namespace) -> dict:
    """KNN against its bound and the FAISS loop, and the evaluation time, with the goals they decide."""
    from onion_scale_parts import faiss_loop, knn_rows, matmul_rate, peak_gb

    rates = {width: matmul_rate(width, args.device) for width in sorted(set(WIDTHS.values()))}
    knn = knn_rows(results, WIDTHS, rates)
    loop = faiss_loop(results, "mert_like", args.faiss_users)
    knn_same_width = next(row for row in knn if row["backbone"] == loop["backbone"])
    loop["ratio_to_knn_job"] = round(loop["projected_s"] / knn_same_width["job_s"], 1)
    loop["ratio_to_knn_ranking"] = round(loop["projected_s"] / knn_same_width["ranking_s"], 1)
    # A ranking at the sgemm rate beats the loop by the ratio of the two rates, and no more.
    loop["ceiling_ratio"] = round(rates[knn_same_width["width"]] / 1e9 / loop["gflops"], 1)
    evaluation_s = sum(r["total_s"] for r in rules if r["rule"] in ("aggregate", "cold_start"))
    goals = {
        "no rule above 8 GB": max(peak_gb(rule) for rule in rules) <= MEMORY_LIMIT_GB,
        "KNN jobs within 2x of the matmul bound": all(row["job_over_bound"] <= 2 for row in knn),
        "KNN rankings within 2x of the matmul bound": all(row["ranking_over_bound"] <= 2 for row in knn),
        "KNN job >= 20x the per-user FAISS loop": loop["ratio_to_knn_job"] >= 20,
        "KNN ranking >= 20x the per-user FAISS loop": loop["ratio_to_knn_ranking"] >= 20,
        "evaluate + aggregate <= 60 s": evaluation_s <= 60,
    }
    return {
        "goals": goals,
        "knn": knn,
        "matmul_gflops": {str(width): round(rate / 1e9, 1) for width, rate in rates.items()},
        "faiss_loop": loop,
        "evaluate_aggregate_s": round(evaluation_s, 1),
    }


def remeasure(args: argparse.Namespace, config: dict) -> None:
    """Rerun ``args.remeasure`` rules of a finished run with the current code; record them, the KNN bounds, the
    FAISS loop and the evaluation time under ``remeasured`` (the full run's figures stay as they were)."""
    from onion_scale_parts import rule_table

    workdir = workflow_copy(args.workdir, config)
    env = os.environ | ({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--rerun-triggers", "mtime"]
    started = time.time()
    run = timed([*command, "--forcerun", *args.remeasure], workdir, env)
    if run["returncode"] != 0:
        sys.exit(f"the rerun failed:\n{run['output'][-5000:]}")
    results = workdir / "results" / DATASET
    rules = rule_table(results / "benchmarks", since=started)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    report = json.loads(RESULTS.read_text())
    report["remeasured"] = {
        "rules_rerun": args.remeasure,
        "commit": commit.stdout.strip(),
        "machine": machine(),
        "wall_s": run["seconds"],
        **ranking_figures(results, rules, args),
        "rules": rules,
        "load_1min_after": os.getloadavg()[0],
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report["remeasured"][key] for key in ("goals", "knn", "faiss_loop")}, indent=2))


def run_config(args: argparse.Namespace) -> dict:
    """The example's config; on a CPU, the trained models at the widths two cores can finish (module docstring)."""
    config = yaml.safe_load(CONFIG.read_text())
    config["datasets"][DATASET]["options"]["scale"] = args.scale
    if args.steps_only:
        config["models"] = {
            name: model for name, model in config["models"].items() if model["kind"].split("_")[0] not in PAPER_EPOCHS
        }
    for model in config["models"].values():
        options = model.setdefault("options", {})
        kind = model["kind"].removesuffix("_random")
        if kind not in PAPER_EPOCHS:
            continue
        options["max_batches_per_epoch"] = args.max_batches
        options["max_epochs"] = 1
        if args.full or "backbones" not in model:
            continue
        keep = CPU_WIDTHS[kind]
        model["backbones"] = [
            item for item in model["backbones"] if (item if isinstance(item, str) else item["backbone"]) in keep
        ]
    return config  # width-matched references follow their audio models' backbones (audiorec.plan)


def workflow_copy(root: Path, config: dict) -> Path:
    """A copy of the workflow in ``root`` (kept between runs, so a rerun resumes) with ``config``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in TREE:
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target)
        else:
            shutil.copy(REPO / name, target)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def timed(command: list[str], cwd: Path, env: dict) -> dict:
    started = time.perf_counter()
    process = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 2)
    return {"seconds": seconds, "returncode": process.returncode, "output": process.stdout + process.stderr}


def machine() -> dict:
    import numpy
    import polars
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "polars": polars.__version__,
        "load_1min_before": os.getloadavg()[0],
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
