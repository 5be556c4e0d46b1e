# Config access, wildcard constraints and input functions shared by every stage.

import math
import re

import pyarrow.parquet as pq

from audiorec.config import canonical_json
from audiorec.controls import SHUFFLED_SUFFIX, WIDTH_SUFFIX, matches_width
from audiorec.backbones import backbone_class
from audiorec.datasets import (
    SOURCE_FEATURES,
    dataset_tables,
    fetch_output_paths,
    get_source,
)
from audiorec.download import DownloadSpec, substitute_downloads
from audiorec.playlists import PLAYLIST_TASK
from audiorec.precomputed import PRECOMPUTED_KIND, feature_option, precomputed_options
from audiorec.recommenders import TrainedRecommender, recommender_class


def _alternatives(names):
    return "|".join(re.escape(name) for name in names)


def check_registry_kinds():
    """Fail before any job runs if the config names a source, backbone or model that is not implemented."""
    for entry in config["datasets"].values():
        get_source(entry["source"])
    for entry in config["backbones"].values():
        # A precomputed backbone's vectors come from a dataset; data.smk checks that one provides them.
        if entry["kind"] != PRECOMPUTED_KIND:
            backbone_class(entry["kind"])
    for entry in config["models"].values():
        recommender_class(entry["kind"])


check_registry_kinds()

# The {backbone} of models that use no embeddings (popularity, random).
NO_BACKBONE = "none"
EVAL_SPLITS = ["val", "test"]
# The split of warm users' first listens to new releases, ranked apart (rule recommend_new_items).
COLD_SPLIT = "cold_test"


def width_matched(model):
    """Whether a model is a random-init variant trained at its backbones' widths (item_dim: match)."""
    return matches_width(config["models"][model].get("options"))


def audio_backbones_of_kind(kind):
    """Backbones (not shuffled) that the models whose random-init variant is ``kind`` run on, in config order."""
    names = {
        source
        for model, entry in config["models"].items()
        if recommender_class(entry["kind"]).random_variant == kind
        for _, source, shuffle in backbone_references(model)
        if source is not None and not shuffle
    }
    return [name for name in config["backbones"] if name in names]


def backbone_references(model):
    """(run backbone, embeddings backbone, shuffled) for each backbone a model runs on.

    A reference is a backbone name or {backbone: name, shuffle: true}; the latter is the shuffled-embedding
    control, which runs on the same table with rows permuted and is reported as backbone "<name>_shuffled". A
    width-matched random-init model (audiorec.controls) runs once per backbone of the models it is the variant
    of (or of its own ``backbones``), reading only the table's width, as backbone "<name>_width".
    """
    entry = config["models"][model]
    if width_matched(model):
        names = entry.get("backbones") or audio_backbones_of_kind(entry["kind"])
        return [(name + WIDTH_SUFFIX, name, False) for name in names]
    if not recommender_class(entry["kind"]).uses_embeddings:
        return [(NO_BACKBONE, None, False)]
    references = []
    for item in entry.get("backbones", list(config["backbones"])):
        name, shuffle = (
            (item, False)
            if isinstance(item, str)
            else (item["backbone"], item["shuffle"])
        )
        if name not in config["backbones"]:
            raise ValueError(f"model {model!r} names unknown backbone {name!r}")
        references.append((name + SHUFFLED_SUFFIX if shuffle else name, name, shuffle))
    return references


def control_backbones():
    """Run backbone names of every shuffled-embedding control and width-matched reference in the config."""
    names = {
        run
        for model in config["models"]
        for run, source, _ in backbone_references(model)
        if source is not None and run != source
    }
    clash = sorted(names & set(config["backbones"]))
    if clash:
        raise ValueError(
            f"backbone name(s) {clash} are taken by shuffled-embedding controls or width-matched references"
        )
    return sorted(names)


def trained_models():
    """Models with a training step (rule train_recommender)."""
    return [
        name
        for name, entry in config["models"].items()
        if issubclass(recommender_class(entry["kind"]), TrainedRecommender)
    ]


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    backbone=_alternatives([*config["backbones"], *control_backbones(), NO_BACKBONE]),
    model=_alternatives(config["models"]),
    seed=r"\d+",
    shard=r"\d+",
    split=_alternatives([*EVAL_SPLITS, COLD_SPLIT]),


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def backbone_spec(name):
    """What determines a backbone's forward pass; its layer is left out (see embed_gather)."""
    entry = config["backbones"][name]
    return {"kind": entry["kind"], "options": entry.get("options", {})}


