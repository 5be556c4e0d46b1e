"""Self-supervised encoders: shapes, losses, positive sampling, augmentation, training and the ssl backbone."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from audiorec.backbones import backbone_class
from audiorec.backbones.ssl import SSLBackbone
from audiorec.errors import AudiorecError, ParameterError
from audiorec.ssl import (
    MelEncoder,
    SSLConfig,
    SSLModel,
    cpc_loss,
    info_nce,
    multi_level_info_nce,
    save_checkpoint,
    train,
    training_track_ids,
)
from audiorec.ssl.augment import Reverb, augment, augmentation_chain
from audiorec.ssl.features import GAP_SAMPLES, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_SAMPLES, log_mel
from audiorec.ssl.sampling import adjacent_pair, random_pair, segment_starts

TINY = {"channels": [2, 4, 4, 8, 8], "embedding_dim": 8, "batch_size": 4}


def tiny_config(**options) -> SSLConfig:
    return SSLConfig.from_mapping({**TINY, **options})


# --------------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------------


def test_three_seconds_are_188_frames_and_twelve_seconds_four_encoder_steps():
    assert SEGMENT_FRAMES == 188
    assert log_mel(np.zeros((2, SEGMENT_SAMPLES), np.float32)).shape == (2, 188, 96)
    model = SSLModel(tiny_config(positive="adjacent")).eval()
    short = model.encode(torch.randn(3, 188, 96))
    long = model.encode(torch.randn(3, 4 * 188, 96))
    assert short.steps.shape == (3, 1, 8) and short.segment.shape == (3, 8)
    assert long.steps.shape == (3, 4, 8)
    torch.testing.assert_close(long.segment, long.steps.mean(dim=1))
    with pytest.raises(ParameterError, match="frames >= 160"):
        model.encode(torch.randn(1, 100, 96))


def test_log_mel_is_librosas_mel_spectrogram_log_compressed(rng):
    import librosa

    segments = rng.normal(scale=0.1, size=(2, SEGMENT_SAMPLES)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=segments, sr=SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=96)
    np.testing.assert_allclose(log_mel(segments), np.log1p(10000 * np.swapaxes(mel, 1, 2)), rtol=1e-5, atol=1e-5)


def test_paper_sizes_of_the_heads():
    single = MelEncoder((128, 256, 256, 512, 512), 128, multi_level=False)
    assert (single.step_head.in_features, single.step_head.out_features) == (512, 128)
    multi = MelEncoder((128, 256, 256, 512, 512), 128, multi_level=True)
    # Channels × bands left after each block: 96 bands pooled by 2, 2, 2, 4, 3.
    assert [head.in_features for head in multi.level_heads] == [128 * 48, 256 * 24, 256 * 12, 512 * 3, 512 * 1]


def test_multi_level_gives_five_vectors():
    model = SSLModel(tiny_config(loss="multi", positive="self")).eval()
    levels = model.segment_levels(torch.randn(2, 188, 96))
    assert len(levels) == 5 and all(level.shape == (2, 8) for level in levels)


# --------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------


def test_info_nce_scores_pairs_by_the_raw_dot_product_as_in_eq_1():
    """A 3 × 3 case by hand: logits are a_i · p_j, no normalisation and no temperature (the paper's default)."""
    anchors = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    positives = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    # a_i · p_j: row 0 [1, 0, -1], row 1 [2, 2, 0], row 2 [7, 4, -3]; the targets are the diagonal 1, 2, -3.
    expected = (
        -(1 - np.log(np.exp(1) + np.exp(0) + np.exp(-1)))
        - (2 - np.log(2 * np.exp(2) + np.exp(0)))
        - (-3 - np.log(np.exp(7) + np.exp(4) + np.exp(-3)))
    ) / 3
    assert info_nce(anchors, positives).item() == pytest.approx(expected, rel=1e-6)
    assert SSLConfig.from_mapping({"positive": "self"}).similarity == "dot"
    assert SSLConfig.from_mapping({"positive": "self"}).temperature is None


def test_cosine_info_nce_with_a_temperature_is_the_documented_option():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    positives = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    a = anchors.numpy() / np.linalg.norm(anchors.numpy(), axis=1, keepdims=True)
    p = positives.numpy() / np.linalg.norm(positives.numpy(), axis=1, keepdims=True)
    expected = 0.0
    for i in range(3):
        logits = [a[i] @ p[j] / tau for j in range(3)]
        expected += -(logits[i] - np.log(np.sum(np.exp(logits))))
    assert info_nce(anchors, positives, "cosine", tau).item() == pytest.approx(expected / 3, rel=1e-6)
    assert SSLConfig.from_mapping({"positive": "self", "similarity": "cosine"}).temperature == 0.1
    with pytest.raises(ParameterError, match="use 'dot' without a temperature"):
        info_nce(anchors, positives, "dot", 0.1)


def test_info_nce_is_minimised_by_identical_pairs(rng):
    anchors = torch.from_numpy(rng.normal(size=(16, 8)).astype(np.float32))
    for similarity, tau in (("dot", None), ("cosine", 0.1)):
        identical = info_nce(anchors, anchors.clone(), similarity, tau).item()
        noise = 0.5 * torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
        noisy = info_nce(anchors, anchors + noise, similarity, tau)
        shuffled = info_nce(
            anchors, anchors[torch.randperm(16, generator=torch.Generator().manual_seed(1))], similarity, tau
        )
        assert identical < noisy.item() < shuffled.item()
    with pytest.raises(ParameterError, match="B >= 2"):
        info_nce(anchors[:1], anchors[:1])


def test_multi_level_loss_is_the_sum_over_levels(rng):
    levels = [torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32)) for _ in range(5)]
    others = [torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32)) for _ in range(5)]
    expected = sum(info_nce(a, p).item() for a, p in zip(levels, others, strict=True))
    assert multi_level_info_nce(levels, others).item() == pytest.approx(expected, rel=1e-6)


