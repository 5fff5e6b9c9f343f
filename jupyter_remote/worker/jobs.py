"""Runnables on the worker: an object whose ``run()`` is called again while it returns True
(one step per call), and experiments written in YAML.

An experiment file has two YAML documents: the first maps module names to extensions (their
requirements, installed by the notebook's side as for ``--reqs``); the second is one object
written as ``!module.Class`` with its keyword arguments, nested objects allowed. It is built
here, where the extensions are installed; an unknown tag, a module that cannot be imported or
a bad argument fails with the line of the file.
"""

from __future__ import annotations

import importlib
from typing import Any

import yaml

from jupyter_remote.worker.capture import Sink


def run_job(spec: dict[str, Any], sink: Sink) -> Any:
    """Build the runnable (from YAML, or as sent) and step it; the object after its last step."""
    obj = spec.get("obj")
    if obj is None:
        obj = build(spec["text"], spec["filename"])
    if not callable(getattr(obj, "run", None)):
        raise TypeError(f"{type(obj).__qualname__} has no run() method: a runnable's run() "
                        "does one step and returns True while there are more")
    steps = 0
    while True:
        more = obj.run()
        steps += 1
        sink.state("running", batch=0, done=steps, failed=0)
        if not more:
            return obj


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader that builds ``!module.Class`` objects (and nothing else unsafe)."""


def _construct(loader: _Loader, suffix: str, node: Any) -> Any:
    line = node.start_mark.line + 1
    where = f"{loader.filename} line {line}"
    module_name, _, name = suffix.rpartition(".")
    if not module_name:
        raise ValueError(f"{where}: tag !{suffix} must name a class as !module.Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"{where}: module {module_name!r} of tag !{suffix} cannot be imported on the worker "
            f"({exc}); name it with its extension (a project folder, git URL or pip "
            "requirement) in the file's first document"
        ) from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ValueError(f"{where}: module {module_name!r} has no {name!r} (tag !{suffix})")
    if isinstance(node, yaml.MappingNode):
        kwargs = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.ScalarNode) and not node.value:
        kwargs = {}
    else:
        raise ValueError(f"{where}: !{suffix} takes keyword arguments as a mapping")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: !{suffix}({', '.join(map(str, kwargs))}) failed: {exc}") from None


_Loader.add_multi_constructor("!", _construct)


def build(text: str, filename: str) -> Any:
    """The object the second document of an experiment file describes."""
    loader = _Loader(text)
    loader.filename = filename
    try:
        documents = []
        while loader.check_node():
            documents.append(loader.get_node())
        if len(documents) < 2:
            raise ValueError(f"{filename}: an experiment file has two documents (extensions, "
                             f"then the object, separated by ---); found {len(documents)}")
        return loader.construct_document(documents[1])
    finally:
        loader.dispose()
