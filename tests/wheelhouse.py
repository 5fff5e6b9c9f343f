"""Tiny wheels and projects built at test time, for requirement environments.

Wheels are written as zip files directly (a wheel is a zip with METADATA, WHEEL and RECORD),
so building them needs neither a network nor a build backend.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import zipfile

import dask
import pytest

TOY_MODULE = '''\
VERSION = {version!r}


class Thing:
    """An instance made in an environment: its class exists only there."""

    def __init__(self):
        self.version = VERSION
'''


def wheel(dest: str, name: str, version: str, body: str | None = None) -> str:
    """Write ``name-version-py3-none-any.whl`` (one module, ``name``) into ``dest``."""
    body = TOY_MODULE.format(version=version) if body is None else body
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": body,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: jupyter-remote-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, f"{dist}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for name_, text in files.items():
            z.writestr(name_, text)
    return path


BROKEN_BACKEND = '''\
def _fail(*args, **kwargs):
    raise RuntimeError("jrbroken cannot be built: this build backend fails on purpose")

get_requires_for_build_wheel = lambda config_settings=None: []
build_wheel = _fail
prepare_metadata_for_build_wheel = _fail
'''


def broken_project(dest: str) -> str:
    """A project folder whose build always fails (an in-tree backend that raises)."""
    path = os.path.join(dest, "jrbroken")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "pyproject.toml"), "w") as f:
        f.write(
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
            '[project]\nname = "jrbroken"\nversion = "0.1"\n'
        )
    with open(os.path.join(path, "backend.py"), "w") as f:
        f.write(BROKEN_BACKEND)
    return path


# -- fixtures (imported by the test modules that use them) ---------------------------------
@pytest.fixture(scope="module")
def house(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("wheelhouse"))
    for version in ("1.0", "2.0"):
        wheel(path, "jrtoy", version)
    return path


# What a successful install of jrtoy 1.0 writes in the build log, per installer.
INSTALLED = {"pip": "Successfully installed jrtoy-1.0", "uv": "+ jrtoy==1.0"}


@pytest.fixture(scope="module", params=["pip", "uv"])
def installer(request):
    """Every environment test runs with each installer the package supports (uv comes with
    the test extra: ``pip install uv`` puts it beside the interpreter)."""
    if request.param == "uv":
        from jupyter_remote.worker import envbuild

        if envbuild._find_uv() is None:
            pytest.fail("uv is not installed: install the test extra (it brings uv)")
    return request.param


@pytest.fixture(scope="module")
def env_root(tmp_path_factory, installer):
    return str(tmp_path_factory.mktemp(f"envs-{installer}"))  # each installer builds its own


@contextlib.contextmanager
def env_settings(house, env_root, installer):
    """The environments root, the installer and the wheelhouse, here and (through the
    environment) for the worker processes started inside."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT", env_root)
        mp.setenv("DASK_JUPYTER_REMOTE__ENVIRONMENTS__INSTALLER", installer)
        mp.setenv("DASK_LOGGING__DISTRIBUTED", "error")
        with dask.config.set({
            "jupyter-remote.environments.root": env_root,
            "jupyter-remote.environments.installer": installer,
            "jupyter-remote.pip-options": ["--no-index", "--find-links", house],
        }):
            yield


@pytest.fixture(scope="module")
def envs_cluster(house, env_root, installer):
    """Two worker processes of two threads, with :func:`env_settings`."""
    from distributed import LocalCluster

    from jupyter_remote.core import clusters

    with env_settings(house, env_root, installer):
        lc = LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                          dashboard_address="127.0.0.1:0")
        found = clusters.connect(lc.scheduler_address, f"envs-test-{os.path.basename(env_root)}")
        yield found
        found.close()
        lc.close()
