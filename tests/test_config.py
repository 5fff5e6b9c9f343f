"""The shipped defaults match the shipped schema, and the schema catches mistakes."""

from __future__ import annotations

import copy

import dask
import jsonschema
import pytest

from jupyter_remote import config


def test_defaults_are_valid():
    config.validate({"jupyter-remote": config.defaults["jupyter-remote"]})
    config.validate()  # the live configuration, server templates included once loaded
    import jupyter_remote.server.defaults  # noqa: F401

    config.validate()


@pytest.mark.parametrize(
    "key, value",
    [
        ("widgets", "sometimes"),
        ("map", {"batch-size": 0}),
        ("local", {"n-workerz": 2}),
        ("clusters", {"gpu": {"host": "x"}}),
        ("nonsense", 1),
    ],
)
def test_mistakes_are_caught(key, value):
    cfg = copy.deepcopy(config.defaults)
    cfg["jupyter-remote"][key] = value
    with pytest.raises(jsonschema.ValidationError):
        config.validate(cfg)


def test_settings_are_read_late():
    with dask.config.set({"jupyter-remote.map.batch-size": 7}):
        assert config.get("map.batch-size") == 7
    assert config.get("map.batch-size") == "auto"
