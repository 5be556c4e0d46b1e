"""Building blocks every layer uses: option parsing and scalar checks, kind registries, lazy package exports,
the split and task names the workflow shares, calendar months, usable CPUs and the torch device.

Above :mod:`audiorec.errors` and below everything else, so it imports no other audiorec package. Its modules
import the standard library (and numpy or torch only where their job is arrays or devices), so the workflow reads
them while it builds its DAG.
"""
