"""How many CPUs this process may use: what sizes its thread and process pools."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity where the OS has one (a Slurm job's allocation, a container's
    cpuset), else every CPU. ``os.cpu_count()`` alone would size pools for the whole node of a cluster job."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1
