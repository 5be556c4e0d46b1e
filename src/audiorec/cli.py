"""Command-line access to the stages outside Snakemake, e.g. ``audiorec embed AUDIO_DIR --backbone mfcc``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from audiorec.errors import AudiorecError
from audiorec.stages import embed_files

AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".ogg", ".aiff", ".aif", ".m4a")


def embed_folder(args: argparse.Namespace) -> int:
    """Embed every audio file under a folder; track ids are the paths relative to it, without suffix."""
    audio_dir = Path(args.audio_dir)
    files = sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        print(f"error: no audio files ({', '.join(AUDIO_SUFFIXES)}) under {audio_dir}", file=sys.stderr)
        return 2
    track_ids = [str(p.relative_to(audio_dir).with_suffix("")) for p in files]
    layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    failures_path = Path(args.out).with_suffix(".failures.parquet")
    result = embed_files(
        track_ids=track_ids,
        paths=files,
        backbone_spec=resolved_spec(args.backbone, json.loads(args.options)),
        layer=layer,
        embeddings_path=args.out,
        failures_path=failures_path,
        batch_size=args.batch_size,
        num_workers=args.workers,
    )
    print(f"{len(result.track_ids)} tracks embedded → {args.out}; {len(result.failures)} failed → {failures_path}")
    return 0


def resolved_spec(kind: str, options: dict) -> dict:
    """The backbone spec, with published weights fetched into ``resources/weights/`` first where they are missing.

    As in the workflow, ``weights: published`` (or no ``weights`` on a size with a published source) takes the
    pinned release; here the command itself downloads it, as rule ``download_weights`` would.
    """
    from audiorec.storage.published_weights import resolve_backbone

    source, resolved = resolve_backbone("cli", kind, options)
    if source is None:
        return {"kind": kind, "options": resolved}
    from audiorec.storage.weights_fetch import ensure_local_copy

    ensure_local_copy(source)
    return {"kind": kind, "options": resolved, "published": source.expected_files()}


def check_kind(args: argparse.Namespace) -> int:
    """Run a kind's contract checks and print one line per check; the exit status is 1 if any failed."""
    from audiorec.contracts.results import summary

    options = json.loads(args.options)
    if args.family == "backbone":
        from audiorec.contracts.backbone import check_backbone

        results = check_backbone(args.target, options)
    else:
        from audiorec.contracts.recommender import check_recommender

        results = check_recommender(args.target, options, seed=args.seed)
    for result in results:
        print(result.line())
    print(summary(results))
    return 1 if any(result.status == "FAIL" for result in results) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiorec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed every audio file under a folder into a Parquet table")
    embed.add_argument("audio_dir", type=Path)
    embed.add_argument("--backbone", required=True, help="backbone kind, e.g. mfcc")
    embed.add_argument("--options", default="{}", help="backbone options as JSON, e.g. '{\"n_mfcc\": 20}'")
    embed.add_argument("--layer", default="last", help="'last', 'mean', a layer name or an index")
    embed.add_argument("--out", required=True, type=Path, help="output FILE.parquet (failures beside it)")
    embed.add_argument("--batch-size", type=int, default=8)
    embed.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    embed.set_defaults(handler=embed_folder)
    check = commands.add_parser(
        "check",
        help="run the contract checks of a backbone or recommender kind (your plugin's, or a built-in one)",
        description="Run the checks every built-in kind passes on TARGET: a kind name, an import target "
        "'package.module:Name' or an installed entry point; print PASS, FAIL (with the reason) or SKIP per check.",
    )
    check.add_argument("family", choices=("backbone", "recommender"))
    check.add_argument("target", help="kind: e.g. mfcc, knn, mypkg.models:MyBackbone, or an entry-point name")
    check.add_argument("--options", default="{}", help="the kind's options as JSON, e.g. '{\"epochs\": 2}'")
    check.add_argument("--seed", type=int, default=0, help="seed of a recommender (default 0)")
    check.set_defaults(handler=check_kind)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except AudiorecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
