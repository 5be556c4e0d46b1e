"""Everything that touches files: the Parquet table contracts and their validating readers, atomic writes,
downloads and archive extraction, the published-weights catalogue and its fetcher, training checkpoints, and the
per-job log.

It knows file formats, not models or metrics, so it imports only :mod:`audiorec.common`.
"""
