"""A cluster's whole life through the REST API: started in its own process, scaled, used by a
real kernel by name (and the kernel's own cluster listed), a running call cancelled, shut down.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from jupyter_remote.core import registry
from tests import hermetic, wheelhouse

from .conftest import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def env_root(tmp_path, monkeypatch):
    """Where requirement environments go, for the sidebar's clusters and the kernel alike."""
    root = str(tmp_path / "envs")
    monkeypatch.setenv("DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT", root)
    monkeypatch.setenv("DASK_JUPYTER_REMOTE__PIP_OPTIONS", '["--no-index"]')
    return root


@pytest.fixture
def kernel(registry_path, env_root):
    """A real IPython kernel that shares the test's registry."""
    env = {**os.environ, "DASK_JUPYTER_REMOTE__REGISTRY_PATH": registry_path}
    km = hermetic.kernel_manager()  # the suite's kernelspec, wherever jp_environ points Jupyter
    km.start_kernel(env=env)
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code: str, timeout: float = 120) -> str:
    """Execute ``code`` in the kernel; return its stdout, raise with its traceback."""
    reply = kc.execute_interactive(
        textwrap.dedent(code),
        timeout=timeout,
        output_hook=lambda msg: out.append(msg),
    )
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    errors = [m["content"] for m in out if m["msg_type"] == "error"]
    if reply["content"]["status"] != "ok":
        raise AssertionError(
            "\n".join(e.get("evalue", "") + "\n".join(e.get("traceback", [])) for e in errors)
        )
    out.clear()
    return text


out: list = []


async def test_cluster_life(api, jp_fetch, kernel, registry_path, tmp_path):
    code, model = await api(
        "POST", "clusters", body={"template": "local", "name": "lab-t", "options": {"n_workers": 1}}
    )
    assert code == 202, model
    assert model["status"] == "starting"
    assert model["manageable"] is True

    # Started in its own process: the launcher, not this server.
    launcher = registry.get("lab-t")["pid"]
    assert launcher != os.getpid()

    async def running():
        _, m = await api("GET", "clusters", "lab-t")
        return m if m["status"] == "running" and m["workers"] == 1 else None

    model = await wait_for(running, 90, "lab-t running with 1 worker")
    assert model["address"].startswith("tcp://127.0.0.1:")
    assert model["threads"] == 1
    assert model["memory"] > 0
    assert model["dashboard"].startswith("/") and "/proxy/" in model["dashboard"]
    assert model["environments"] == [] and model["calls"] == []

    # The dashboard is served through the Jupyter server's proxy, with Jupyter's auth.
    path = model["dashboard"].split("/", 2)[2]  # drop the base URL
    response = await jp_fetch(*path.split("/"), raise_error=False)
    assert response.code == 200, response.code
    assert b"Dask" in response.body or b"bokeh" in response.body.lower()
    response = await jp_fetch(
        *path.split("/"), headers={"Authorization": ""}, raise_error=False, follow_redirects=False
    )
    assert response.code in (302, 401, 403)

    # A name taken is a conflict.
    code, reply = await api("POST", "clusters", body={"template": "local", "name": "lab-t"})
    assert code == 409, reply

    # Scale to two workers.
    code, model = await api("PATCH", "clusters", "lab-t", body={"workers": 2})
    assert code == 200
    assert model["requested_workers"] == 2

    async def two():
        _, m = await api("GET", "clusters", "lab-t")
        return m if m["workers"] == 2 else None

    await wait_for(two, 60, "two workers")

    # Adaptive bounds are recorded and shown.
    code, model = await api(
        "PATCH", "clusters", "lab-t", body={"adaptive": {"minimum": 1, "maximum": 3}}
    )
    assert code == 200
    assert model["adaptive"] == {"minimum": 1, "maximum": 3}
    code, model = await api("PATCH", "clusters", "lab-t", body={"workers": 2})
    assert code == 200 and model["adaptive"] is None

    # A real kernel reaches it by name, and its own embedded cluster shows up in the list.
    pid = int(run(kernel, "import os; print(os.getpid())"))
    text = run(
        kernel,
        """
        import jupyter_remote
        c = jupyter_remote.cluster("lab-t")
        print(c.address)
        print(c.client.submit(lambda: 40 + 2).result())
        jupyter_remote.cluster("local").client  # the kernel's embedded cluster
        """,
    )
    assert text.split() == [model["address"], "42"]
    _, listed = await api("GET", "clusters")
    by_name = {m["name"]: m for m in listed}
    mine = by_name[f"local-{pid}"]
    assert (
        mine["source"] == "kernel" and mine["status"] == "running" and mine["manageable"] is False
    )
    assert mine["label"] == "local"  # shown as its cells call it; the key stays unique
    assert mine["workers"] >= 1
    # The kernel is listed as a user of the cluster it reached by name (the sidebar marks the
    # card for its notebook), not of its own cluster, which it owns.
    assert [u["pid"] for u in by_name["lab-t"]["users"]] == [pid]
    assert mine["users"] == [] and mine["pid"] == pid

    # A running remote call is listed with its kernel, and cancelled from here.
    run(
        kernel,
        """
        import time
        slow = jupyter_remote.function(time.sleep, cluster="lab-t")
        ref = slow.remote(60)
        """,
    )

    async def a_call():
        _, m = await api("GET", "clusters", "lab-t")
        return [c for c in m["calls"] if c["state"] == "running"]

    (call,) = await wait_for(a_call, 30, "the running call")
    assert call["pid"] == pid
    assert call["kind"]
    code, reply = await api("DELETE", "clusters", "lab-t", "calls", call["call"])
    assert code == 200, reply
    assert "cancelled" in reply["message"]
    status = run(
        kernel,
        """
        for _ in range(100):
            if ref.status != "pending":
                break
            time.sleep(0.1)
        print(ref.status)
        """,
    )
    assert status.strip() == "cancelled"
    code, reply = await api("DELETE", "clusters", "lab-t", "calls", call["call"])
    assert code == 404 and "nothing to stop" in reply["message"], reply

    # A call with requirements builds an environment on the cluster: the card lists it.
    toy = wheelhouse.wheel(str(tmp_path / "wheels"), "jrsidebar", "1.5")
    text = run(
        kernel,
        f"""
        f = jupyter_remote.function(
            lambda: __import__("jrsidebar").VERSION, cluster="lab-t", reqs=[{toy!r}]
        )
        print(f())
        """,
    )
    assert text.strip().splitlines()[-1] == "1.5"  # after the build's pip lines
    _, model = await api("GET", "clusters", "lab-t")
    (env,) = model["environments"]
    assert any("jrsidebar" in r for r in env["requirements"]), env
    assert len(env["hosts"]) == 1 and env["size"] > 0 and isinstance(env["in_use"], bool)
    assert env["built_here"] is True
    # The kernel's own cluster sees the same environment root: it lists the environment,
    # not as built for its calls.
    _, other = await api("GET", "clusters", f"local-{pid}")
    assert [(e["hash"], e["built_here"]) for e in other["environments"]] == [(env["hash"], False)]

    # Disconnecting takes the kernel off the cluster's users.
    run(kernel, 'jupyter_remote.cluster("lab-t").close()')
    _, model = await api("GET", "clusters", "lab-t")
    assert model["users"] == []

    # Shut down: the process ends, the entry goes, the kernel no longer finds the name.
    code, reply = await api("DELETE", "clusters", "lab-t")
    assert code == 202, reply

    async def gone():
        _, m = await api("GET", "clusters")
        return all(x["name"] != "lab-t" for x in m) and not registry.pid_alive(launcher)

    await wait_for(gone, 40, "lab-t shut down")
    code, _ = await api("GET", "clusters", "lab-t")
    assert code == 404


