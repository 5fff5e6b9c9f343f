"""Memoized calls with requirements: the key holds the environment's hash, and a value made
in an environment (which the worker process cannot open) is stored and loaded as its bytes,
then opened by the next call in that environment. Runs with each installer."""

from __future__ import annotations

import dask
import pytest

import jupyter_remote
from tests import wheelhouse

house, installer = wheelhouse.house, wheelhouse.installer
env_root, envs_cluster = wheelhouse.env_root, wheelhouse.envs_cluster


@pytest.fixture
def store(tmp_path):
    with dask.config.set({"jupyter-remote.store.url": str(tmp_path / "store")}):
        yield tmp_path / "store"


def make_toy(path):
    import jrtoy

    open(path, "a").write("run\n")
    return jrtoy.Thing()


def version_of(toy):
    return toy.version


def test_a_value_made_in_an_environment_is_stored_and_reused(envs_cluster, house, store, tmp_path):
    marker = tmp_path / "runs.txt"
    make = jupyter_remote.function(make_toy, envs_cluster, reqs=["jrtoy==1.0"], cache=True)
    read = jupyter_remote.function(version_of, envs_cluster, reqs=["jrtoy==1.0"])
    assert read(make.remote(str(marker))) == "1.0"
    assert read(make.remote(str(marker))) == "1.0"  # a hit, opened in the environment
    assert marker.read_text().count("run") == 1
    # other requirements: another key, the function runs
    other = jupyter_remote.function(make_toy, envs_cluster, reqs=["jrtoy==2.0"], cache=True)
    assert jupyter_remote.function(version_of, envs_cluster, reqs=["jrtoy==2.0"])(
        other.remote(str(marker))) == "2.0"
    assert marker.read_text().count("run") == 2


MAKE_CELL = ("import jrtoy\n"
             "open(path, 'a').write('run\\n')\n"
             "toy = jrtoy.Thing()\n"
             "n = len(path)\n"
             "toy.version\n")


def test_a_cell_run_in_an_environment_is_stored_and_reused(envs_cluster, house, store, tmp_path):
    """A ``--reqs`` cell's values live in the environment's process; its run is stored as the
    bytes that process pickles, and a hit hands them to the next call there, unopened here."""
    from jupyter_remote.core import cells, environments

    marker = str(tmp_path / "runs.txt")
    v1, v2 = environments.resolve(["jrtoy==1.0"]), environments.resolve(["jrtoy==2.0"])
    first = cells.run_cell(MAKE_CELL, {"path": marker}, envs_cluster, cache=True, env=v1)
    again = cells.run_cell(MAKE_CELL, {"path": marker}, envs_cluster, cache=True, env=v1)
    assert (tmp_path / "runs.txt").read_text().count("run") == 1
    assert first.reused is None and again.reused == first.call.id
    assert again.display["text/plain"] == "'1.0'"
    read = jupyter_remote.function(version_of, envs_cluster, reqs=["jrtoy==1.0"])
    assert read(again.refs["toy"]) == "1.0"  # opened in the environment
    assert again.refs["n"].get() == len(marker)  # a plain value opens in the notebook too
    [entry] = [e for e in store_entries(envs_cluster) if e["kind"] == "cell"]
    assert entry["label"].startswith("import jrtoy")
    # other requirements: another key, the cell runs
    cells.run_cell(MAKE_CELL, {"path": marker}, envs_cluster, cache=True, env=v2)
    assert (tmp_path / "runs.txt").read_text().count("run") == 2


def store_entries(cluster):
    from jupyter_remote.core import memo

    return memo.entries(cluster)
