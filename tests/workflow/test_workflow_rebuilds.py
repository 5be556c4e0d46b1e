"""What Snakemake reruns after a change to the tiny world's config or code, and nothing more."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from tiny_workflow import (
    TABLE_RULES,
    executed_after,
    planned_after,
    planned_jobs,
    snakemake,
    write_config,
)

from audiorec.plan import paths

pytestmark = pytest.mark.workflow


def test_second_run_has_nothing_to_do(workdir):
    assert planned_jobs(workdir) == []


def test_changing_one_backbone_reruns_only_its_descendants(workdir, tiny_config, tmp_path):
    """mfcc8's options change: the candidate set is rebuilt, but every backbone still embeds every train track
    except the two broken files, so its checksum is unchanged and no run of another backbone or model ranks or
    trains again (their evaluations, seconds each, are redone with the same numbers). A dry run, which cannot
    know that before extraction, lists more; adding a backbone is checked the same way in
    tests/workflow/test_dataset_workflow.py."""

    def change(changed: dict) -> None:
        changed["backbones"]["mfcc8"]["options"]["n_fft"] = 1024

    jobs = executed_after(workdir, tiny_config, change, tmp_path)
    assert sorted({rule for rule, _ in jobs}) == [
        "aggregate",
        "candidates",
        "cold_start",
        "embed_gather",
        "embed_shard",
        "figures",
        "layer_figure",  # a table rule: it redraws from the unchanged sweep
        "mir_vs_recs",
        "probe",
        "probe_table",
        "recommend",
        "recommend_new_items",
        "ssl_table",
    ]
    assert {w["backbone"] for rule, w in jobs if rule not in (*TABLE_RULES, "candidates")} == {"mfcc8"}
    assert sum(rule == "embed_shard" for rule, _ in jobs) == 3  # 200 tracks in shards of 80
    assert [w["model"] for rule, w in jobs if rule in ("recommend", "recommend_new_items")] == ["knn", "knn"]


@pytest.mark.parametrize(
    ("backbone", "options", "own_rules"),
    [
        ("mfcc20", {"kind": "mfcc", "options": {"n_mfcc": 20}}, {"embed_shard", "embed_gather", "probe"}),
        ("ssl_tiny", {"similarity": "cosine"}, {"ssl_train", "embed_shard", "embed_gather", "probe"}),
    ],
)
def test_adding_or_retraining_a_backbone_extracts_and_probes_only_that_backbone(
    workdir, tiny_config, backbone, options, own_rules
):
    """The forward passes and probes a dry run plans, before the candidate set is known: only the new or retrained
    backbone's (jobs behind the candidate set, the layer sweep among them, are listed as an upper bound)."""

    def change(changed: dict) -> None:
        if backbone in changed["backbones"]:
            changed["backbones"][backbone]["options"].update(options)
        else:
            changed["backbones"][backbone] = options

    jobs = planned_after(workdir, tiny_config, change)
    heavy = {"ssl_train", "embed_shard", "embed_gather", "probe"}
    assert {rule for rule, _ in jobs} & heavy == own_rules
    assert {w["backbone"] for rule, w in jobs if rule in heavy} == {backbone}
    assert ("candidates", {"dataset": "demo"}) in jobs


def test_changing_only_the_layer_reruns_no_forward_pass(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["backbones"]["mfcc"]["layer"] = "mean"

    jobs = planned_after(workdir, tiny_config, change)
    assert "embed_shard" not in {rule for rule, _ in jobs}
    assert ("embed_gather", {"dataset": "demo", "backbone": "mfcc"}) in jobs


def test_changing_a_model_reruns_only_that_model(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["knn"]["options"] = {"standardize": True}

    jobs = planned_after(workdir, tiny_config, change)
    assert sorted({rule for rule, _ in jobs}) == [
        "aggregate",
        "cold_start",
        "figures",
        "layer_figure",
        "layer_sweep",  # it ranks every layer with knn
        "mir_vs_recs",
        "recommend",
        "recommend_new_items",
    ]
    assert {w["model"] for rule, w in jobs if rule not in TABLE_RULES and "model" in w} == {"knn"}


def test_editing_a_script_reruns_its_rule_and_descendants_only(workdir):
    script = workdir / "workflow" / "scripts" / "aggregate.py"
    original = script.read_text()
    original_times = (script.stat().st_atime_ns, script.stat().st_mtime_ns)
    script.write_text(original + "# an edit\n")
    try:
        changed = snakemake(workdir, "--list-changes", "code").stdout.split()
        summary = snakemake(workdir, "--summary").stdout.splitlines()
        jobs = planned_jobs(workdir)
        # Without the code trigger, the edit is still reported but reruns nothing.
        without_code = planned_jobs(workdir, "--rerun-triggers", "mtime", "params", "input", "software-env")
    finally:
        # Snakemake's code trigger compares a script's mtime with its outputs', so restore both.
        script.write_text(original)
        os.utime(script, ns=original_times)
    main_table = (paths.RECOMMENDATION_CSV, paths.RECOMMENDATION_MD, paths.SIGNIFICANCE, paths.PER_USER_METRICS)
    cold_table = (
        paths.COLD_START_CSV,
        paths.COLD_START_MD,
        paths.COLD_START_SIGNIFICANCE,
        paths.COLD_START_PER_USER_METRICS,
    )
    scored = [pattern.format(dataset="demo") for pattern in (*main_table, *cold_table)]
    assert sorted(path for path in changed if path.startswith("results/")) == sorted(scored)
    pending = {row.split("\t")[2] for row in summary[1:] if row.endswith("\tupdate pending")}
    assert pending == {"aggregate", "cold_start", "mir_vs_recs", "figures"}
    assert sorted({rule for rule, _ in jobs}) == ["aggregate", "cold_start", "figures", "mir_vs_recs"]
    assert without_code == []
    assert planned_jobs(workdir) == []  # the outputs are again newer than the script


def test_changing_the_cold_start_cut_offs_rescores_only_the_new_release_lists(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed.setdefault("evaluation", {})["cold_ks"] = [5, 10]

    jobs = planned_after(workdir, tiny_config, change)
    assert sorted({rule for rule, _ in jobs}) == ["cold_start"]


def test_adding_a_shuffled_control_runs_only_that_control(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["bert4rec"]["backbones"].append({"backbone": "mfcc", "shuffle": True})

    jobs = planned_after(workdir, tiny_config, change)
    rules = sorted({rule for rule, _ in jobs})
    assert rules == [
        "aggregate",
        "cold_start",
        "figures",
        "mir_vs_recs",
        "recommend_new_items",
        "train_recommender",
    ]
    runs = {(w["model"], w["backbone"]) for rule, w in jobs if rule not in TABLE_RULES}
    assert runs == {("bert4rec", "mfcc_shuffled")}


def test_changing_a_trained_model_retrains_only_that_model(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["shallow"]["options"]["margin"] = 0.3

    jobs = planned_after(workdir, tiny_config, change)
    trained = sorted(w["backbone"] for rule, w in jobs if rule == "train_recommender")
    assert trained == ["mfcc", "mfcc_shuffled"]
    assert {w["model"] for rule, w in jobs if rule not in TABLE_RULES} == {"shallow"}


def test_invalid_config_is_rejected_before_anything_runs(workdir, tiny_config):
    broken = yaml.safe_load(yaml.safe_dump(tiny_config))
    broken["models"]["knn"]["kind"] = "svd"
    write_config(workdir, broken)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--dry-run"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        write_config(workdir, tiny_config)
    assert process.returncode != 0
    assert "svd" in process.stdout + process.stderr