async def test_a_cluster_that_fails_to_start_shows_its_error(api, registry_path):
    code, model = await api(
        "POST",
        "clusters",
        body={"template": "local", "name": "lab-bad", "options": {"memory_limit": "lots"}},
    )
    assert code == 202

    async def failed():
        _, m = await api("GET", "clusters", "lab-bad")
        return m if m["status"] == "error" else None

    model = await wait_for(failed, 60, "the start error")
    assert "lots" in model["error"]
    # The kernel gets the same story, not "unknown cluster".
    from jupyter_remote.exceptions import ClusterConnectError

    with pytest.raises(ClusterConnectError, match="failed to start"):
        registry.lookup("lab-bad")
    code, _ = await api("DELETE", "clusters", "lab-bad")
    assert code == 202
    code, _ = await api("GET", "clusters", "lab-bad")
    assert code == 404


async def test_a_cluster_that_does_not_start_in_time_is_stopped_and_says_so(api, registry_path):
    import dask.config

    with dask.config.set({"jupyter-remote.server.start-timeout": "0.2s"}):
        code, model = await api("POST", "clusters", body={"template": "local", "name": "lab-slow"})
        assert code == 202
        launcher = registry.get("lab-slow")["pid"]

        async def failed():
            _, m = await api("GET", "clusters", "lab-slow")
            return m if m["status"] == "error" else None

        model = await wait_for(failed, 30, "the start timeout")
    assert "did not start within 0.2 s" in model["error"]
    await wait_for(_dead(launcher), 10, "the launcher to be killed")
    code, _ = await api("DELETE", "clusters", "lab-slow")
    assert code == 202
    assert registry.get("lab-slow") is None


def _dead(pid):
    async def check():
        return not registry.pid_alive(pid)

    return check
