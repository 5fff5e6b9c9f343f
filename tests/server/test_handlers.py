"""The REST API through a real Jupyter server with token auth: verbs, auth, bad payloads, 404s.

The cluster's whole life (start, scale, kernel access, shut down) is in test_lifecycle.py.
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_remote.core import registry


async def test_templates_lists_local_with_options(api):
    code, templates = await api("GET", "templates")
    assert code == 200
    local = {t["name"]: t for t in templates}["local"]
    assert local["factory"] == "distributed.LocalCluster"
    options = {o["name"]: o for o in local["options"]}
    assert options["n_workers"]["type"] == "int"
    assert options["n_workers"]["default"] == 1
    assert options["memory_limit"]["description"]
    assert options["threads_per_worker"]["title"] == "Threads per worker"


async def test_list_is_empty_with_a_fresh_registry(api, registry_path):
    code, clusters = await api("GET", "clusters")
    assert code == 200
    assert clusters == []


async def test_config_clusters_are_listed(api):
    import dask.config

    with dask.config.set({"jupyter-remote.clusters": {"gpu": {"factory": "x.Y", "kwargs": {}}}}):
        code, clusters = await api("GET", "clusters")
    assert code == 200
    (gpu,) = clusters
    assert gpu["name"] == "gpu"
    assert gpu["source"] == "config"
    assert gpu["status"] == "not started"
    assert gpu["manageable"] is False


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("templates",)),
        ("GET", ("clusters",)),
        ("POST", ("clusters",)),
        ("GET", ("clusters", "lab-1")),
        ("PATCH", ("clusters", "lab-1")),
        ("DELETE", ("clusters", "lab-1")),
        ("DELETE", ("clusters", "lab-1", "calls", "abc")),
    ],
)
async def test_every_verb_refuses_a_request_without_token(jp_fetch, method, parts):
    kwargs = {"method": method}
    if method in ("POST", "PATCH"):
        kwargs["body"] = json.dumps({"template": "local"})
    with pytest.raises(HTTPClientError) as err:
        # An explicit empty Authorization header replaces the token jp_fetch would send.
        await jp_fetch("jupyter-remote", "api", *parts, headers={"Authorization": ""}, **kwargs)
    assert err.value.code in (401, 403)


async def test_malformed_json_is_a_400_with_a_message(api):
    code, body = await api("POST", "clusters", body="{not json")
    assert code == 400
    assert "message" in body


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ([1, 2], "JSON object"),
        ({"template": "nope"}, "template 'nope' is not known"),
        ({"template": "local", "options": {"n_workers": "two"}}, "must be of type int"),
        ({"template": "local", "options": {"n_workers": -1}}, "at least 0"),
        ({"template": "local", "options": {"n_workers": True}}, "must be of type int"),
        ({"template": "local", "options": {"gpus": 1}}, "unknown option(s) gpus"),
        ({"template": "local", "options": []}, "must be a JSON object"),
        ({"template": "local", "name": "../etc/passwd"}, "is not valid"),
        ({"template": "local", "name": "a/b"}, "is not valid"),
        ({"template": "local", "color": "red"}, "unknown field(s) color"),
    ],
)
async def test_bad_create_payloads_are_400s(api, registry_path, payload, says):
    code, body = await api("POST", "clusters", body=payload)
    assert code == 400, body
    assert says in body["message"]
    assert registry.entries() == {}  # nothing was started or recorded


@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", ("clusters", "nope"), None),
        ("PATCH", ("clusters", "nope"), {"workers": 2}),
        ("DELETE", ("clusters", "nope"), None),
        ("DELETE", ("clusters", "nope", "calls", "abc"), None),
        ("GET", ("clusters", "..%2F..%2Fetc"), None),
    ],
)
async def test_unknown_clusters_are_404s(api, method, parts, body):
    code, reply = await api(method, *parts, body=body)
    assert code == 404, reply
    assert "not known" in reply["message"]


async def test_kernel_clusters_cannot_be_scaled_or_shut_down_here(api, registry_path):
    import os

    registry.put(
        {
            "name": "local-1",
            "source": "kernel",
            "pid": os.getpid(),
            "status": "running",
            "address": "tcp://127.0.0.1:1",
        }
    )
    code, reply = await api("PATCH", "clusters", "local-1", body={"workers": 2})
    assert code == 409
    assert "belongs to the kernel" in reply["message"]
    code, reply = await api("DELETE", "clusters", "local-1")
    assert code == 409
    # An unreachable scheduler is reported as such, not as a server error.
    code, model = await api("GET", "clusters", "local-1")
    assert code == 200
    assert model["status"] == "unreachable"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"workers": -1},
        {"workers": "2"},
        {"workers": 2, "adaptive": {"minimum": 1, "maximum": 2}},
        {"adaptive": {"minimum": 3, "maximum": 1}},
        {"adaptive": {"minimum": 1}},
        {"adaptive": 4},
    ],
)
async def test_bad_scale_payloads_are_400s(api, registry_path, payload):
    import os

    registry.put(
        {
            "name": "lab-9",
            "source": "server",
            "pid": os.getpid(),
            "status": "error",
            "error": "boom",
        }
    )
    code, reply = await api("PATCH", "clusters", "lab-9", body=payload)
    assert code == 400, reply
    assert reply["message"]
