"""A cluster defined in Dask config is listed by the server but not the server's to manage:
shutting it down or scaling it is a 409 with a message, and it stays listed (README promise).
"""

from __future__ import annotations


async def test_delete_and_scale_of_a_config_cluster_are_409s(api, registry_path):
    import dask.config

    entry = {"address": "tcp://127.0.0.1:1"}
    with dask.config.set({"jupyter-remote.clusters": {"shared-gpu": entry}}):
        code, reply = await api("DELETE", "clusters", "shared-gpu")
        assert code == 409, reply
        assert reply["message"] and "shared-gpu" in reply["message"]
        code, reply = await api("PATCH", "clusters", "shared-gpu", body={"workers": 2})
        assert code == 409, reply
        code, listed = await api("GET", "clusters")
        assert code == 200
        assert [c["name"] for c in listed if c["source"] == "config"] == ["shared-gpu"]