def backbone_gpus(name):
    """GPUs an extraction job of this backbone asks the scheduler for (0 for CPU-only features)."""
    return int(backbone_class(config["backbones"][name]["kind"]).uses_gpu)


def model_spec(name):
    entry = config["models"][name]
    return {"kind": entry["kind"], "options": entry.get("options", {})}


def model_gpus(name):
    """GPUs a run of this model asks the scheduler for (0 for models that train and rank on the CPU)."""
    return int(recommender_class(config["models"][name]["kind"]).uses_gpu)


def model_is_deterministic(name):
    return recommender_class(config["models"][name]["kind"]).deterministic


def model_runs():
    """(model, backbone, seed) of every run in the results table."""
    runs = []
    for model in config["models"]:
        backbones = [run for run, _, _ in backbone_references(model)]
        seeds = (
            config["seeds"][:1] if model_is_deterministic(model) else config["seeds"]
        )
        runs += [(model, backbone, seed) for backbone in backbones for seed in seeds]
    return runs


def fetch_rule(source):
    """The checkpoint that fetches datasets of a source (data.smk defines one per source in the config)."""
    return f"fetch_{source}"


def tracks_table(wildcards):
    """The tracks table, through the fetch checkpoint, so the shard count is known once it exists."""
    source = config["datasets"][wildcards.dataset]["source"]
    fetch = getattr(checkpoints, fetch_rule(source))
    return fetch.get(dataset=wildcards.dataset).output.tracks


def dataset_has(dataset, table):
    """Whether a dataset provides results/{dataset}/data/<table>.parquet, known before anything runs.

    ``table`` is e.g. "interactions", "playlists", "labels/genre", "labels/instrument" or
    "features/mfcc_stats" (see audiorec.datasets.SOURCE_OUTPUTS); schedule a stage only where it applies.
    """
    entry = config["datasets"][dataset]
    return table in dataset_tables(entry["source"], entry.get("options"))


def embed_shards(wildcards):
    n_tracks = pq.ParquetFile(tracks_table(wildcards)).metadata.num_rows
    n_shards = max(1, math.ceil(n_tracks / config["embed"]["shard_size"]))
    pattern = "results/{dataset}/embeddings/{backbone}/shard{shard}.{kind}.parquet"
    return {
        kind: [
            pattern.format(
                dataset=wildcards.dataset,
                backbone=wildcards.backbone,
                shard=shard,
                kind=kind,
            )
            for shard in range(n_shards)
        ]
        for kind in ("vectors", "failures")
    }


def split_file(dataset, name):
    return f"results/{dataset}/split/{name}.parquet"


def split_files(model):
    """Split tables a run of ``model`` reads (rule recommend passes them to audiorec.runs by these names)."""
    names = ["train", "heard_before_window"]
    return names + ["val"] if model in trained_models() else names


def recommendation_backbones():
    """Backbones whose embeddings some model of the config reads: together they decide the candidate set."""
    return sorted(
        {
            source
            for model in config["models"]
            for _, source, _ in backbone_references(model)
            if source is not None
        }
    )


def run_inputs(wildcards):
    """Split tables, the candidate set (through checkpoint candidates) and embeddings a run of a model reads."""
    inputs = {
        name: split_file(wildcards.dataset, name)
        for name in split_files(wildcards.model)
    }
    candidates = checkpoints.candidates.get(dataset=wildcards.dataset)
    inputs["uncovered"] = candidates.output.uncovered
    source = run_source(wildcards.model, wildcards.backbone)
    if source is not None:
        inputs["embeddings"] = (
            f"results/{wildcards.dataset}/embeddings/{source}.parquet"
        )
    return inputs


def run_source(model, backbone):
    """The backbone whose embeddings table a run reads (None for a model without one)."""
    sources = {run: source for run, source, _ in backbone_references(model)}
    if backbone not in sources:
        raise ValueError(f"model {model!r} does not run on backbone {backbone!r}")
    return sources[backbone]


def recommend_inputs(wildcards):
    """Inputs of rules recommend and train_recommender: what the run reads, and the users to rank."""
    targets = [split_file(wildcards.dataset, split) for split in EVAL_SPLITS]
    return run_inputs(wildcards) | {"targets": targets}


def new_items_inputs(wildcards):
    """Inputs of rule recommend_new_items (the cold split; a trained model's checkpoint)."""
    if not ranks_new_items(wildcards.model):
        raise ValueError(
            f"model {wildcards.model!r} cannot rank items unheard in train"
        )
    inputs = run_inputs(wildcards)
    inputs[COLD_SPLIT] = split_file(wildcards.dataset, COLD_SPLIT)
    if wildcards.model in trained_models():
        run = f"results/{wildcards.dataset}/runs/{wildcards.model}/{wildcards.backbone}/seed{wildcards.seed}"
        inputs["checkpoint"] = f"{run}/checkpoint.pt"
    return inputs


