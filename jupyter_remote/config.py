"""Defaults and schema of the ``jupyter-remote`` namespace in ``dask.config``.

Settings are read late (``dask.config.get`` at use), so ``dask.config.set`` in a test or a
notebook takes effect without re-importing anything. Nothing is written to the user's
config directory.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

_fn = os.path.join(os.path.dirname(__file__), "jupyter_remote.yaml")

with open(_fn) as _f:
    defaults = yaml.safe_load(_f)

dask.config.update_defaults(defaults)


def get(key: str, default: Any = None) -> Any:
    """Read ``jupyter-remote.<key>`` from dask config."""
    return dask.config.get(f"jupyter-remote.{key}", default=default)


def validate(cfg: dict | None = None) -> None:
    """Check a configuration (default: the current one) against the shipped schema.

    Raises ``jsonschema.ValidationError`` naming the offending key.
    """
    import jsonschema

    with open(os.path.join(os.path.dirname(__file__), "jupyter_remote-schema.yaml")) as f:
        schema = yaml.safe_load(f)
    if cfg is None:
        cfg = {"jupyter-remote": dask.config.get("jupyter-remote")}
    jsonschema.validate(_hyphenate(cfg), schema)


def _hyphenate(value: Any) -> Any:
    """Dask treats `a_b` and `a-b` as one key (environment variables give underscores)."""
    if isinstance(value, dict):
        return {str(k).replace("_", "-"): _hyphenate(v) for k, v in value.items()}
    return value
