#!/usr/bin/env bash
# Installs the audiorec package into the environment Snakemake has just created from the .yaml file beside
# this script (Snakemake runs <env>.post-deploy.sh with that environment active). Editable, so the workflow
# always runs the checkout's code; --no-deps, because the environment file pins what its rules need and the
# package's full requirements would add torch to environments that do without it.
# Snakemake runs this from its working directory: the repository, unless you pass --directory; then point
# AUDIOREC_SOURCE at the repository.
set -euo pipefail
source_dir="${AUDIOREC_SOURCE:-$PWD}"
if ! grep -qs '^name = "audiorec"$' "$source_dir/pyproject.toml"; then
    echo "no audiorec checkout in $source_dir: run Snakemake from the repository or set AUDIOREC_SOURCE" >&2
    exit 1
fi
python -m pip install --no-deps --editable "$source_dir"
