"""A worked example of audiorec plugins: a small torch backbone and EASE, a closed-form collaborative model.

``plugin`` holds the descriptors the entry points name (light: building the DAG imports neither torch nor this
package's models), ``options`` their options dataclasses, ``backbone`` and ``ease`` the implementations.
"""
