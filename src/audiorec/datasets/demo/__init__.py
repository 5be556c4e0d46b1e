"""A deterministic synthetic music world: audio, listening histories, labels and playlists.

The embedded demo dataset must let the whole workflow (audio -> embeddings -> temporal split -> recommenders
-> metrics) show real effects without downloading anything. Random noise would not do: an audio model can only
beat a popularity baseline if the audio carries information about what people listen to, and a collaborative
model can only beat an audio model if listening carries information the audio does not. So the world has

* **styles** (the genre labels) that are audible: each style is a distribution over tempo, register, scale,
  note density, instrument mix, accompaniment, drums and room (reverb, echo, filtering, noise);
* **instruments** (the instrument labels): the melody of every track is played by one of five synthetic
  instruments (plucked string, bowed string, reed, FM bell, detuned synth lead), louder than the rest;
* **artists** with a main style, a signature instrument and tempo/register habits;
* **users** whose choices mix content affinity (style, instrument, tempo), loyalty to a few artists, the
  favourite artists and tracks of a social cluster (a signal the audio cannot see) and a Zipf-like popularity
  prior, who replay favourites, discover new tracks every month, and start or stop listening at various times;
* **time**: events span ``n_months`` calendar months from ``start_date``; the last month is the evaluation
  month, and ``cold_fraction`` of the tracks are released during it (cold items, heard only after release).

Everything derives from ``options.seed`` through independent child generators per part (catalogue, audio of
each track, users, events, labels, playlists), so changing e.g. ``n_playlists`` leaves the audio and the
listening events untouched, and the same options always give byte-identical files.

Each part has its own module: ``options`` (with the seeded streams), ``timeline``, ``styles``, ``catalogue``,
``score``, ``voices`` and ``synthesis`` (the audio), ``listening``, ``labels``, ``playlists`` and ``world``
(which writes the files); this package re-exports the names callers use, each imported on first use, so that
the workflow reads the options while it builds its DAG without importing the synthesiser.
"""

from audiorec.common.lazy import lazy_exports

_EXPORTS = {
    "TINY": "audiorec.datasets.demo.options",
    "DemoOptions": "audiorec.datasets.demo.options",
    "INSTRUMENTS": "audiorec.datasets.demo.styles",
    "STYLE_NAMES": "audiorec.datasets.demo.styles",
    "evaluation_start": "audiorec.datasets.demo.timeline",
    "world_end": "audiorec.datasets.demo.timeline",
    "world_start": "audiorec.datasets.demo.timeline",
    "fetch": "audiorec.datasets.demo.world",
    "generate_demo_world": "audiorec.datasets.demo.world",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