def test_cpc_loss_predicts_each_step_ahead_from_every_context_step(rng):
    z = torch.from_numpy(rng.normal(size=(3, 4, 5)).astype(np.float32))
    c = torch.from_numpy(rng.normal(size=(3, 4, 7)).astype(np.float32))  # a context wider than the segments
    predictors = [torch.nn.Linear(7, 5) for _ in range(2)]
    expected = sum(
        np.mean([info_nce(predictors[k - 1](c[:, t]), z[:, t + k]).item() for t in range(4 - k)]) for k in (1, 2)
    )
    assert cpc_loss(z, c, predictors).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ParameterError, match="K < T"):
        cpc_loss(z, c, [torch.nn.Linear(7, 5)] * 4)


def test_paper_widths_of_every_encoder_output():
    """Table 3's dimensions: 128 for InfoNCE, 5 × 128 = 640 for InfoNCE-Multi, the GRU's 256 for MelCPC; the
    probes read the mean and standard deviation over segments, twice that."""
    widths = {}
    for options in ({"positive": "self"}, {"loss": "multi", "positive": "self"}, {"loss": "cpc"}):
        config = SSLConfig.from_mapping(options)
        widths[config.loss] = config.output_dim
        backbone = SSLBackbone(config, load=False)
        assert backbone.layer_dims[backbone.layers[-1]] == 2 * config.output_dim
    assert widths == {"infonce": 128, "multi": 640, "cpc": 256}
    model = SSLModel(SSLConfig.from_mapping({"loss": "cpc"}))
    assert (model.gru.input_size, model.gru.hidden_size) == (128, 256)
    assert [(p.in_features, p.out_features) for p in model.predictors] == [(256, 128)] * 3
    context = model.context(torch.randn(2, 4, 128))
    assert context.shape == (2, 4, 256)


# --------------------------------------------------------------------------------------------------------------
# Positives
# --------------------------------------------------------------------------------------------------------------


def test_adjacent_sampler_leaves_a_half_second_gap(rng):
    length = 12 * SAMPLE_RATE
    orders = set()
    for _ in range(200):
        anchor, positive = adjacent_pair(length, rng)
        first, second = sorted((anchor, positive))
        assert second - (first + SEGMENT_SAMPLES) == GAP_SAMPLES == SAMPLE_RATE // 2
        assert first >= 0 and second + SEGMENT_SAMPLES <= length
        orders.add(anchor < positive)
    assert orders == {True, False}  # the order is randomly swapped
    with pytest.raises(ParameterError, match="at least 104000 samples"):
        adjacent_pair(2 * SEGMENT_SAMPLES, rng)


@pytest.mark.parametrize("length", [2 * SEGMENT_SAMPLES, 2 * SEGMENT_SAMPLES + 7, 10 * SAMPLE_RATE])
def test_random_positive_is_another_segment_of_the_track(rng, length):
    for _ in range(200):
        anchor, positive = random_pair(length, rng)
        assert abs(anchor - positive) >= SEGMENT_SAMPLES
        assert min(anchor, positive) >= 0 and max(anchor, positive) + SEGMENT_SAMPLES <= length


