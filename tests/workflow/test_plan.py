"""The plan: what a config runs and what it cannot run, decided without Snakemake and without heavy imports."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from audiorec.errors import ParameterError
from audiorec.plan import Plan, Run

SCORINGS = ("content", "collaborative", "average")

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "librosa", "faiss", "sklearn", "transformers", "matplotlib")


def load(path: Path = REPO / "config" / "config.yaml") -> dict:
    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))  # fills the schema's defaults, as the Snakefile does
    return config


@pytest.fixture
def config() -> dict:
    return load()


def changed(config: dict, change) -> dict:
    edited = copy.deepcopy(config)
    change(edited)
    return edited


def test_default_config_runs_every_model_on_its_backbones_and_controls(config):
    plan = Plan.from_config(config)
    plan.check()
    assert plan.runs() == [
        Run("knn", "mfcc", 0),
        Run("knn", "ssl_adjacent", 0),
        Run("popularity", "none", 0),
        Run("random", "none", 0),
        Run("shallow", "mfcc", 0),
        Run("shallow", "mfcc_shuffled", 0),
        Run("bert4rec", "mfcc", 0),
        Run("bert4rec", "mfcc_shuffled", 0),
        Run("shallow_random", "none", 0),
        Run("bert4rec_random", "none", 0),
        Run("shallow_random_matched", "mfcc_width", 0),
        Run("bert4rec_random_matched", "mfcc_width", 0),
        Run("elsa", "none", 0),
        Run("hybrid", "mfcc", 0),
        Run("hybrid", "mfcc_shuffled", 0),
        *(Run(f"bimodal_{scoring}", backbone, 0) for scoring in SCORINGS for backbone in ("mfcc", "mfcc_shuffled")),
    ]
    assert plan.control_backbones() == ["mfcc_shuffled", "mfcc_width"]
    assert plan.recommendation_backbones() == ["mfcc", "ssl_adjacent"]
    assert plan.trained_models() == [
        "shallow",
        "bert4rec",
        "shallow_random",
        "bert4rec_random",
        "shallow_random_matched",
        "bert4rec_random_matched",
        "elsa",
        "hybrid",
        *(f"bimodal_{scoring}" for scoring in SCORINGS),
    ]
    # ELSA and the collaborative and average scorings need a track's listens: they rank no new release
    assert plan.new_item_models() == ["knn", "random", "shallow", "bert4rec", "hybrid", "bimodal_content"]
    assert plan.trained_backbones() == ["ssl_adjacent"] and plan.extracted_backbones() == ["mfcc", "ssl_adjacent"]


def test_a_run_reads_the_table_of_its_source_and_only_a_control_shuffles_it(config):
    shallow = Plan.from_config(config).models["shallow"]
    assert [shallow.source_of(name) for name in ("mfcc", "mfcc_shuffled")] == ["mfcc", "mfcc"]
    assert [shallow.is_shuffled(name) for name in ("mfcc", "mfcc_shuffled")] == [False, True]
    with pytest.raises(ParameterError, match="does not run on backbone 'ssl_adjacent'"):
        shallow.source_of("ssl_adjacent")
    matched = Plan.from_config(config).models["bert4rec_random_matched"]
    assert matched.source_of("mfcc_width") == "mfcc" and not matched.is_shuffled("mfcc_width")


def test_deterministic_models_run_with_the_first_seed_only(config):
    config["seeds"] = [0, 1, 2]
    runs = Plan.from_config(config).runs()
    seeds = {(run.model, run.backbone): [] for run in runs}
    for run in runs:
        seeds[run.model, run.backbone].append(run.seed)
    assert seeds["knn", "mfcc"] == [0] and seeds["popularity", "none"] == [0]
    assert seeds["random", "none"] == [0, 1, 2] and seeds["shallow", "mfcc_shuffled"] == [0, 1, 2]
    assert seeds["elsa", "none"] == [0, 1, 2] and seeds["bimodal_average", "mfcc"] == [0, 1, 2]
    assert len(runs) == 2 + 1 + 3 * 18  # knn × 2 and popularity once; random and 17 trained runs per seed


def test_width_matched_references_follow_the_audio_models_of_their_kind(config):
    config["models"]["shallow"]["backbones"] = ["ssl_adjacent", {"backbone": "mfcc", "shuffle": True}]
    plan = Plan.from_config(config)
    # shallow_random_matched is the variant of shallow, which now runs on ssl_adjacent (its shuffled mfcc is no
    # audio run); bert4rec_random_matched still follows bert4rec's mfcc.
    assert [ref.run for ref in plan.models["shallow_random_matched"].references] == ["ssl_adjacent_width"]
    assert [ref.run for ref in plan.models["bert4rec_random_matched"].references] == ["mfcc_width"]
    config["models"]["shallow_random_matched"]["backbones"] = ["mfcc", "ssl_adjacent"]
    explicit = Plan.from_config(config).models["shallow_random_matched"]
    assert [ref.run for ref in explicit.references] == ["mfcc_width", "ssl_adjacent_width"]


def test_extraction_shards_cover_the_catalogue_and_an_empty_one_gets_one(config):
    config["embed"]["shard_size"] = 100
    plan = Plan.from_config(config)
    assert [len(plan.shards(n)) for n in (0, 1, 100, 101, 400)] == [1, 1, 1, 2, 4]


def test_significance_tests_find_variants_and_chance_by_trait_not_by_name(config):
    config["models"]["coin"] = config["models"].pop("random")
    plan = Plan.from_config(config)
    assert plan.random_variants()["shallow"] == ["shallow_random", "shallow_random_matched"]
    assert plan.random_variants()["knn"] == []
    assert plan.significance_tests()["chance_model"] is None
    assert plan.significance_tests(against_chance=True)["chance_model"] == "coin"


def test_final_targets_of_the_default_config():
    targets = Plan.from_config(load()).final_targets()
    assert sorted(targets) == sorted(
        f"results/demo/{name}"
        for name in (
            "tables/probes.csv",
            "tables/probes.md",
            "tables/recommendation.csv",
            "tables/recommendation.md",
            "figures/recommendation.png",
            "tables/mir_vs_recs.md",
            "tables/cold_start.md",
            "tables/ssl.md",
        )
    )


def test_a_dataset_without_a_listening_log_gets_embeddings_and_probes_only():
    config = load(REPO / "config" / "examples" / "fma.yaml")
    targets = Plan.from_config(config).final_targets()
    assert targets and not any("recommendation" in target for target in targets)
    (dataset,) = config["datasets"]
    assert f"results/{dataset}/tables/probes.md" in targets
    assert {f"results/{dataset}/embeddings/{name}.parquet" for name in config["backbones"]} <= set(targets)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["models"]["knn"].update(kind="svd"), "models.knn: unknown model kind 'svd'; known kinds are"),
        (lambda c: c["backbones"]["mfcc"].update(kind="vggish"), "backbones.mfcc: unknown backbone kind 'vggish'"),
        (
            lambda c: c["models"]["shallow"]["options"].update(lr=1e-3),
            r"models.shallow.options: model shallow: unknown option\(s\) \['lr'\]",
        ),
        (
            lambda c: c["models"]["bert4rec"]["options"].update(max_len=1),
            "models.bert4rec.options: .*max_len must be an integer >= 2",
        ),
        (
            lambda c: c["backbones"]["mfcc"]["options"].update(n_mfc=20),
            r"backbones.mfcc.options: backbone mfcc: unknown option\(s\) \['n_mfc'\]",
        ),
        (
            lambda c: c["backbones"]["ssl_adjacent"]["options"].update(loss="triplet"),
            "backbones.ssl_adjacent.options: .*loss",
        ),
        (
            lambda c: c["models"]["shallow"]["options"].update(item_dim="match"),
            "models.shallow: item_dim 'match' is for random-init models",
        ),
        (lambda c: c["models"]["knn"].update(backbones=["mfcc", "vggish"]), r"unknown backbone\(s\) \['vggish'\]"),
    ],
)
def test_kinds_and_options_are_checked_when_the_plan_is_built(config, change, message):
    with pytest.raises(ParameterError, match=message):
        Plan.from_config(changed(config, change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["backbones"].update(mfcc_shuffled={"kind": "mfcc"}),
            r"\['mfcc_shuffled'\] are taken by shuffled-embedding controls",
        ),
        (
            lambda c: c["backbones"].update(onion={"kind": "precomputed", "options": {"feature": "mfcc_stats"}}),
            "backbone 'onion' reads the precomputed feature 'mfcc_stats', which datasets.demo",
        ),
        (lambda c: c["datasets"]["demo"].pop("split"), "datasets.demo: source 'demo' has a listening log, so a split"),
        (
            lambda c: c["datasets"]["demo"]["options"].update(n_trackz=50),
            r"datasets.demo: demo dataset options: unknown option\(s\) \['n_trackz'\]; known options are "
            r"\[.*'n_tracks'",
        ),
        (lambda c: c["datasets"]["demo"]["options"].update(n_tracks=3), "datasets.demo: n_tracks must be >= 10, got 3"),
        (
            lambda c: c["datasets"].update(
                mixes={"source": "aotm2011", "options": {"playlists": "mixes.json", "audio_map": "map.csv"}}
            ),
            "datasets.mixes has neither label splits nor a listening log",
        ),
        (lambda c: c["layer_sweep"].update(backbones=["mfcc_width"]), r"layer_sweep.backbones \['mfcc_width'\]"),
        (
            lambda c: c["layer_sweep"].update(backbones=["mfcc"], model="shallow"),
            "layer_sweep.model 'shallow' must name a configured model that reads embeddings without training",
        ),
        (lambda c: c["probes"].update(backbones=["mfcc", "jukebox"]), r"probes.backbones .* \['jukebox'\]"),
    ],
)
def test_configs_whose_parts_do_not_fit_fail_the_check(config, change, message):
    plan = Plan.from_config(changed(config, change))
    with pytest.raises(ParameterError, match=message):
        plan.check()


@pytest.mark.parametrize("source", ["local", "music4all_onion", "fma", "irmas", "aotm2011"])
def test_a_typo_in_any_sources_options_fails_the_check_naming_the_option(source):
    config = yaml.safe_load((REPO / "config" / "examples" / f"{source}.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    (name,) = config["datasets"]
    Plan.from_config(config).check()
    config["datasets"][name]["options"]["audio_dirr"] = "music"
    plan = Plan.from_config(config)
    with pytest.raises(
        ParameterError,
        match=rf"datasets.{name}: {source} options: unknown option\(s\) \['audio_dirr'\]; known options are \['",
    ):
        plan.check()


def test_a_bad_source_option_value_fails_the_check_without_importing_the_reader():
    code = """
    import sys
    import yaml
    from snakemake.utils import validate
    from audiorec.errors import ParameterError
    from audiorec.plan import Plan
    config = yaml.safe_load(open("config/examples/fma.yaml"))
    validate(config, "config/schema.yaml")
    (name,) = config["datasets"]
    config["datasets"][name]["options"]["subset"] = "tiny"
    try:
        Plan.from_config(config).check()
    except ParameterError as error:
        print("ERROR", error)
    print("READER", "audiorec.datasets.fma" in sys.modules, "polars" in sys.modules)
    """
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "subset must be one of ['small', 'medium', 'large']; got 'tiny'" in process.stdout
    assert "READER False False" in process.stdout


def test_a_model_class_whose_base_contradicts_its_registry_traits_is_refused():
    from audiorec.recommenders.base import Recommender

    with pytest.raises(TypeError, match="trained=True contradicts its base class"):
        type("NotTrained", (Recommender,), {"kind": "shallow"})


def test_every_registered_model_class_has_its_registry_traits():
    from dataclasses import asdict

    from audiorec.recommenders import RECOMMENDERS, recommender_class

    for kind in RECOMMENDERS:
        model = recommender_class(kind)
        assert {name: getattr(model, name) for name in asdict(RECOMMENDERS.traits(kind))} == asdict(
            RECOMMENDERS.traits(kind)
        )


def heavy_modules_after(code: str, cwd: Path = REPO) -> list[str]:
    """The heavy modules a fresh interpreter has imported once ``code`` has run (printed at exit)."""
    probe = f"import atexit, sys\natexit.register(lambda: print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules]))\n"
    process = subprocess.run(
        [sys.executable, "-c", probe + textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, check=False
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("HEAVY")]
    assert lines, process.stdout + process.stderr
    return eval(lines[-1].removeprefix("HEAVY"))  # the list printed above


def test_planning_every_example_config_imports_no_heavy_dependency():
    code = """
    from pathlib import Path
    import yaml
    from snakemake.utils import validate
    from audiorec.plan import Plan
    for path in [Path("config/config.yaml"), *sorted(Path("config/examples").glob("*.yaml"))]:
        config = yaml.safe_load(path.read_text())
        validate(config, "config/schema.yaml")
        plan = Plan.from_config(config)
        plan.check()
        plan.final_targets(), plan.runs(), plan.significance_tests()
    """
    assert heavy_modules_after(code) == []


def test_building_the_dag_imports_no_heavy_dependency(tmp_path):
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        source = REPO / name
        (copy_dir := tmp_path / name).parent.mkdir(exist_ok=True)
        if source.is_dir():
            import shutil

            shutil.copytree(source, copy_dir)
        else:
            copy_dir.write_bytes(source.read_bytes())
    code = """
    import sys
    from snakemake.cli import main
    sys.argv = ["snakemake", "--dry-run", "--cores", "1", "--quiet"]
    main()
    """
    assert heavy_modules_after(code, cwd=tmp_path) == []


def test_diversity_is_measured_in_one_configured_space(config):
    """ILD's reference space: the named backbone, else the baseline when it is configured, else none."""

    def plan_with(**evaluation) -> Plan:
        return Plan.from_config(changed(config, lambda edited: edited["evaluation"].update(evaluation)))

    assert Plan.from_config(config).diversity_backbone() == "mfcc"
    assert plan_with(diversity_backbone="ssl_adjacent").diversity_backbone() == "ssl_adjacent"
    assert plan_with(baseline_backbone=None).diversity_backbone() is None
    assert plan_with(baseline_backbone="musicnn").diversity_backbone() is None  # not a backbone of this config
    with pytest.raises(ParameterError, match="diversity_backbone 'nope'"):
        plan_with(diversity_backbone="nope").diversity_backbone()
