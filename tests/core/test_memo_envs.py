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
