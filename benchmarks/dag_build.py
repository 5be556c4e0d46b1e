"""How long Snakemake takes to build the DAG of a large config, against an earlier revision of the workflow.

The config has 10 backbones (every registered kind, so building the DAG would import each one's model code if it
read traits from the classes), 6 models and 3 seeds on the demo dataset. Both workflows dry-run in their own
copy, on the same fetched dataset and with the candidate set in place, so every run's job is planned; the runs
alternate and the median wall time of each is reported with their ratio. Each dry run also reports which heavy
modules the Snakemake process imported. Two floors are dry-run beside them: a one-rule workflow (Snakemake's own
start-up) and a workflow with the same jobs and the same edges as the current DAG, one rule per rule of it, whose
inputs are looked up in a dict (what Snakemake itself spends on a DAG of this size, with none of audiorec's work:
no plan, no config validation, no checkpoints, no imports). The goal is the current dry run within 1.5x of the
second floor.

    python benchmarks/dag_build.py --baseline 1251a87 --repeats 9     # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "dag_build.json"
HEAVY = ("torch", "librosa", "faiss", "sklearn", "transformers", "matplotlib")
TREE = ("Snakefile", "workflow", "config", "profiles", "resources", "envs")

BACKBONES = {
    "mfcc": {"kind": "mfcc"},
    "mfcc20": {"kind": "mfcc", "options": {"n_mfcc": 20}},
    "musicnn": {"kind": "musicnn"},
    "mert": {"kind": "mert", "options": {"size": "v1-95m"}},
    "music2vec": {"kind": "music2vec", "options": {"size": "v1"}},
    "musicfm": {"kind": "musicfm", "options": {"size": "25hz"}},
    "muq": {"kind": "muq", "options": {"size": "large"}},
    "encodecmae": {"kind": "encodecmae", "options": {"size": "base"}},
    "ssl_adjacent": {"kind": "ssl", "options": {"loss": "infonce", "positive": "adjacent"}},
    "ssl_cpc": {"kind": "ssl", "options": {"loss": "cpc"}},
}
MODELS = {
    "knn": {"kind": "knn"},
    "popularity": {"kind": "popularity"},
    "random": {"kind": "random"},
    "shallow": {"kind": "shallow"},
    "bert4rec": {"kind": "bert4rec"},
    "shallow_random": {"kind": "shallow_random"},
}

PROBE = """
import atexit, sys
atexit.register(lambda: print("HEAVY", [m for m in {heavy!r} if m in sys.modules], file=sys.stderr))
from snakemake.cli import main
sys.argv = ["snakemake", "--dry-run", "--cores", "1"]
main()
"""


def large_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["backbones"] = {name: {**entry, "layer": "last"} for name, entry in BACKBONES.items()}
    config["models"] = MODELS
    config["seeds"] = [0, 1, 2]
    return config


def workflow_copy(source: Path, root: Path, config: dict) -> Path:
    """A copy of the workflow at ``source`` with ``config``, sharing the fetched demo dataset."""
    root.mkdir(parents=True)
    for name in TREE:
        if (source / name).is_dir():
            shutil.copytree(source / name, root / name)
        elif (source / name).exists():
            shutil.copy(source / name, root / name)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def dry_run(workdir: Path, pythonpath: Path) -> tuple[float, int, list[str]]:
    """Wall seconds, planned jobs and heavy modules of one dry run."""
    environment = os.environ | {"PYTHONPATH": str(pythonpath)}
    start = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"dry run in {workdir} failed:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    output = process.stdout + process.stderr
    total = [line.split()[-1] for line in output.splitlines() if line.startswith("total")]
    heavy = [line for line in output.splitlines() if line.startswith("HEAVY")][-1].removeprefix("HEAVY ")
    return seconds, int(total[-1]) if total else 0, eval(heavy)


def prepare_data(workdir: Path) -> None:
    """Fetch the demo dataset once and put an empty candidate exclusion list in place, so the dry run plans
    every run instead of stopping at the checkpoints."""
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "results/demo/data/tracks.parquet"],
        cwd=workdir,
        check=True,
        env=os.environ | {"PYTHONPATH": str(REPO / "src")},
    )
    split = workdir / "results" / "demo" / "split"
    split.mkdir(parents=True, exist_ok=True)
    (split / "uncovered.csv").write_text("track_id\n")


def floor_workflow(root: Path) -> Path:
    """A workflow of one rule and no imports: what a dry run costs before any of audiorec's work."""
    root.mkdir()
    (root / "Snakefile").write_text('rule all:\n    output:\n        "done"\n    shell:\n        "touch {output}"\n')
    return root


def same_size_workflow(root: Path, dot: str) -> Path:
    """A workflow with the jobs and edges of the DAG ``dot`` (``snakemake --dag`` output), and nothing else.

    Each job of rule ``r`` becomes ``j/r/<node id>``; its inputs are the files of the jobs it depends on, read from a
    dict by an input function, the cheapest way Snakemake has to give each job of a rule its own inputs.
    """
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', dot, re.MULTILINE))
    inputs: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE):
        inputs[target].append(f"j/{nodes[source]}/{source}")
    (final,) = [node for node, rule in nodes.items() if rule == "all"]
    lines = [f"DEPS = {inputs!r}", "", "rule all:", f"    input: DEPS[{final!r}]", ""]
    for rule in sorted(set(nodes.values()) - {"all"}):
        lines += [
            f"rule {rule}:",
            f'    output: "j/{rule}/{{n}}"',
            "    input: lambda wildcards: DEPS[wildcards.n]",
            '    wildcard_constraints: n=r"\\d+"',
            '    shell: "touch {output}"',
            "",
        ]
    root.mkdir()
    (root / "Snakefile").write_text("\n".join(lines))
    return root


def dag_of(workdir: Path, pythonpath: Path) -> str:
    """The ``snakemake --dag`` (dot) output of the workflow in ``workdir``."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--dag", "--cores", "1"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(pythonpath)},
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision of the workflow to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = large_config()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        baseline_tree = scratch / "baseline-tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline_tree), args.baseline], cwd=REPO, check=True)
        try:
            trees = {"current": REPO, "baseline": baseline_tree}
            copies = {name: workflow_copy(tree, scratch / name, config) for name, tree in trees.items()}
            copies["snakemake_floor"] = floor_workflow(scratch / "floor")
            prepare_data(copies["current"])
            shutil.copytree(copies["current"] / "results", copies["baseline"] / "results", symlinks=True)
            dot = dag_of(copies["current"], REPO / "src")
            copies["snakemake_same_size"] = same_size_workflow(scratch / "same_size", dot)
            times: dict[str, list[float]] = {name: [] for name in copies}
            jobs, heavy = {}, {}
            for _ in range(args.repeats):
                for name, workdir in copies.items():
                    seconds, jobs[name], heavy[name] = dry_run(workdir, trees.get(name, REPO) / "src")
                    times[name].append(seconds)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline_tree)], cwd=REPO, check=False)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "config": {"backbones": len(BACKBONES), "models": len(MODELS), "seeds": 3},
        "baseline_revision": args.baseline,
        "jobs": jobs,
        "seconds": times,
        "median_seconds": medians,
        "speedup": medians["baseline"] / medians["current"],
        "speedup_above_floor": (medians["baseline"] - medians["snakemake_floor"])
        / (medians["current"] - medians["snakemake_floor"]),
        "current_over_same_size_floor": medians["current"] / medians["snakemake_same_size"],
        "same_size_floor_rules": len(set(re.findall(r'^\s*\d+\[label = "([^"\\]+)', dot, re.MULTILINE))),
        "heavy_modules_imported": heavy,
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
