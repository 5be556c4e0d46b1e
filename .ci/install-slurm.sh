#!/usr/bin/env bash
# Install the Debian packages of a single-node Slurm test cluster (slurm-wlm, munge) where apt-get and root are
# available; elsewhere say why not and carry on, so the Slurm test is skipped and the rest of the suite still runs.
set -uo pipefail

if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-slurm: no root or no apt-get; the Slurm test will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }; then
    echo "install-slurm: apt-get could not install slurm-wlm and munge; the Slurm test will be skipped" >&2
fi
exit 0
