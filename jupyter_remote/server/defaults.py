"""Defaults of ``jupyter-remote.server`` (templates, timeouts) into dask config, on import.

Kept apart from the package's core defaults: only the server and its launcher read them.
"""

from __future__ import annotations

import os

import dask.config
import yaml

import jupyter_remote.config  # noqa: F401 (the core defaults first)

with open(os.path.join(os.path.dirname(__file__), "templates.yaml")) as _f:
    dask.config.update_defaults(yaml.safe_load(_f))
