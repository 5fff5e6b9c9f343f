"""Named functions in the result store: save, load by name (latest or @version) in this
process and in another kernel, list; an unknown name fails listing the known ones."""

from __future__ import annotations

import dask
import pytest

import jupyter_remote
from jupyter_remote.core import saved


@pytest.fixture
def store(tmp_path):
    with dask.config.set({"jupyter-remote.store.url": str(tmp_path / "store")}):
        yield tmp_path / "store"


def test_save_and_load_versions(local, store):
    def prep(x):
        return x + 1

    assert jupyter_remote.function(prep, name="prep", resources={}).save() == "prep@1"

    def prep(x):  # noqa: F811 - a new version under the same name
        return x + 100

    assert jupyter_remote.function(prep, name="prep").save() == "prep@2"
    latest = jupyter_remote.function(name="prep")
    assert latest.name == "prep" and latest(1) == 101
    assert jupyter_remote.function(name="prep@1")(1) == 2
    assert jupyter_remote.function(name="prep@2", cluster="local").map(range(3)) == [100, 101, 102]
    rows = saved.listing(local)
    assert [(r["name"], r["version"]) for r in rows] == [("prep", 1), ("prep", 2)]
    assert rows[0]["reqs"] == "-" and rows[0]["saved"] > 0


def test_unknown_names_list_the_known_ones(local, store):
    jupyter_remote.function(len, name="length").save()
    with pytest.raises(saved.UnknownFunctionError, match=r"'nope'.*saved functions: length@1"):
        jupyter_remote.function(name="nope")
    with pytest.raises(KeyError, match="length@1"):
        jupyter_remote.function(name="length@7")
    with pytest.raises(ValueError, match="NAME@VERSION"):
        jupyter_remote.function(name="length@x")
    with pytest.raises(TypeError, match="name= of a saved one"):
        jupyter_remote.function()


def test_a_saved_function_keeps_its_requirements_and_resources(local, store):
    def add(a, b):
        return a + b

    jupyter_remote.function(add, name="adder", reqs=["some-pkg==1.0"], resources={"GPU": 1}).save()
    loaded = jupyter_remote.function(name="adder")
    assert loaded.resources == {"GPU": 1} and loaded.reqs == ["some-pkg==1.0"]
    [row] = saved.listing(local)
    assert row["reqs"] == "some-pkg==1.0"
    # overriding them at load time: here, to run where neither exists
    assert jupyter_remote.function(name="adder", reqs=[], resources={})(2, 3) == 5


@pytest.mark.slow
def test_a_function_saved_in_one_kernel_loads_in_another(tmp_path):
    from tests.widgets.kernel import Kernel

    env = {"DASK_JUPYTER_REMOTE__STORE__URL": str(tmp_path / "store"),
           "DASK_JUPYTER_REMOTE__LOCAL__N_WORKERS": "1", "DASK_JUPYTER_REMOTE__WIDGETS": "text"}
    first = Kernel(env=env, cwd=str(tmp_path))
    try:
        first.execute("import jupyter_remote\nSCALE = 7\n"
                      "def scaled(x):\n    return x * SCALE\n"
                      "print('saved', jupyter_remote.function(scaled, name='scaled').save())",
                      timeout=180)
    finally:
        first.close()
    second = Kernel(env=env, cwd=str(tmp_path))
    try:
        msg = second.submit("import jupyter_remote\n"
                            "print('got', jupyter_remote.function(name='scaled')(6))")
        second.reply(msg, timeout=180)
        assert "got 42" in second.text(msg), second.text(msg)
    finally:
        second.close()
