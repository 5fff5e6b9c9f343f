"""Placement on a real cluster whose workers differ: workers=, gpu="require"|"prefer", for
calls, maps, splits and cells; names that match nothing fail at once, listing the workers."""

from __future__ import annotations

import pytest

import jupyter_remote
from jupyter_remote.core import cells
from jupyter_remote.exceptions import ResourceError
from tests.conftest import spec_cluster


@pytest.fixture(scope="module")
def mixed():
    """One worker with the GPU resource ("gpu"), one without ("cpu")."""
    spec = {"gpu": {"nthreads": 1, "resources": {"GPU": 1}}, "cpu": {"nthreads": 1}}
    with spec_cluster(spec, "placement-mixed") as cluster:
        yield cluster


def where(_=None):
    from distributed import get_worker

    return get_worker().name


def test_gpu_require_and_prefer_run_on_the_gpu_worker(mixed):
    assert jupyter_remote.function(where, mixed, gpu="require")() == "gpu"
    assert set(jupyter_remote.function(where, mixed, gpu="prefer").map(range(20))) == {"gpu"}


def test_workers_by_name_address_and_host(mixed):
    assert set(jupyter_remote.function(where, mixed, workers=["cpu"]).map(range(10))) == {"cpu"}
    info = mixed.client.scheduler_info(n_workers=-1)["workers"]
    gpu_address = next(a for a, w in info.items() if w["name"] == "gpu")
    assert jupyter_remote.function(where, mixed, workers=gpu_address)() == "gpu"
    host = jupyter_remote.function(where, mixed, workers="127.0.0.1")()
    assert host in ("gpu", "cpu")  # both workers are on this host


def test_a_cell_runs_where_it_is_told(mixed):
    result = cells.run_cell("from distributed import get_worker\nname = get_worker().name\n",
                            {}, mixed, workers=["cpu"], get=True)
    assert result.values["name"] == "cpu"
    result = cells.run_cell("from distributed import get_worker\nname = get_worker().name\n",
                            {}, mixed, gpu="require", get=True)
    assert result.values["name"] == "gpu"


def test_names_that_match_nothing_fail_at_once_listing_the_workers(mixed, local):
    with pytest.raises(ResourceError, match="matches no worker .* its workers: tcp://"):
        jupyter_remote.function(where, mixed, workers=["nowhere"])()
    with pytest.raises(ResourceError, match="requires a GPU"):
        jupyter_remote.function(where, local, gpu="require")()
    assert jupyter_remote.function(where, local, gpu="prefer")() is not None  # runs anyway
    with pytest.raises(ValueError, match="gpu must be"):
        jupyter_remote.function(where, local, gpu="always")
    with pytest.raises(ValueError, match="workers= takes"):
        jupyter_remote.function(where, local, workers=[""])


def test_percent_percent_remote_takes_workers_and_gpu(mixed, shell, run):
    shell.user_ns["placement_cluster"] = mixed
    run("%%remote placement-mixed --workers cpu --get\nfrom distributed import get_worker\n"
        "who = get_worker().name\n")
    assert shell.user_ns["who"] == "cpu"
    run("%%remote placement-mixed --gpu require --get\nfrom distributed import get_worker\n"
        "who = get_worker().name\n")
    assert shell.user_ns["who"] == "gpu"