def test_cpc_examples_are_consecutive_segments(rng):
    config = tiny_config(loss="cpc", cpc_segments=4, cpc_steps=3)
    starts = segment_starts(config, 13 * SAMPLE_RATE, rng)
    assert np.diff(starts).tolist() == [SEGMENT_SAMPLES] * 3 and starts[-1] + SEGMENT_SAMPLES <= 13 * SAMPLE_RATE


def test_polarity_inversion_which_the_paper_lists_leaves_the_encoder_input_unchanged(rng):
    """Why the chain leaves it out: a power mel-spectrogram of -x is that of x, value for value."""
    segment = rng.normal(scale=0.1, size=(1, SEGMENT_SAMPLES)).astype(np.float32)
    np.testing.assert_array_equal(log_mel(-segment), log_mel(segment))


def test_augmentations_change_the_audio_yet_keep_its_length():
    time = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * time) * np.exp(-2 * (time % 0.5))).astype(np.float32)
    first = augment(tone, SAMPLE_RATE, np.random.default_rng(0))
    again = augment(tone, SAMPLE_RATE, np.random.default_rng(0))
    other = augment(tone, SAMPLE_RATE, np.random.default_rng(1))
    assert first.shape == tone.shape == other.shape and first.dtype == np.float32
    assert np.abs(first - tone).max() > 0.05 and np.abs(first - other).max() > 0.05
    np.testing.assert_array_equal(first, again)  # a pure function of the generator
    chain = augmentation_chain().transforms
    assert [type(t).__name__ for t in chain] == ["OneOf", "TimeStretch", "Reverb", "AddGaussianSNR"]
    assert [t.p for t in chain[2:]] == [0.5, 0.5]
    reverb = Reverb(p=1.0)
    wet = reverb(samples=tone, sample_rate=SAMPLE_RATE)
    assert wet.shape == tone.shape and np.abs(wet - tone).max() > 0.01


# --------------------------------------------------------------------------------------------------------------
# Configuration and training tracks
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss": "triplet"}, "option loss must be one of .* got 'triplet'"),
        ({"loss": "infonce"}, "option positive must be one of .* got None"),
        ({"loss": "cpc", "positive": "self"}, "option positive must be unset for loss 'cpc'"),
        ({"positive": "self", "channels": [8, 8]}, "option channels must be 5 positive integers"),
        ({"loss": "cpc", "cpc_segments": 4, "cpc_steps": 4}, r"option cpc_steps \(4\) must be smaller"),
        ({"positive": "self", "similarity": "cosine", "temperature": 0}, "option temperature must be positive, got 0"),
        ({"positive": "self", "temperature": 0.1}, "temperature applies to similarity 'cosine' only"),
        ({"positive": "self", "similarity": "l2"}, "option similarity must be one of .* got 'l2'"),
        ({"positive": "self", "epoch": 3}, r"unknown option\(s\) \['epoch'\]"),
    ],
)
def test_invalid_options_name_the_option_and_the_value(options, message):
    with pytest.raises(ParameterError, match=message):
        SSLConfig.from_mapping(options)


def test_training_tracks_are_train_in_every_label_table_and_heard_in_the_train_window():
    labels = [
        pl.DataFrame(
            {"track_id": ["a", "b", "c", "d"], "label": ["x"] * 4, "split": ["train", "train", "test", "train"]}
        ),
        pl.DataFrame(
            {"track_id": ["a", "b", "c", "d"], "label": ["y"] * 4, "split": ["train", "val", "train", "train"]}
        ),
    ]
    heard = pl.DataFrame({"track_id": ["d", "a", "c"]})
    assert training_track_ids(["d", "c", "b", "a", "e"], labels, heard) == ["d", "a"]
    assert training_track_ids(["a", "b", "c", "d"], [], heard) == ["a", "c", "d"]
    assert training_track_ids(["a", "b", "c", "d"], labels[:1], None) == ["a", "b", "d"]
    with pytest.raises(AudiorecError, match="without label splits and without a listening log"):
        training_track_ids(["a"], [], None)
    with pytest.raises(AudiorecError, match="no split column"):
        training_track_ids(["a"], [labels[0].drop("split")], None)


