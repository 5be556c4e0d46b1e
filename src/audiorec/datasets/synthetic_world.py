"""The latent world of the ``synthetic`` source and its listening log, vectorised over draws and events.

Tracks have a latent vector (their taste cluster's centre plus their own offset) and a Zipf popularity; users
have a latent taste, an active period and a heavy-tailed discovery rate. A user's choice of a new track is a
cluster drawn from ``softmax(taste · <user, centre> + log cluster popularity)`` and then a track of that
cluster by popularity, so what a user hears depends on both their taste (which the generated features can
see, through the track latents) and popularity (which they cannot). Each (user, track) pair gets a first
listen inside the user's active period and a heavy-tailed number of replays after it: the log has events, the
split reduces them to pairs.

No Python loop runs over users, pairs or events: draws are inverse-CDF look-ups (``searchsorted``) in
per-user and per-cluster cumulative tables laid end to end, and de-duplication is one ``np.unique``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiorec.datasets.synthetic_options import (
    CATALOGUE_STREAM,
    EVENTS_STREAM,
    HISTORY_STREAM,
    USERS_STREAM,
    SyntheticOptions,
    child_rng,
)

OVERSAMPLE = 1.6
"""Draws per wanted distinct track, before de-duplication: popular tracks are drawn more than once."""
REPLAY_SHAPE = 0.35
"""Gamma shape of each pair's replay rate: below 1, most pairs are heard once or twice and a few hundreds of
times, as in real logs."""


@dataclass(frozen=True)
class Catalogue:
    """Tracks: latent vectors (``(n, d)`` float32), taste cluster, popularity weight, release second."""

    latent: np.ndarray
    cluster: np.ndarray
    weight: np.ndarray
    release_s: np.ndarray
    centres: np.ndarray


@dataclass(frozen=True)
class Log:
    """The listening log as integer arrays: user index, track index, seconds since the log's start; sorted by
    (second, user, track)."""

    user: np.ndarray
    track: np.ndarray
    seconds: np.ndarray


def build_catalogue(options: SyntheticOptions) -> Catalogue:
    """Draw the tracks: cluster, latent vector, popularity (Zipf over a random rank order) and release time.

    Track latents are unit-norm cluster centres plus an isotropic offset of the same scale, so two tracks of a
    cluster are similar but not interchangeable and taste is not a pure cluster label.
    """
    scale = options.resolved()
    rng = child_rng(options, CATALOGUE_STREAM)
    centres = rng.standard_normal((scale.clusters, scale.latent_dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cluster = rng.integers(0, scale.clusters, size=scale.tracks)
    offsets = rng.standard_normal((scale.tracks, scale.latent_dim)) / np.sqrt(scale.latent_dim)
    latent = (centres[cluster] + offsets).astype(np.float32)
    rank = rng.permutation(scale.tracks) + 1
    weight = rank.astype(np.float64) ** -scale.zipf
    heard = rng.permutation(scale.tracks)[: max(1, round(scale.heard_fraction * scale.tracks))]
    weight[np.setdiff1d(np.arange(scale.tracks), heard)] = 0.0
    release_s = np.zeros(scale.tracks, dtype=np.int64)
    n_cold = min(round(scale.cold_fraction * scale.tracks), heard.size)
    if n_cold:
        evaluation_s, end_s = _calendar(options)
        cold = rng.choice(heard, size=n_cold, replace=False)
        release_s[cold] = rng.integers(evaluation_s, end_s - 7 * 86_400, size=n_cold)
    return Catalogue(latent=latent, cluster=cluster, weight=weight, release_s=release_s, centres=centres)


def _calendar(options: SyntheticOptions) -> tuple[int, int]:
    """Seconds from the log's start to the evaluation month and to the end of the log."""
    start = options.start()
    return (
        int((options.evaluation_start() - start).total_seconds()),
        int((options.end() - start).total_seconds()),
    )


