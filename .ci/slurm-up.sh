#!/usr/bin/env bash
# Start a single-node Slurm cluster for tests and trials: munged, slurmctld and slurmd on free loopback ports, one
# node with this machine's CPUs and memory and one fake GPU (gres backed by /dev/null), so GPU requests schedule.
# Accounting is off, hence Snakemake's Slurm executor must be told `--slurm-status-command squeue`.
#
#   .ci/slurm-up.sh STATE_DIR       # daemons' state, logs and munge key in STATE_DIR; their PIDs in STATE_DIR/pids
#   .ci/slurm-down.sh STATE_DIR     # stops the daemons by PID and removes the configuration
#
# The configuration goes to /etc/slurm (the only place the job steps' `srun` finds it, as the executor strips
# SLURM_* variables such as SLURM_CONF); an existing configuration that this script did not write is never
# overwritten. Needs root (slurmd launches jobs as their owner) and the Debian packages slurm-wlm and munge
# (.ci/install-slurm.sh). Exit status 3 means "cannot run here": binaries, privileges or a foreign config.
set -euo pipefail

state_arg=${1:?usage: slurm-up.sh STATE_DIR}
for tool in munged mungekey slurmctld slurmd sinfo scontrol runuser; do
    command -v "$tool" >/dev/null || {
        echo "slurm-up: '$tool' not found; install the Debian packages slurm-wlm and munge" >&2
        exit 3
    }
done
if [ "$(id -u)" != 0 ]; then
    echo "slurm-up: must run as root (slurmd starts jobs as their owner; munged runs as user munge)" >&2
    exit 3
fi
id munge >/dev/null 2>&1 || {
    echo "slurm-up: user 'munge' does not exist; reinstall the munge package" >&2
    exit 3
}
conf_dir=/etc/slurm
marker="# Written by audiorec .ci/slurm-up.sh"
if [ -e "$conf_dir/slurm.conf" ] && ! grep -qF "$marker" "$conf_dir/slurm.conf"; then
    echo "slurm-up: $conf_dir/slurm.conf belongs to another Slurm installation; not overwriting it" >&2
    exit 3
fi

mkdir -p "$state_arg"
state=$(cd "$state_arg" && pwd)
# munged runs as user munge and refuses key or socket folders that others may write to.
chmod 755 "$state"
mkdir -p "$state/munge" "$state/spool/ctld" "$state/spool/d" "$state/log"
chown munge:munge "$state/munge"
chmod 755 "$state/munge"
: >"$state/pids"

# Munge: a fresh key and a private socket.
runuser -u munge -- mungekey --create --force --keyfile="$state/munge/munge.key"
runuser -u munge -- munged \
    --socket="$state/munge/munge.socket" \
    --key-file="$state/munge/munge.key" \
    --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed"
for _ in $(seq 50); do
    [ -s "$state/munge/munged.pid" ] && [ -S "$state/munge/munge.socket" ] && break
    sleep 0.1
done
cat "$state/munge/munged.pid" >>"$state/pids"

# Two free TCP ports on the loopback interface.
read -r ctld_port slurmd_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
')

host=$(hostname -s)
# `slurmd -C` reports CPUs, sockets, cores, threads and memory as slurmd itself will see them.
node=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //')
mkdir -p "$conf_dir"
cat >"$conf_dir/slurm.conf" <<EOF
$marker for $state
ClusterName=audiorec$(printf '%05d' $((RANDOM % 100000)))
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol this long, which squeue-based status checks rely on.
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 $node Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
printf '%s\nName=gpu File=/dev/null\n' "$marker for $state" >"$conf_dir/gres.conf"

slurmctld
for _ in $(seq 100); do
    scontrol ping >/dev/null 2>&1 && break
    sleep 0.1
done
cat "$state/slurmctld.pid" >>"$state/pids"
slurmd
for _ in $(seq 200); do
    [ "$(sinfo --noheader --format=%t 2>/dev/null)" = idle ] && break
    sleep 0.1
done
[ -s "$state/slurmd.pid" ] && cat "$state/slurmd.pid" >>"$state/pids"
if [ "$(sinfo --noheader --format=%t)" != idle ]; then
    echo "slurm-up: the node did not become idle; see $state/log/" >&2
    sinfo >&2 || true
    exit 1
fi
echo "slurm-up: node $host idle with $(sinfo --noheader --format=%c) CPUs and gres $(sinfo --noheader --format=%G)"