def run_split_files(wildcards):
    """Names of the split inputs a run's script passes on, with the candidate set."""
    return [*split_files(wildcards.model), "uncovered"]


def is_shuffled(model, backbone):
    """Whether a run is a shuffled-embedding control (rows permuted with the run's seed)."""
    return any(
        shuffle for run, _, shuffle in backbone_references(model) if run == backbone
    )


def random_variants():
    """Model name -> names of the models that are its random-init variant (by registry kind, not by name)."""
    kinds = {name: entry["kind"] for name, entry in config["models"].items()}
    return {
        name: [
            other
            for other, other_kind in kinds.items()
            if other_kind == recommender_class(kind).random_variant
        ]
        for name, kind in kinds.items()
    }


def training_runs(wildcards):
    """Every trained run of a dataset (model, backbone, seed) with the path of its per-epoch training log."""
    trained = set(trained_models())
    return [
        {
            "model": model,
            "backbone": backbone,
            "seed": seed,
            "training_log": f"results/{wildcards.dataset}/runs/{model}/{backbone}/seed{seed}/training_log.csv",
        }
        for model, backbone, seed in model_runs()
        if model in trained
    ]


def metrics_runs(wildcards, splits=EVAL_SPLITS, models=None):
    """Every (split, model, backbone, seed) metrics file of a dataset, with its path; only ``models`` if given."""
    return [
        {
            "split": split,
            "model": model,
            "backbone": backbone,
            "seed": seed,
            "path": f"results/{wildcards.dataset}/runs/{model}/{backbone}/seed{seed}/metrics_{split}.parquet",
        }
        for model, backbone, seed in model_runs()
        if models is None or model in models
        for split in splits
    ]


def cold_start_runs(wildcards):
    """Every cold-item metrics file of a dataset: runs of models that rank unseen items."""
    return metrics_runs(
        wildcards, [COLD_SPLIT], list(filter(ranks_new_items, config["models"]))
    )


def ranked_lists(wildcards):
    """The lists a split is scored on: the full ranking, or the ranking of new releases for the cold split."""
    name = "new_items" if wildcards.split == COLD_SPLIT else "recommendations"
    return f"results/{wildcards.dataset}/runs/{wildcards.model}/{wildcards.backbone}/seed{wildcards.seed}/{name}.parquet"


def aggregate_tests(against_chance=False):
    """What rules aggregate and cold_start test each row against (see audiorec.significance).

    The cold-start table also tests every row against the random ranking (the first model of kind random), since
    whether a representation orders unheard tracks better than chance is exactly what it asks.
    """
    chance = [
        name for name, entry in config["models"].items() if entry["kind"] == "random"
    ]
    return canonical_json(
        {
            "random_variants": random_variants(),
            "baseline_backbone": config["evaluation"]["baseline_backbone"],
            "shuffled_suffix": SHUFFLED_SUFFIX,
            "alpha": config["evaluation"]["alpha"],
            "chance_model": chance[0] if against_chance and chance else None,
        }
    )


def final_outputs():
    """Recommendation tables of datasets with a listening log; the embeddings of the others."""
    with_log = [
        name for name in config["datasets"] if dataset_has(name, "interactions")
    ]
    without_log = [name for name in config["datasets"] if name not in with_log]
    return (
        expand(
            "results/{dataset}/tables/recommendation.{ext}",
            dataset=with_log,
            ext=["csv", "md"],
        )
        + expand(
            "results/{dataset}/embeddings/{backbone}.parquet",
            dataset=without_log,
            backbone=list(config["backbones"]),
        )
        + expand(
            "results/{dataset}/tables/probes.{ext}",
            dataset=[name for name in config["datasets"] if probe_tasks(name)],
            ext=["csv", "md"],
        )
        + expand(
            "results/{dataset}/tables/mir_vs_recs.md",
            dataset=[name for name in with_log if probe_tasks(name)],
        )
        + expand("results/{dataset}/figures/recommendation.png", dataset=with_log)
        + expand(
            "results/{dataset}/tables/cold_start.md",
            dataset=with_log if wants_cold_start_table() else [],
        )
        + expand(
            "results/{dataset}/figures/layers.png",
            dataset=with_log if swept_backbones() else [],
        )
        + expand(
            "results/{dataset}/tables/ssl.md",
            dataset=(
                [name for name in config["datasets"] if probe_tasks(name)]
                if ssl_backbones()
                else []
            ),
        )
    )