def _stacked_cdf(weights: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group cumulative distributions laid end to end, group ``g`` shifted by ``g``.

    A uniform draw ``u`` for group ``g`` is then ``searchsorted(cdf, g + u)``: one vectorised look-up serves
    every group. Returns the stacked CDF and the order of the items it indexes.
    """
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    cumulative = np.cumsum(weights[order])
    starts = np.searchsorted(sorted_group, np.arange(n_groups))
    ends = np.searchsorted(sorted_group, np.arange(n_groups), side="right")
    before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
    totals = cumulative[np.maximum(ends - 1, 0)] - before
    totals = np.where((ends > starts) & (totals > 0), totals, 1.0)
    cdf = (cumulative - before[sorted_group]) / totals[sorted_group] + sorted_group
    cdf[np.r_[ends[ends > starts] - 1]] = sorted_group[ends[ends > starts] - 1] + 1.0
    return cdf, order


def _draw(cdf: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per entry of ``group`` from that group's distribution in a :func:`_stacked_cdf` table."""
    positions = np.searchsorted(cdf, group + rng.random(group.size), side="right")
    return np.minimum(positions, cdf.size - 1)


def listening_log(options: SyntheticOptions, catalogue: Catalogue) -> Log:
    """Generate the listening events of every user (see the module docstring)."""
    scale = options.resolved()
    evaluation_s, end_s = _calendar(options)
    month_s = evaluation_s / (scale.months - 1)
    users = child_rng(options, USERS_STREAM)
    taste = users.standard_normal((scale.users, scale.latent_dim))
    late = users.random(scale.users) >= scale.from_start
    start = np.where(late, users.random(scale.users) * end_s, 0.0)
    leaves = users.random(scale.users) >= scale.to_end
    end = np.where(leaves, start + users.random(scale.users) * (end_s - start), float(end_s))
    rate = users.lognormal(np.log(scale.mean_rate) - scale.rate_sigma**2 / 2, scale.rate_sigma, scale.users)
    wanted = np.minimum(np.ceil(rate * (end - start) / month_s), scale.max_history).astype(np.int64)

    # Cluster preferences: taste selects clusters, cluster popularity keeps the big ones big.
    cluster_weight = np.bincount(catalogue.cluster, weights=catalogue.weight, minlength=scale.clusters)
    logits = scale.taste * (taste @ catalogue.centres.T) + np.log(np.maximum(cluster_weight, 1e-300))
    logits -= logits.max(axis=1, keepdims=True)
    preference = np.exp(logits)
    preference /= preference.sum(axis=1, keepdims=True)
    user_cdf = (np.cumsum(preference, axis=1) + np.arange(scale.users)[:, None]).ravel()
    user_cdf[scale.clusters - 1 :: scale.clusters] = np.arange(1, scale.users + 1)
    track_cdf, track_order = _stacked_cdf(catalogue.weight, catalogue.cluster, scale.clusters)

    history = child_rng(options, HISTORY_STREAM)
    draws = np.ceil(wanted * OVERSAMPLE).astype(np.int64) + 2
    drawer = np.repeat(np.arange(scale.users), draws)
    cluster = _draw(user_cdf, drawer, history) - drawer * scale.clusters
    track = track_order[_draw(track_cdf, cluster, history)]
    # Keep each user's first `wanted` distinct tracks in draw order.
    _, first = np.unique(drawer * scale.tracks + track, return_index=True)
    first.sort()
    pair_user, pair_track = drawer[first], track[first]
    group_start = np.searchsorted(pair_user, np.arange(scale.users))
    keep = np.arange(first.size) - group_start[pair_user] < wanted[pair_user]
    pair_user, pair_track = pair_user[keep], pair_track[keep]

    # First listens inside the active period, never before the track's release.
    events = child_rng(options, EVENTS_STREAM)
    low = np.maximum(start[pair_user], catalogue.release_s[pair_track])
    high = end[pair_user]
    heard = low < high
    pair_user, pair_track, low, high = pair_user[heard], pair_track[heard], low[heard], high[heard]
    first_s = low + events.random(pair_user.size) ** scale.discovery_skew * (high - low)
    extra_mean = max(scale.events / max(pair_user.size, 1) - 1.0, 0.0)
    replay_rate = events.gamma(REPLAY_SHAPE, extra_mean / REPLAY_SHAPE, pair_user.size) if extra_mean else 0.0
    plays = 1 + events.poisson(replay_rate, pair_user.size)
    pair = np.repeat(np.arange(pair_user.size), plays)
    is_first = np.r_[True, pair[1:] != pair[:-1]]
    seconds = np.where(
        is_first, first_s[pair], first_s[pair] + events.random(pair.size) * (high[pair] - first_s[pair])
    ).astype(np.int64)
    user, track = pair_user[pair], pair_track[pair]
    order = np.lexsort((track, user, seconds))
    return Log(user=user[order].astype(np.int32), track=track[order].astype(np.int32), seconds=seconds[order])
