"""Compress a listening log of integer ids into one row per (user, track) pair, classified for the split.

This is the heavy step of :func:`audiorec.protocol.split.temporal_split`: every event before the end of the evaluation
window is grouped by its (user, track) pair. A general hash group-by does one cache miss per event into a table
of tens of millions of pairs; here the events are first scattered into partitions of a few users each (a
counting sort on the user code, sequential writes), and each partition is then grouped in a hash table small
enough to stay in the processor's cache, on every core. The ids must be dense integer codes,
which is how the "interactions" table stores them (see :func:`audiorec.storage.tables.write_interactions`).

Each pair falls in exactly one class, which fixes the one time and one count the split needs of it:

* ``TRAIN``: a listen inside the training window; its first listen there and its listens there;
* ``CANDIDATE``: first heard at or after the test start; its first listen and its listens;
* ``BEFORE``: heard only before the training window; its first listen and its listens.

(A pair first heard inside the window has a listen there, so no pair is left out.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

TRAIN, CANDIDATE, BEFORE = 0, 1, 2
"""Values of :attr:`Pairs.kind`."""

EVENTS_PER_PARTITION = 8192
"""Target events per partition: the partition's hash table (40 bytes a slot, twice as many slots as events)
then stays within a core's 1 MB L2 cache, where one more event costs a few nanoseconds rather than a trip to
memory."""

MAX_PARTITIONS = 1 << 14
"""Above this many partitions the scatter writes to too many places at once to stay cache-friendly."""

COMPILED_FROM_EVENTS = 500_000
"""Logs with fewer events are grouped by one NumPy sort instead: compiling the kernels below takes about 25 s
once per installation, which a demo-sized log (40k events) should not wait for. The sort is the slower engine
(0.30 s against the kernels' 0.04 s at 500k events, 2.3 s against 0.18 s at 2M), so larger logs compile."""

_NO_TIME = np.iinfo(np.int64).max
_EMPTY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_GOLDEN = np.uint64(0x9E37_79B9_7F4A_7C15)


@dataclass(frozen=True)
class Pairs:
    """One row per (user, track) pair with a listen before the evaluation window's end.

    ``time`` is in the log's integer unit: the first listen inside the training window for ``TRAIN`` pairs,
    the first listen otherwise; ``plays`` counts the listens of the same span. ``replayed`` counts the train
    pairs first heard before the window.
    """

    user: np.ndarray
    track: np.ndarray
    time: np.ndarray
    plays: np.ndarray
    kind: np.ndarray
    replayed: int

    FIELDS = ("user", "track", "time", "plays", "kind")
    """The per-pair arrays."""


def group_pairs(users: np.ndarray, tracks: np.ndarray, stamps: np.ndarray, bounds: tuple[int, int, int]) -> Pairs:
    """Group events given as parallel arrays of user codes, track codes and integer times.

    ``bounds`` is (train start, test start, test end) in the unit of ``stamps``; events at or after the test
    end are skipped. Codes must fit in 32 bits.
    """
    train_start, test_start, test_end = (int(value) for value in bounds)
    users = np.ascontiguousarray(users, dtype=np.uint32)
    tracks = np.ascontiguousarray(tracks, dtype=np.uint32)
    stamps = np.ascontiguousarray(stamps, dtype=np.int64)
    if users.size < COMPILED_FROM_EVENTS:
        return _group_by_sorting(users, tracks, stamps, train_start, test_start, test_end)
    n_users = int(users.max()) + 1 if users.size else 1
    per_user = max(users.size / (n_users - (int(users.min()) if users.size else 0)), 1.0)
    shift = max(0, int(np.log2(max(EVENTS_PER_PARTITION / per_user, 1.0))))
    while (n_users >> shift) + 1 > MAX_PARTITIONS:
        shift += 1
    keys, times, offsets = _scatter(users, tracks, stamps, test_end, shift, (n_users >> shift) + 1)
    del users, tracks, stamps
    plays = np.empty(keys.size, np.uint32)
    kind = np.empty(keys.size, np.uint8)
    found, replayed = _aggregate(keys, times, plays, kind, offsets, shift, train_start, test_start)
    return Pairs(*_compact(keys, times, plays, kind, offsets, found), replayed=int(replayed.sum()))


def _group_by_sorting(
    users: np.ndarray, tracks: np.ndarray, stamps: np.ndarray, train_start: int, test_start: int, test_end: int
) -> Pairs:
    """:func:`group_pairs` for small logs: the events sorted by (pair, time), each pair's run reduced at once."""
    kept = stamps < test_end
    keys = (users[kept].astype(np.uint64) << np.uint64(32)) | tracks[kept].astype(np.uint64)
    stamps = stamps[kept]
    order = np.lexsort((stamps, keys))
    keys, stamps = keys[order], stamps[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if keys.size else np.zeros(0, int)

    def per_pair(values: np.ndarray, reduce: np.ufunc = np.add) -> np.ndarray:
        return reduce.reduceat(values, starts) if starts.size else values[:0]

    first = stamps[starts]  # each run is sorted by time
    window = (stamps >= train_start) & (stamps < test_start)
    in_window = per_pair(window.astype(np.uint32))
    window_first = per_pair(np.where(window, stamps, _NO_TIME), np.minimum)
    train = in_window > 0
    later = first >= test_start
    after = per_pair((stamps >= test_start).astype(np.uint32))
    earlier = per_pair((stamps < train_start).astype(np.uint32))
    time = np.where(train, window_first, first)
    plays = np.where(train, in_window, np.where(later, after, earlier)).astype(np.uint32)
    kind = np.where(train, TRAIN, np.where(later, CANDIDATE, BEFORE)).astype(np.uint8)
    user = (keys[starts] >> np.uint64(32)).astype(np.uint32)
    track = (keys[starts] & np.uint64(0xFFFF_FFFF)).astype(np.uint32)
    rows = np.lexsort((track, time, user))
    replayed = int((train & (first < train_start)).sum())
    return Pairs(user[rows], track[rows], time[rows], plays[rows], kind[rows], replayed=replayed)


@nb.njit(cache=True)
def _scatter(users, tracks, stamps, test_end, shift, n_parts):  # pragma: no cover - compiled
    """Counting sort of the events before ``test_end`` by ``user >> shift``; keys pack (user, track) in 64 bits.

    One thread: the scatter is bound by memory writes, and two threads writing two sets of partition slices
    were slower than one on a two-core machine.
    """
    counts = np.zeros(n_parts + 1, np.int64)
    for i in range(users.size):
        if stamps[i] < test_end:
            counts[(users[i] >> shift) + 1] += 1
    offsets = np.cumsum(counts)
    position = offsets[:-1].copy()
    keys = np.empty(offsets[-1], np.uint64)
    times = np.empty(offsets[-1], np.int64)
    for i in range(users.size):
        if stamps[i] < test_end:
            p = users[i] >> shift
            j = position[p]
            keys[j] = (np.uint64(users[i]) << np.uint64(32)) | np.uint64(tracks[i])
            times[j] = stamps[i]
            position[p] = j + 1
    return keys, times, offsets


@nb.njit(parallel=True, cache=True)
def _aggregate(keys, times, plays, kind, offsets, shift, train_start, test_start):  # pragma: no cover - compiled
    """Group each partition in its own open-addressing table and write its pairs over its own events.

    A partition's events are all read before its pairs are written, and it has at least as many events as
    pairs, so writing in place at the partition's start is safe; ``found`` says how many rows each wrote.
    """
    n_parts = offsets.size - 1
    found = np.zeros(n_parts, np.int64)
    replayed = np.zeros(n_parts, np.int64)
    for p in nb.prange(n_parts):
        begin, end = offsets[p], offsets[p + 1]
        bits = 4
        while (1 << bits) < 2 * (end - begin):
            bits += 1
        size = 1 << bits
        mask = np.uint64(size - 1)
        slot_key = np.full(size, _EMPTY, np.uint64)
        first = np.empty(size, np.int64)
        window = np.empty(size, np.int64)
        in_window = np.zeros(size, np.uint32)
        after = np.zeros(size, np.uint32)
        earlier = np.zeros(size, np.uint32)
        for i in range(begin, end):
            key = keys[i]
            slot = ((key * _GOLDEN) >> np.uint64(64 - bits)) & mask
            while slot_key[slot] != key and slot_key[slot] != _EMPTY:
                slot = (slot + np.uint64(1)) & mask
            time = times[i]
            if slot_key[slot] == _EMPTY:
                slot_key[slot] = key
                first[slot] = time
                window[slot] = _NO_TIME
            elif time < first[slot]:
                first[slot] = time
            if time < train_start:
                earlier[slot] += 1
            elif time < test_start:
                in_window[slot] += 1
                if time < window[slot]:
                    window[slot] = time
            else:
                after[slot] += 1
        slots = _ordered(slot_key, np.where(in_window > 0, window, first), np.uint64(p << shift), 1 << shift)
        j = begin
        for s in slots:
            keys[j] = slot_key[s]
            if in_window[s] > 0:
                times[j], plays[j], kind[j] = window[s], in_window[s], TRAIN
                if first[s] < train_start:
                    replayed[p] += 1
            elif first[s] >= test_start:
                times[j], plays[j], kind[j] = first[s], after[s], CANDIDATE
            else:
                times[j], plays[j], kind[j] = first[s], earlier[s], BEFORE
            j += 1
        found[p] = j - begin
    return found, replayed


@nb.njit(cache=True)
def _ordered(slot_key, slot_time, first_user, n_users):  # pragma: no cover - compiled
    """The filled slots of a partition's table ordered by (user, time, track).

    Partitions hold ascending ranges of users, so writing every partition in this order puts the pairs of the
    whole log in the split tables' order, and the split needs no sort of its own. A counting sort puts the
    users in order; each user's pairs are then sorted by time, and the rare runs of equal times by track.
    """
    slots = np.flatnonzero(slot_key != _EMPTY)
    user = ((slot_key[slots] >> np.uint64(32)) - first_user).astype(np.int64)
    starts = np.zeros(n_users + 1, np.int64)
    for u in user:
        starts[u + 1] += 1
    starts = np.cumsum(starts)
    ordered = np.empty(slots.size, np.int64)
    position = starts[:-1].copy()
    for i in range(slots.size):
        ordered[position[user[i]]] = slots[i]
        position[user[i]] += 1
    for u in range(n_users):
        begin, end = starts[u], starts[u + 1]
        if end - begin < 2:
            continue
        mine = ordered[begin:end]
        mine = mine[np.argsort(slot_time[mine])]
        i = 0
        while i < mine.size:
            j = i + 1
            while j < mine.size and slot_time[mine[j]] == slot_time[mine[i]]:
                j += 1
            for a in range(i + 1, j):  # insertion sort of a run of equal times by track
                b = a
                while b > i and slot_key[mine[b]] < slot_key[mine[b - 1]]:
                    mine[b], mine[b - 1] = mine[b - 1], mine[b]
                    b -= 1
            i = j
        ordered[begin:end] = mine
    return ordered


@nb.njit(cache=True)
def _compact(keys, times, plays, kind, offsets, found):  # pragma: no cover - compiled
    """The pairs every partition wrote at its start, gathered into arrays of their own, keys split in two."""
    total = found.sum()
    user = np.empty(total, np.uint32)
    track = np.empty(total, np.uint32)
    time = np.empty(total, np.int64)
    play = np.empty(total, np.uint32)
    klass = np.empty(total, np.uint8)
    j = 0
    for p in range(offsets.size - 1):
        for i in range(offsets[p], offsets[p] + found[p]):
            user[j] = keys[i] >> np.uint64(32)
            track[j] = keys[i] & np.uint64(0xFFFF_FFFF)
            time[j], play[j], klass[j] = times[i], plays[i], kind[i]
            j += 1
    return user, track, time, play, klass
