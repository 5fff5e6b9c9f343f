"""Hostile REST input through a real Jupyter server with auth: bytes that are not UTF-8,
huge values that must not be echoed whole, and scale requests beyond the configured bound."""

from __future__ import annotations

import logging
import os

import dask.config
import pytest

from jupyter_remote.core import registry


def _server_cluster(name: str) -> None:
    registry.put({"name": name, "source": "server", "pid": os.getpid(), "status": "error",
                  "error": "boom"})


async def test_a_body_that_is_not_utf8_is_a_400_not_a_500(api, registry_path):
    code, reply = await api("POST", "clusters", body=b'{"template": "\xff\xfe"}')
    assert code == 400, reply
    assert "UTF-8" in reply["message"]
    code, reply = await api("PATCH", "clusters", "lab-1", body=b"\x80\x81")
    assert code == 400, reply
    assert registry.entries() == {}


async def test_a_huge_template_name_is_not_echoed_whole(api, registry_path, caplog):
    huge = "x" * 8_000_000
    with caplog.at_level(logging.DEBUG):
        code, reply = await api("POST", "clusters", body={"template": huge})
    assert code == 400
    assert "is not known" in reply["message"]
    assert "known templates: local" in reply["message"]  # the useful tail survives the cut
    assert len(reply["message"]) < 2_000
    longest = max((len(r.getMessage()) for r in caplog.records), default=0)
    assert longest < 10_000, f"the server logged a {longest:,}-character message"


async def test_huge_unknown_fields_and_options_are_cut(api, registry_path):
    huge = "y" * 1_000_000
    code, reply = await api("POST", "clusters", body={huge: 1, "template": "local"})
    assert code == 400
    assert "unknown field(s)" in reply["message"] and len(reply["message"]) < 2_000
    code, reply = await api("POST", "clusters",
                            body={"template": "local", "options": {"n_workers": huge}})
    assert code == 400
    assert "must be of type int" in reply["message"] and len(reply["message"]) < 2_000


@pytest.mark.parametrize(
    "payload",
    [{"workers": 1_000_000}, {"adaptive": {"minimum": 0, "maximum": 1_000_000}}],
)
async def test_scaling_beyond_max_workers_is_a_400(api, registry_path, payload):
    _server_cluster("lab-7")
    code, reply = await api("PATCH", "clusters", "lab-7", body=payload)
    assert code == 400, reply
    assert "jupyter-remote.server.max-workers" in reply["message"]
    assert "1,000,000" in reply["message"]
    assert registry.entries()["lab-7"].get("workers") is None  # nothing was requested


async def test_max_workers_comes_from_config(api, registry_path):
    _server_cluster("lab-8")
    with dask.config.set({"jupyter-remote.server.max-workers": 3}):
        code, reply = await api("PATCH", "clusters", "lab-8", body={"workers": 4})
        assert code == 400, reply
        assert "(3)" in reply["message"]
        code, reply = await api("POST", "clusters",
                                body={"template": "local", "options": {"n_workers": 4}})
        assert code == 400, reply
        assert "n_workers" in reply["message"]
    assert dask.config.get("jupyter-remote.server.max-workers") == 1000