def ranks_new_items(model):
    return recommender_class(config["models"][model]["kind"]).ranks_unseen_items


def wants_cold_start_table():
    """Whether the config asks for a cold-start table and has a model that can rank new items."""
    return bool(config["evaluation"]["cold_ks"]) and any(
        map(ranks_new_items, config["models"])
    )


# Self-supervised backbones (trained by rule ssl_train) and the MIR probes (rule probe).

SSL_KIND = "ssl"


def ssl_backbones():
    return [
        name for name, entry in config["backbones"].items() if entry["kind"] == SSL_KIND
    ]


def swept_backbones():
    """Backbones of the layer sweep; each must be extracted here (its shards hold every layer)."""
    names = config["layer_sweep"]["backbones"]
    unknown = [name for name in names if name not in extracted_backbones()]
    if unknown:
        raise ValueError(
            f"layer_sweep.backbones {unknown} are not backbones extracted by this workflow"
        )
    return names


def layer_sweep_model():
    """The spec of the model that ranks each layer (a configured model of kind knn)."""
    name = config["layer_sweep"]["model"]
    if name not in config["models"] or config["models"][name]["kind"] != "knn":
        raise ValueError(
            f"layer_sweep.model {name!r} must name a configured model of kind knn"
        )
    return model_spec(name)


def ssl_table_encoders():
    """Rows of the ssl table: the baseline backbone (options None), then every ssl backbone with its options."""
    baseline = config["evaluation"]["baseline_backbone"]
    rows = {baseline: None} if baseline in config["backbones"] else {}
    return rows | {name: backbone_spec(name)["options"] for name in ssl_backbones()}


def label_tables(dataset):
    """The dataset's label tables, e.g. ["labels/genre", "labels/instrument"]."""
    entry = config["datasets"][dataset]
    return [
        table
        for table in dataset_tables(entry["source"], entry.get("options"))
        if table.startswith("labels/")
    ]


def defines_ssl_training_tracks(dataset):
    """Whether a dataset can hold test tracks out of self-supervised training (see audiorec.ssl.data)."""
    return bool(label_tables(dataset)) or dataset_has(dataset, "interactions")


def check_ssl_datasets():
    """Fail before any job runs if an ssl backbone would have to train on a dataset with no held-out tracks."""
    if not ssl_backbones():
        return
    for name in config["datasets"]:
        if not defines_ssl_training_tracks(name):
            raise ValueError(
                f"datasets.{name} has neither label splits nor a listening log, so the ssl backbone(s) "
                f"{ssl_backbones()} cannot be trained on it without hearing its test tracks"
            )


check_ssl_datasets()


def ssl_training_inputs(wildcards):
    """What decides the training tracks: the tracks, every label table, and the recommendation train split."""
    inputs = {
        "tracks": tracks_table(wildcards),
        "labels": [
            f"results/{wildcards.dataset}/data/{table}.parquet"
            for table in label_tables(wildcards.dataset)
        ],
    }
    if dataset_has(wildcards.dataset, "interactions"):
        inputs["train"] = f"results/{wildcards.dataset}/split/train.parquet"
    return inputs


def embed_inputs(wildcards):
    """The tracks table, and for a self-supervised backbone its checkpoint, so retraining reruns extraction."""
    inputs = {"tracks": tracks_table(wildcards)}
    if wildcards.backbone in ssl_backbones():
        inputs["weights"] = f"results/{wildcards.dataset}/ssl/{wildcards.backbone}.pt"
    return inputs


def probe_table_name(task):
    return "playlists" if task == PLAYLIST_TASK else f"labels/{task}"


def probe_tasks(dataset):
    """Configured probe tasks the dataset has the table for."""
    return [
        task
        for task in config["probes"]["tasks"]
        if dataset_has(dataset, probe_table_name(task))
    ]


def probe_results(dataset):
    """Every (task, backbone) probe result of a dataset, with its path."""
    backbones = config["probes"].get("backbones", list(config["backbones"]))
    unknown = sorted(set(backbones) - set(config["backbones"]))
    if unknown:
        raise ValueError(f"probes.backbones names unknown backbone(s) {unknown}")
    return [
        {
            "task": task,
            "backbone": backbone,
            "path": f"results/{dataset}/probes/{task}/{backbone}.json",
        }
        for backbone in backbones
        for task in probe_tasks(dataset)
    ]


