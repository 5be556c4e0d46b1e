#!/usr/bin/env bash
# Stop the daemons .ci/slurm-up.sh started under STATE_DIR, by the PIDs it recorded (slurmd first, munged last),
# and remove the configuration it wrote to /etc/slurm.
set -uo pipefail

state=$(cd "${1:?usage: slurm-down.sh STATE_DIR}" 2>/dev/null && pwd) || exit 0
for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [ -f "$conf" ] && [ "$(head -n 1 "$conf")" = "# Written by audiorec .ci/slurm-up.sh for $state" ]; then
        rm -f "$conf"
    fi
done
[ -f "$state/pids" ] || exit 0
pids=$(tac "$state/pids")
for pid in $pids; do
    kill -TERM "$pid" 2>/dev/null
done
for _ in $(seq 100); do
    alive=0
    for pid in $pids; do
        kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && exit 0
    sleep 0.1
done
for pid in $pids; do
    kill -KILL "$pid" 2>/dev/null
done
exit 0
