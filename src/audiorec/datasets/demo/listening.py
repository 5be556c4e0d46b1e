"""The listening log of the demo world: users, their sessions, discoveries and replays."""

from __future__ import annotations

import math

import numpy as np

from audiorec.datasets.demo.catalogue import Catalogue, normalised
from audiorec.datasets.demo.options import EVENTS_STREAM, USERS_STREAM, DemoOptions, child_rng
from audiorec.datasets.demo.styles import INSTRUMENTS, STYLES
from audiorec.datasets.demo.timeline import evaluation_start, world_end, world_start


def listening_events(options: DemoOptions, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Listening events as (user index, track index, seconds since the epoch), unsorted.

    Each user weighs every track by a product of content affinity (style taste, instrument preference,
    tempo preference), collaborative factors (favourite artists; the favourite artists, favourite tracks and
    latent liking of every track shared by the user's social cluster) and a popularity prior raised to the
    user's popularity bias. Those weights fix
    a personal *discovery order* (a weighted random permutation, drawn with the Gumbel-top-k trick). Events
    come in sessions; each event either replays an earlier listen (recent ones more often, so favourites
    accumulate plays) or discovers the next track of the discovery order that is already released
    (sometimes restricted to the last 45 days of releases). Discoveries are therefore new (user, track)
    pairs at every point of time, including the evaluation month, and follow the user's taste.
    """
    rng_users = child_rng(options, USERS_STREAM)
    rng = child_rng(options, EVENTS_STREAM)
    n_users, n_tracks, n_styles = options.n_users, options.n_tracks, options.n_styles
    n_artists = options.n_artists

    # Social clusters: a style profile, a few favourite artists and tracks shared by their members.
    n_clusters = max(2, round(n_users / 25))
    cluster_profile = np.stack([_concentrated_taste(rng_users, catalogue.style_share, 0.0) for _ in range(n_clusters)])
    artist_pop = np.exp(catalogue.artist_log_pop)
    track_pop = np.exp(catalogue.log_pop)
    cluster_artists = np.zeros((n_clusters, n_artists), dtype=bool)
    cluster_tracks = np.zeros((n_clusters, n_tracks), dtype=bool)
    for c in range(n_clusters):
        weights = normalised(cluster_profile[c][catalogue.artist_style] * np.sqrt(artist_pop) + 1e-9)
        count = min(n_artists, int(rng_users.integers(3, 7)))
        cluster_artists[c, rng_users.choice(n_artists, size=count, replace=False, p=weights)] = True
        weights = normalised(cluster_profile[c][catalogue.style] * track_pop**0.3 + 1e-9)
        count = min(n_tracks, int(rng_users.integers(6, 13)))
        cluster_tracks[c, rng_users.choice(n_tracks, size=count, replace=False, p=weights)] = True
    user_cluster = rng_users.choice(n_clusters, size=n_users, p=rng_users.dirichlet(np.full(n_clusters, 2.0)))
    # A latent per-cluster liking of every track: word of mouth, scenes, shared playlists - no audio cue.
    cluster_affinity = rng_users.normal(0.0, 1.3, (n_clusters, n_tracks))

    style_centre = np.array([np.mean(style.tempo) for style in STYLES[:n_styles]])
    start_s = int(world_start(options).timestamp())
    eval_s = int(evaluation_start(options).timestamp())
    end_s = int(world_end(options).timestamp())
    span = eval_s - start_s
    mu = math.log(options.mean_events_per_user) - 0.5 * 0.9**2
    n_events = np.clip(np.round(rng_users.lognormal(mu, 0.9, n_users)), 3, 15 * options.mean_events_per_user)

    users, tracks, times = [], [], []
    for u in range(n_users):
        c = user_cluster[u]
        taste = _concentrated_taste(rng_users, 0.7 * cluster_profile[c] + 0.3 * catalogue.style_share, 0.02)
        instrument_pref = rng_users.dirichlet(np.full(len(INSTRUMENTS), 1.2))
        tempo_pref = float(taste @ style_centre + rng_users.normal(0.0, 8.0))
        tempo_sd = rng_users.uniform(15.0, 35.0)
        pop_bias = rng_users.uniform(0.5, 1.3)
        fav_weights = normalised(taste[catalogue.artist_style] * np.sqrt(artist_pop))
        n_favourites = min(n_artists, int(rng_users.integers(1, 4)))
        favourites = rng_users.choice(n_artists, size=n_favourites, replace=False, p=fav_weights)
        repeat_p = rng_users.beta(2.5, 2.5)
        recent_p = rng_users.uniform(0.05, 0.3)
        join = start_s + (int(rng_users.integers(0, int(0.9 * span))) if rng_users.random() < 0.3 else 0)
        churn_latest = eval_s - 2 * 86400
        churns = rng_users.random() < 0.12 and join + span // 5 < churn_latest
        stop = int(rng_users.integers(join + span // 5, churn_latest)) if churns else end_s

        log_w = (
            np.log(taste[catalogue.style])
            + 0.6 * np.log(instrument_pref[catalogue.instrument] * len(INSTRUMENTS))
            - 0.25 * ((catalogue.tempo - tempo_pref) / tempo_sd) ** 2
            + pop_bias * catalogue.log_pop
            + np.log(7.0) * np.isin(catalogue.artist, favourites)
            + np.log(4.0) * cluster_artists[c][catalogue.artist]
            + np.log(9.0) * cluster_tracks[c]
            + cluster_affinity[c]
        )

        # Sessions of a few back-to-back listens at random times of the user's active period.
        count = int(n_events[u])
        n_sessions = max(1, round(count / (1 + rng.poisson(2.5))))
        session_start = rng.integers(join, max(join + 1, stop - 3600), n_sessions)
        session = np.sort(rng.integers(0, n_sessions, count))
        length = rng.integers(120, 360, count)
        elapsed = np.cumsum(length) - length
        first = np.searchsorted(session, session, side="left")
        time = np.sort(session_start[session] + elapsed - elapsed[first])
        time = time[time < end_s]
        count = time.size
        if count == 0:
            continue
        repeat = (rng.random(count) < repeat_p) & (np.arange(count) > 0)
        recent = rng.random(count) < recent_p
        choice = _discoveries(log_w, catalogue.release_s, start_s, time, ~repeat, recent, rng)

        # Replays: an earlier listen (uniformly, or one of the last few), followed back to its discovery.
        reference = np.arange(count)
        back = np.where(
            rng.random(count) < 0.5,
            (rng.random(count) * reference).astype(np.int64),
            reference - np.minimum(rng.geometric(0.3, count), np.maximum(reference, 1)),
        )
        reference = np.where(repeat, np.maximum(back, 0), reference)
        while True:
            followed = np.where(repeat[reference], reference[reference], reference)
            if np.array_equal(followed, reference):
                break
            reference = followed
        users.append(np.full(count, u))
        tracks.append(choice[reference])
        times.append(time)
    if not users:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(users), np.concatenate(tracks), np.concatenate(times)


def _discoveries(
    log_weight: np.ndarray,
    release_s: np.ndarray,
    start_s: int,
    time: np.ndarray,
    discover: np.ndarray,
    recent: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tracks discovered at the events flagged ``discover`` (other entries are -1), never before release.

    A discovery takes the first track of the user's weighted random order that the user knows of and has
    not heard yet; a ``recent`` discovery prefers tracks released in the previous 45 days. A user learns of
    a track released during the world some time after its release (exponential, 40 days on average), so
    new releases reach their audience gradually rather than all at once. Only the head of the order can be
    reached, so only that is materialised; when it runs dry (a very heavy listener), a track is drawn by
    weight from everything released, which may be a track heard before.
    """
    n_tracks = log_weight.size
    choice = np.full(time.size, -1, dtype=np.int64)
    keys = log_weight + rng.gumbel(size=n_tracks)
    events = np.flatnonzero(discover)
    head = min(n_tracks, 4 * events.size + 50)
    candidates = np.argpartition(-keys, head - 1)[:head] if head < n_tracks else np.arange(n_tracks)
    candidates = candidates[np.argsort(-keys[candidates], kind="stable")]
    released_at = release_s[candidates]
    delay = np.where(released_at < start_s, 0, np.round(rng.exponential(40 * 86400, head)).astype(np.int64))
    known_at = released_at + delay
    taken = np.zeros(head, dtype=bool)
    weight = np.exp(log_weight - log_weight.max())
    fallback_draw = rng.random(events.size)
    for number, event in enumerate(events.tolist()):
        available = ~taken & (known_at <= time[event])
        if recent[event]:
            fresh = available & (released_at > time[event] - 45 * 86400)
            if fresh.any():
                available = fresh
        first = int(np.argmax(available))
        if available[first]:
            taken[first] = True
            choice[event] = candidates[first]
        else:
            released = np.flatnonzero(release_s <= time[event])
            cumulative = np.cumsum(weight[released])
            position = np.searchsorted(cumulative, fallback_draw[number] * cumulative[-1], side="right")
            choice[event] = released[min(position, released.size - 1)]
    return choice


def _concentrated_taste(rng: np.random.Generator, base: np.ndarray, floor: float) -> np.ndarray:
    """A taste over styles concentrated on 1-3 styles drawn from ``base``, plus a ``floor`` for exploring."""
    n_styles = base.size
    k = min(n_styles, int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2])))
    chosen = rng.choice(n_styles, size=k, replace=False, p=normalised(base))
    taste = np.full(n_styles, floor)
    taste[chosen] += rng.dirichlet(np.full(k, 2.0))
    return taste / taste.sum()
