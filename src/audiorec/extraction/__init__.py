"""Embeddings tables from audio: the sharded extraction driver (:mod:`.embed`), which decodes tracks in worker
processes, runs a backbone on them, pools every layer over time and records the tracks it could not embed.

Above the backbones it drives, so the models never know about shards, workers or failure tables.
"""
