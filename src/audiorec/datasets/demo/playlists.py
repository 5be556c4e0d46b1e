"""The playlists of the demo world: style- and mood-coherent track lists."""

from __future__ import annotations

import numpy as np

from audiorec.datasets.demo.catalogue import Catalogue, normalised
from audiorec.datasets.demo.options import PLAYLISTS_STREAM, DemoOptions, child_rng
from audiorec.datasets.demo.styles import close_style


def build_playlists(options: DemoOptions, catalogue: Catalogue) -> tuple[list[int], list[int], list[int]]:
    """Playlists built around one style and a tempo (mood), sometimes blended with a related style."""
    rng = child_rng(options, PLAYLISTS_STREAM)
    pop = np.exp(catalogue.log_pop)
    playlist_ids, track_ids, positions = [], [], []
    low, high = options.playlist_length
    present = np.bincount(catalogue.style, minlength=options.n_styles) > 0
    for p in range(options.n_playlists):
        main = int(rng.choice(options.n_styles, p=normalised(catalogue.style_share * present)))
        length = int(rng.integers(low, high + 1))
        second = close_style(main, options.n_styles, rng) if rng.random() < 0.35 else None
        n_main = length if second is None else round(rng.uniform(0.7, 0.9) * length)
        in_main = np.flatnonzero(catalogue.style == main)
        mood = float(catalogue.tempo[rng.choice(in_main)])
        chosen: list[int] = []
        for style, count in ((main, n_main), (second, length - n_main)):
            if style is None or count <= 0:
                continue
            members = np.flatnonzero((catalogue.style == style) & ~np.isin(np.arange(options.n_tracks), chosen))
            count = min(count, members.size)
            weights = np.sqrt(pop[members]) * np.exp(-0.5 * ((catalogue.tempo[members] - mood) / 15.0) ** 2) + 1e-12
            chosen.extend(rng.choice(members, size=count, replace=False, p=normalised(weights)).tolist())
        order = rng.permutation(len(chosen))
        playlist_ids.extend([p] * len(chosen))
        track_ids.extend(np.asarray(chosen)[order].tolist())
        positions.extend(range(len(chosen)))
    return playlist_ids, track_ids, positions
