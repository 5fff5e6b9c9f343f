"""The env spec: a call's requirements and files, as the notebook sends them.

The notebook builds it (:func:`jupyter_remote.core.environments.resolve`); the worker builds
and runs its environment (:mod:`jupyter_remote.worker.envstore`). It is a plain dict:

- ``requirements``: the requirement texts as the user wrote them (for messages);
- ``args``: the installer's arguments, local wheels/projects as ``{local:N}``;
- ``local``: per local wheel/project, ``name``, ``kind`` (``file`` | ``project``), ``sha``,
  and ``data`` (its bytes) or ``blob`` (the index of the task dependency that carries them);
- ``repo``: None, or the git repository (``url``, ``ref``, ``commit``) whose files the
  ``{repo:PATH}`` arguments name (``reqs=["repo:requirements.txt"]`` of a function from
  git; read from its checkout when the environment is built); ``git+URL@REF`` requirements
  are in ``args`` already pinned to ``git+URL@COMMIT``;
- ``pip_options``; ``reqs_hash`` (None without requirements); ``files`` (``names``, ``sha``,
  ``data`` or ``blob``: a gzipped tar of ``--files``); ``hash`` (of all of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe(spec: Mapping[str, Any] | None) -> str:
    """A short label of a spec (or of a built environment's record) for messages."""
    if not spec:
        return "no requirements"
    return " ".join(spec.get("requirements") or ()) or "no requirements"


def attach(spec: dict[str, Any], blobs: tuple[Any, ...]) -> dict[str, Any]:
    """Put the data of big local files, which came as task dependencies, back into ``spec``
    (the notebook's :func:`jupyter_remote.core.environments.detach` took it out)."""

    def fill(part: dict[str, Any] | None) -> dict[str, Any] | None:
        if part is None or part.get("blob") is None:
            return part
        return {**part, "data": blobs[part["blob"]]}

    return {**spec, "local": [fill(e) for e in spec["local"]], "files": fill(spec["files"])}
