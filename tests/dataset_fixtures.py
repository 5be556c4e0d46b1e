"""Small files in the formats of real datasets, with their quirks, written on the fly for the loader tests."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from audiorec.storage.tables import read_metadata

TEST_START = datetime(2020, 2, 20, tzinfo=UTC)
"""The first paper's evaluation start; fixtures put 12 months of listening before it and one month after."""


def write_clip(path: Path, freq: float, seconds: float = 0.5, sample_rate: int = 22050) -> Path:
    """A short tone with seeded noise, in the format the suffix names (.wav, .flac or .mp3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    noise = np.random.default_rng(int(freq)).normal(0, 0.01, t.size)
    signal = (0.4 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)
    sf.write(path, signal, sample_rate, format=path.suffix.lstrip(".").upper())
    return path


def listening_events(track_ids: list[str], n_users: int = 10, seed: int = 0) -> list[tuple[str, str, datetime]]:
    """Events whose temporal split (test_start 2020-02-20) has warm users and tracks in val and test.

    Every user hears a few tracks during the 12 months before ``TEST_START`` (some repeatedly) and discovers
    two of the others in the following month.
    """
    rng = np.random.default_rng(seed)
    events = []
    for user in range(n_users):
        order = rng.permutation(len(track_ids))
        for track in order[:5]:
            for _ in range(int(rng.integers(1, 4))):
                moment = TEST_START - timedelta(days=int(rng.integers(1, 360)), seconds=int(rng.integers(86400)))
                events.append((f"user{user:02d}", track_ids[track], moment))
        for track in order[5:7]:
            moment = TEST_START + timedelta(days=int(rng.integers(0, 27)), seconds=int(rng.integers(86400)))
            events.append((f"user{user:02d}", track_ids[track], moment))
    return events


def write_onion(root: Path, n_tracks: int = 12, *, extra_rows: bool = False) -> dict[str, Path]:
    """Music4All-Onion's ``userid_trackid_timestamp.tsv`` (header row, times in UTC) and ``audios/<id>.mp3``.

    With ``extra_rows``, the log also holds an unparseable timestamp, a missing user id and events of a
    track without a clip, and ``id_mfcc_stats.tsv`` a duplicate and a non-numeric row.
    """
    track_ids = [f"{i:04d}AbCdEfGhIjKl" for i in range(n_tracks)]  # 16-character ids, like Music4All's
    for index, track in enumerate(track_ids):
        write_clip(root / "audios" / f"{track}.mp3", 220.0 * 1.15**index)
    rows = [(user, track, moment.strftime("%Y-%m-%d %H:%M:%S")) for user, track, moment in listening_events(track_ids)]
    if extra_rows:
        rows += [
            ("user00", track_ids[0], "20/02/2020"),
            ("", track_ids[1], "2019-05-05 10:00:00"),
            ("user01", "NoClipTrack00000", "2019-06-01 12:00:00"),
            ("user02", "NoClipTrack00000", "2019-06-02 12:00:00"),
        ]
    events = root / "userid_trackid_timestamp.tsv"
    with open(events, "w", newline="") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        writer.writerow(["user_id", "track_id", "timestamp"])
        writer.writerows(rows)
    stats = root / "id_mfcc_stats.tsv"
    values = np.random.default_rng(1).normal(size=(n_tracks, 104)).round(6)
    with open(stats, "w", newline="") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", *(f"mfcc_{i}" for i in range(104))])
        writer.writerows([track, *row] for track, row in zip(track_ids, values, strict=True))
        if extra_rows:
            writer.writerow([track_ids[0], *np.zeros(104)])
            writer.writerow(["BrokenRow0000000", "abc", *np.zeros(103)])
    return {"events": events, "audio_dir": root / "audios", "mfcc_stats": stats, "track_ids": track_ids}


def local_options(files: dict[str, Path]) -> dict[str, str]:
    """The ``local`` source's options for a collection :func:`write_local` wrote (its custom column names)."""
    return {
        "interactions": str(files["interactions"]),
        "audio_dir": str(files["audio_dir"]),
        "user_column": "listener",
        "track_column": "song",
        "timestamp_column": "played_at",
    }


def write_local(root: Path, n_tracks: int = 12) -> dict[str, Path]:
    """A user's own collection: ``listens.csv`` with custom column names and ISO times, ``music/<genre>/*.flac``."""
    track_ids = [f"{'rock' if i % 2 else 'jazz'}/song{i:02d}" for i in range(n_tracks)]
    for index, track in enumerate(track_ids):
        write_clip(root / "music" / f"{track}.flac", 196.0 * 1.12**index)
    listens = root / "listens.csv"
    with open(listens, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["listener", "song", "played_at", "device"])
        for user, track, moment in listening_events(track_ids, seed=1):
            writer.writerow([user, track, moment.isoformat(), "phone"])
    return {"interactions": listens, "audio_dir": root / "music", "track_ids": track_ids}


FMA_GENRES = {2: "Hip-Hop", 3: "Hip-Hop", 5: "Pop", 10: "Pop", 20: "Rock", 26: "Rock", 30: "Folk", 46: "Folk"}