def probe_inputs(wildcards):
    dataset = wildcards.dataset
    inputs = {
        "embeddings": f"results/{dataset}/embeddings/{wildcards.backbone}.parquet",
        "table": f"results/{dataset}/data/{probe_table_name(wildcards.task)}.parquet",
    }
    if wildcards.task == PLAYLIST_TASK and defines_ssl_training_tracks(dataset):
        inputs["excluded"] = f"results/{dataset}/ssl/train_tracks.parquet"
    return inputs


def probe_options(task):
    """The probe settings a task uses, so changing one task's settings reruns only that task."""
    probes = config["probes"]
    if task == PLAYLIST_TASK:
        return {"playlist": probes["playlist"]}
    return {name: probes[name] for name in ("C", "max_iter", "seed")}


# Datasets: downloads, fetch outputs and precomputed features (rules in data.smk).

DOWNLOADS = "resources/datasets/{dataset}/downloads/{file}"
EXTRACTED = "resources/datasets/{dataset}/extracted/{file}"


def datasets_of(source):
    return [
        name for name, entry in config["datasets"].items() if entry["source"] == source
    ]


def download_specs(dataset):
    """The validated DownloadSpec of each file a dataset declares, by name."""
    declared = config["datasets"][dataset].get("downloads", {})
    return {
        name: DownloadSpec.from_mapping(name, spec) for name, spec in declared.items()
    }


def download_locations(dataset):
    """Where each download of a dataset is used from: the unpacked folder of an archive, else the file."""
    return {
        name: (EXTRACTED if spec.archive else DOWNLOADS).format(
            dataset=dataset, file=name
        )
        for name, spec in download_specs(dataset).items()
    }


def dataset_downloads(wildcards):
    return list(download_locations(wildcards.dataset).values())


def dataset_options(dataset):
    """A dataset's options with every "{download:NAME}" replaced by that download's location."""
    options = config["datasets"][dataset].get("options", {})
    return substitute_downloads(
        options, download_locations(dataset), f"datasets.{dataset}.options"
    )


def declared_download(wildcards):
    specs = download_specs(wildcards.dataset)
    if wildcards.file not in specs:
        raise ValueError(
            f"dataset {wildcards.dataset!r} declares no download {wildcards.file!r}; it declares {sorted(specs)}"
        )
    return specs[wildcards.file]


def download_entry(wildcards):
    """A download's config block, checked; a changed URL or checksum fetches the file again."""
    declared_download(wildcards)
    return canonical_json(
        config["datasets"][wildcards.dataset]["downloads"][wildcards.file]
    )


def fetch_outputs(source):
    """Output files of a source's fetch checkpoint, named after their last path component."""
    return {
        key: directory(path) if is_folder else path
        for key, (path, is_folder) in fetch_output_paths(
            source, "results/{dataset}/data"
        ).items()
    }


def precomputed_backbones():
    return [
        name
        for name, entry in config["backbones"].items()
        if entry["kind"] == PRECOMPUTED_KIND
    ]


def extracted_backbones():
    """Backbones whose vectors the workflow computes from audio (rule embed_gather), i.e. all but precomputed."""
    return [name for name in config["backbones"] if name not in precomputed_backbones()]


def precomputed_file(wildcards):
    """The dataset file a precomputed backbone reads (an option of the dataset, or one of its downloads)."""
    source = config["datasets"][wildcards.dataset]["source"]
    options = config["backbones"][wildcards.backbone].get("options")
    option = feature_option(source, precomputed_options(options).feature)
    path = dataset_options(wildcards.dataset).get(option)
    if not path:
        raise ValueError(
            f"backbone {wildcards.backbone!r} reads a precomputed feature of dataset "
            f"{wildcards.dataset!r}, whose option {option!r} is not set"
        )
    return path


def check_datasets():
    """Fail before any job runs on a dataset config that cannot work (messages name the dataset)."""
    for name, entry in config["datasets"].items():
        where = f"datasets.{name}"
        download_specs(name)
        dataset_options(name)
        if dataset_has(name, "interactions") and "split" not in entry:
            raise ValueError(
                f"{where}: source {entry['source']!r} has a listening log, so a split (test_start, ...) is needed"
            )
        for backbone in precomputed_backbones():
            feature = precomputed_options(
                config["backbones"][backbone].get("options")
            ).feature
            if not dataset_has(name, f"features/{feature}"):
                provided = sorted(SOURCE_FEATURES.get(entry["source"], {}))
                raise ValueError(
                    f"backbone {backbone!r} reads the precomputed feature {feature!r}, which {where} "
                    f"(source {entry['source']!r}) does not provide; its source provides {provided}, "
                    "each when the option naming its file is set"
                )


check_datasets()
