"""A worked example of audiorec plugins: a small torch backbone and RP3beta, a graph-based collaborative model.

``plugin`` holds the descriptors the entry points name (light: building the DAG imports neither torch nor this
package's models), ``options`` their options dataclasses, ``backbone`` and ``rp3beta`` the implementations.
"""