def write_fma(root: Path) -> dict[str, Path]:
    """``fma_metadata/tracks.csv`` with its three header rows and quoted multi-line fields, and ``fma_small``.

    Tracks 2..46 form the small subset (46's audio is missing), 99 is medium-only, 140 has no top genre,
    141 a split nobody knows, and one row has a track_id that is not a number.
    """
    groups = ["", "album", "album", "artist", "set", "set", "track", "track", "track"]
    names = ["", "title", "information", "name", "split", "subset", "genre_top", "title", "genres"]
    splits = {2: "training", 3: "training", 5: "training", 10: "validation", 20: "training", 26: "test"}
    splits |= {30: "test", 46: "training"}
    rows = [
        [
            str(t),
            f"Album {t}",
            "<p>Recorded live,\nin one take</p>",
            f"Artist, {t}",
            splits[t],
            "small",
            genre,
            f"Song {t}",
            "[21]",
        ]
        for t, genre in FMA_GENRES.items()
    ]
    rows += [
        ["99", "A", "", "B", "training", "medium", "Rock", "Medium only", "[12]"],
        ["140", "A", "", "B", "training", "small", "", "No genre", "[]"],
        ["141", "A", "", "B", "holdout", "small", "Rock", "Odd split", "[12]"],
        ["not-a-number", "A", "", "B", "training", "small", "Rock", "Broken", "[12]"],
    ]
    metadata = root / "fma_metadata" / "tracks.csv"
    metadata.parent.mkdir(parents=True)
    with open(metadata, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerows([groups, names, ["track_id", *[""] * (len(groups) - 1)], *rows])
    audio = root / "fma_small"
    for track in [t for t in FMA_GENRES if t != 46] + [140, 141]:
        write_clip(audio / f"{track:06d}"[:3] / f"{track:06d}.mp3", 300.0 + track)
    return {"metadata": metadata, "audio_dir": audio}


IRMAS_FILES = {
    "cel": [
        "[cel][cla]0001__1.wav",
        "[cel][cla]0001__2.wav",
        "[cel][cla]0002__1.wav",
        "[cel][cla]0003__1.wav",
        "001__[cel][nod][cla]0058__1.wav",
        "[cel][cla]0004__3.wav",
    ],
    "gel": [
        "[gel][dru][pop_roc]0829__2.wav",
        "[gel][dru][pop_roc]0829__3.wav",
        "[gel][nod][pop_roc]0830__1.wav",
        "[gel][dru][pop_roc]0831__1.wav",
        "[gel][dru][pop_roc]0832__1.wav",
        "[gel][nod][jaz_blu]0833__1.wav",
    ],
    "voi": [
        "[voi][pop_roc]2201__1.wav",
        "[voi][pop_roc]2202__1.wav",
        "[voi][lat_sou]2203__1.wav",
        "[voi][cou_fol]2204__1.wav",
        "[voi][pop_roc]2205__1.wav",
        "[voi][pop_roc]2206__1.wav",
        "[cel][cla]0999__1.wav",
        "readme.txt",
        "[xyz][pop_roc]0001__1.wav",
    ],
}
"""Real IRMAS naming, plus a file in the wrong folder, a stray text file and an unknown instrument code."""


def write_irmas(root: Path) -> Path:
    """``IRMAS-TrainingData/<instrument>/<name>.wav`` for :data:`IRMAS_FILES`."""
    training = root / "IRMAS-TrainingData"
    for number, (folder, files) in enumerate(IRMAS_FILES.items()):
        for index, name in enumerate(files):
            path = training / folder / name
            if name.endswith(".wav"):
                write_clip(path, 250.0 + 40 * number + 3 * index, seconds=0.3, sample_rate=44100)
            else:
                path.write_text("notes")
    return training


def write_aotm(root: Path) -> dict[str, Path]:
    """``aotm2011_playlists.json`` in AotM's layout and a user's ``audio_map.csv`` for some MSD ids."""
    msd = [f"TR{i:016d}" for i in range(10)]
    mixes = [
        {
            "mix_id": 1,
            "category": "Rock",
            "user": {"name": "a"},
            "timestamp": "2008-01-01T00:00:00",
            "playlist": [
                [["Artist 0", "Song 0"], msd[0]],
                [["Artist 1", "Song 1"], msd[1]],
                [["X", "Y"], None],
                [["Artist 2", "Song 2"], msd[2]],
                [["Artist 1", "Song 1"], msd[1]],
                [["Q", "R"], msd[9]],
            ],
        },
        {
            "mix_id": 2,
            "category": "Theme",
            "user": {"name": "b"},
            "timestamp": "2008-01-02T00:00:00",
            "playlist": [[["A", "B"], m] for m in msd[:5]],
        },
        {
            "mix_id": 3,
            "category": "Jazz",
            "user": {"name": "c"},
            "timestamp": "2008-01-03T00:00:00",
            "playlist": [[["A", "B"], msd[3]], [["C", "D"], msd[4]]],
        },
        {
            "mix_id": 4,
            "category": "Jazz",
            "user": {"name": "d"},
            "timestamp": "2008-01-04T00:00:00",
            "playlist": [[["A", "B"], m] for m in msd[2:8]],
        },
        {"mix_id": 1, "category": "Rock", "playlist": []},
        {"category": "Rock", "playlist": []},
    ]
    root.mkdir(parents=True, exist_ok=True)
    playlists = root / "aotm2011_playlists.json"
    playlists.write_text(json.dumps(mixes))
    audio_map = root / "audio_map.csv"
    with open(audio_map, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["track_id", "audio_path"])
        for index, track in enumerate(msd[:8]):
            if index != 7:
                write_clip(root / "audio" / f"{track}.wav", 330.0 + 10 * index)
            writer.writerow([track, f"audio/{track}.wav"])
        writer.writerow([msd[0], "audio/duplicate.wav"])
    return {"playlists": playlists, "audio_map": audio_map, "msd": msd}


def written_tables(folder: Path) -> set[str]:
    """The Parquet tables a fetch wrote, as paths under ``folder`` without suffix (e.g. ``labels/genre``)."""
    return {str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.parquet")}


def dropped_counts(folder: Path) -> dict[str, int]:
    """What a fetch dropped and why, from the tracks table's metadata."""
    return read_metadata(folder / "tracks.parquet")["dropped"]