# --------------------------------------------------------------------------------------------------------------
# Training and the backbone (tiny models on a few synthetic tracks)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_tracks(tmp_path_factory) -> list:
    """Eight 7-second tracks of two kinds (low drones, high clicks), as 22.05 kHz WAV files."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("ssl_audio")
    rng = np.random.default_rng(7)
    time = np.arange(7 * 22050) / 22050
    paths = []
    for index in range(8):
        if index % 2:
            signal = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 200) * time) + 0.01 * rng.normal(size=time.size)
        else:
            signal = 0.3 * (rng.random(time.size) < 0.002) + 0.02 * rng.normal(size=time.size)
        path = folder / f"track{index}.wav"
        sf.write(path, signal.astype(np.float32), 22050)
        paths.append(path)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00")
    return [*paths, folder / "broken.wav"]


def test_resumed_training_equals_uninterrupted_training(short_tracks, tmp_path):
    options = {**TINY, "loss": "infonce", "positive": "random", "epochs": 2}
    whole, history = train(SSLConfig.from_mapping(options), short_tracks, progress=False)
    assert history.n_tracks == 8 and list(history.skipped) == [str(short_tracks[-1])]
    state = tmp_path / "state.pt"
    train(SSLConfig.from_mapping({**options, "epochs": 1}), short_tracks, resume_path=state, progress=False)
    resumed, resumed_history = train(SSLConfig.from_mapping(options), short_tracks, resume_path=state, progress=False)
    assert len(resumed_history.losses) == 2 and resumed_history.losses == pytest.approx(history.losses, rel=1e-6)
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_a_task_no_track_is_long_enough_for_is_an_error(short_tracks):
    with pytest.raises(AudiorecError, match=r"at least 2 usable training tracks, got 0.*11.90 s for loss 'cpc'"):
        train(SSLConfig.from_mapping({**TINY, "loss": "cpc", "cpc_segments": 4, "epochs": 1}), short_tracks)


@pytest.mark.parametrize(
    ("options", "layers"),
    [
        ({"loss": "infonce", "positive": "adjacent"}, {"segment": 16}),
        ({"loss": "multi", "positive": "self"}, {**{f"level{i}": 16 for i in range(1, 6)}, "concat": 80}),
        ({"loss": "cpc", "cpc_segments": 2, "cpc_steps": 1, "context_dim": 12}, {"segment": 16, "context": 24}),
    ],
)
def test_backbone_pools_mean_and_std_over_segments_and_loads_its_checkpoint(short_tracks, tmp_path, options, layers):
    config = SSLConfig.from_mapping({**TINY, **options, "epochs": 1})
    model, history = train(config, short_tracks[:8], progress=False)
    checkpoint = tmp_path / "encoder.pt"
    save_checkpoint(model, history, checkpoint)
    backbone = backbone_class("ssl").from_options(
        {**TINY, **options, "device": "cpu", "weights": str(checkpoint), "short_audio": "pad"}
    )
    assert backbone.layer_dims == layers and backbone.weights_sha256 is not None
    signals = [
        np.random.default_rng(i).normal(scale=0.1, size=n).astype(np.float32) for i, n in enumerate((160000, 30000))
    ]
    vectors = backbone.embed_batch(signals)
    assert {name: v.shape for name, v in vectors.items()} == {name: (2, dim) for name, dim in layers.items()}
    with torch.no_grad():  # the first track by hand: 3 full segments, the last 1 s dropped (< half a segment)
        mels = torch.from_numpy(log_mel(signals[0][: 3 * SEGMENT_SAMPLES].reshape(3, SEGMENT_SAMPLES)))
        per_segment = model.segment_levels(mels)
        if config.loss == "cpc":
            per_segment = [model.context(per_segment[0][None])[0]]
        expected = torch.cat([per_segment[-1].mean(0), per_segment[-1].std(0, correction=0)]).numpy()
    last = vectors[backbone.layers[-1]][0] if config.loss != "multi" else vectors["level5"][0]
    np.testing.assert_allclose(last, expected, rtol=1e-4, atol=1e-5)
    assert np.all(vectors[backbone.layers[-1]][1, layers[backbone.layers[-1]] // 2 :] == 0)  # one segment: std 0


def test_a_checkpoint_of_another_architecture_is_refused(short_tracks, tmp_path):
    config = SSLConfig.from_mapping({**TINY, "positive": "random", "epochs": 1})
    model, history = train(config, short_tracks[:4], progress=False)
    save_checkpoint(model, history, tmp_path / "encoder.pt")
    wider = SSLConfig.from_mapping(
        {**TINY, "positive": "random", "embedding_dim": 16, "weights": str(tmp_path / "encoder.pt")}
    )
    with pytest.raises(ParameterError, match=r"has architecture .* but the options ask for"):
        SSLBackbone(wider)
    with pytest.raises(ParameterError, match="needs option weights"):
        SSLBackbone(SSLConfig.from_mapping({**TINY, "positive": "random"}))


# --------------------------------------------------------------------------------------------------------------
# The tiny demo world
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> dict:
    """The tiny demo world (200 tracks of 3 s) with its training tracks."""
    from audiorec.datasets.demo import TINY, DemoOptions, generate_demo_world
    from audiorec.protocol.split import SplitConfig, temporal_split
    from audiorec.storage.tables import read_table, resolve_audio_path

    root = tmp_path_factory.mktemp("tiny_world")
    generate_demo_world(DemoOptions.from_mapping(TINY), root, progress=False)
    tracks = read_table(root / "tracks.parquet", "tracks")
    paths = {
        t: resolve_audio_path(p, root / "tracks.parquet")
        for t, p in tracks.select("track_id", "audio_path").iter_rows()
    }
    labels = {task: read_table(root / "labels" / f"{task}.parquet", "labels") for task in ("genre", "instrument")}
    split = temporal_split(
        pl.scan_parquet(root / "interactions.parquet"), SplitConfig.from_mapping({"test_start": "2025-01-01"})
    )
    training = training_track_ids(list(paths), list(labels.values()), split.train)
    return {"paths": paths, "labels": labels, "training": training}


def test_training_lowers_the_loss_and_beats_the_untrained_encoder_on_genre(tiny_world):
    from audiorec.evaluation.probes import probe_labels
    from audiorec.extraction.embed import extract

    options = {"loss": "infonce", "positive": "self", "channels": [4, 8, 8, 16, 16], "embedding_dim": 32}
    config = SSLConfig.from_mapping({**options, "epochs": 3, "batch_size": 16})
    paths = tiny_world["paths"]
    model, history = train(config, [paths[t] for t in tiny_world["training"]], num_workers=1, progress=False)
    assert history.n_tracks == len(tiny_world["training"]) and history.losses[-1] < history.losses[0] - 0.3

    def genre_accuracy(state: dict[str, torch.Tensor]) -> float:
        backbone = SSLBackbone(config, load=False)
        backbone.model.load_state_dict(state)
        result = extract(list(paths), list(paths.values()), backbone, batch_size=32, progress=False)
        probe = probe_labels(result.track_ids, np.stack(result.layers["segment"]), tiny_world["labels"]["genre"])
        return (probe["svm"]["accuracy"] + probe["logreg"]["accuracy"]) / 2

    torch.manual_seed(config.seed)  # the initialisation training started from, with the same input statistics
    untrained = SSLModel(config)
    untrained.set_standardisation(model.mel_mean, model.mel_std)
    assert genre_accuracy(model.state_dict()) > genre_accuracy(untrained.state_dict()) + 0.05


def test_table3_example_config_has_the_papers_seven_encoders_at_full_size():
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    config_dir = Path(__file__).resolve().parents[2] / "config"
    config = yaml.safe_load((config_dir / "examples" / "ssl_table3.yaml").read_text())
    validate(config, str(config_dir / "schema.yaml"))
    encoders = [
        SSLConfig.from_mapping(entry.get("options")) for entry in config["backbones"].values() if entry["kind"] == "ssl"
    ]
    rows = sorted((encoder.positive or "", encoder.loss) for encoder in encoders)
    expected = [(p, loss) for p in ("adjacent", "random", "self") for loss in ("infonce", "multi")] + [("", "cpc")]
    assert rows == sorted(expected)
    assert all(encoder.channels == (128, 256, 256, 512, 512) and encoder.embedding_dim == 128 for encoder in encoders)
    assert all(encoder.similarity == "dot" for encoder in encoders)  # eq. (1)
    # Table 3's dimension column, row by row.
    dims = sorted(((encoder.positive or "", encoder.loss), encoder.output_dim) for encoder in encoders)
    paper = {"infonce": 128, "multi": 640, "cpc": 256}
    assert dims == sorted((row, paper[row[1]]) for row in expected)
    assert "mfcc" in config["backbones"]  # the paper's baseline row
