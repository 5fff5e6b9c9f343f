"""Everything a test run could read from the user's machine, pinned to folders of the run's own.

A user's ``~/.config/dask/*.yaml``, ``DASK_*`` variables, IPython startup files, a kernelspec
named ``python3``, environments built in the default root, pip or uv configuration: any of
them changes what the package does, so a green run on one machine would mean little on
another. :func:`pin` points all of them at one temporary folder, through environment
variables, so the pins hold in this process and in every process the tests start (cluster
schedulers and workers, kernels, Jupyter servers, environment builds) without any test
passing them on.

It must run before anything imports ``dask``: ``dask.config`` decides at import which folders
it reads (``~/.config/dask`` among them, whatever ``DASK_CONFIG`` says) and reads the
environment once. tests/conftest.py calls it first thing; if dask was imported already (by a
plugin), :func:`pin` recomputes dask's search path and refreshes its config.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# The kernelspec every test kernel is started with: this interpreter, under a name no user
# has. ``python3`` is written beside it (same interpreter) for what asks for that name
# (notebooks' metadata, JupyterLab's default), so a user's ``python3`` is never found either.
KERNEL_NAME = "jupyter-remote-tests"

# Variables a user may set that change what the package, Dask, pip, uv, Jupyter or IPython
# read. Every variable with one of these prefixes is dropped from the environment, then the
# pins below are set.
_DROPPED_PREFIXES = ("DASK_", "PIP_", "UV_", "JUPYTER", "IPYTHON", "XDG_")
_DROPPED = ("PYTHONSTARTUP", "PYTHONUSERBASE")
_KEPT_PREFIXES = ("JUPYTER_REMOTE_",)  # the suite's own knobs, e.g. JUPYTER_REMOTE_CHROMIUM


PINS: Pins | None = None  # set by pin()


@dataclass(frozen=True)
class Pins:
    """The folders a test run uses instead of the user's (all under ``root``)."""

    root: Path
    home: Path
    dask_config: Path
    ipythondir: Path
    jupyter_config: Path
    jupyter_data: Path
    jupyter_runtime: Path
    kernel_name: str
    registry_path: Path
    env_root: Path
    store: Path
    pip_cache: Path

    @property
    def store_url(self) -> str:
        return self.store.as_uri()


def _schema_knows(key: str) -> bool:
    """Whether the shipped schema declares ``jupyter-remote.<key>`` (read without dask)."""
    import yaml

    here = Path(__file__).resolve().parent.parent / "jupyter_remote"
    try:
        schema = yaml.safe_load((here / "jupyter_remote-schema.yaml").read_text())
    except OSError:
        return False
    props = schema["properties"]["jupyter-remote"]["properties"]
    return key in props


def _kernelspec(data_dir: Path, name: str) -> None:
    spec = data_dir / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"jupyter_remote tests ({name})",
        "language": "python",
        "metadata": {"debugger": False},
    }))  # fmt: skip


# Set by pin() to the run's folder. A process the run starts inherits it with the pins; a
# Dask worker that unpickles a test module's function by reference imports that module and
# with it tests/conftest.py, whose pin() must then keep what it inherited (a new folder would
# undo the pins and whatever settings the test gave that worker on top of them).
_PINNED = "JUPYTER_REMOTE_TESTS_PINNED"


def _pins_at(root: Path) -> Pins:
    return Pins(
        root=root,
        home=root / "home",
        dask_config=root / "dask",
        ipythondir=root / "ipython",
        jupyter_config=root / "jupyter" / "config",
        jupyter_data=root / "jupyter" / "data",
        jupyter_runtime=root / "jupyter" / "runtime",
        kernel_name=KERNEL_NAME,
        registry_path=root / "registry" / "clusters.json",
        env_root=root / "envs",
        store=root / "store",
        pip_cache=root / "cache" / "pip",
    )


def pin() -> Pins:
    """Point HOME, XDG, Dask, IPython, Jupyter, pip, uv and git at a fresh temporary folder.

    Returns the folders. Removed when the test process exits. In a process the run started
    (HOME still the run's), nothing changes: the pins it inherited are returned.
    """
    global PINS
    inherited = os.environ.get(_PINNED)
    if inherited and os.environ.get("HOME") == str(Path(inherited) / "home"):
        PINS = _pins_at(Path(inherited))
        return PINS
    root = Path(tempfile.mkdtemp(prefix="jupyter-remote-tests-")).resolve()
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    home = root / "home"
    pins = _pins_at(root)
    run_dir = root / "run"
    for d in (home / ".config", home / ".cache", home / ".local" / "share",
              home / ".local" / "state", pins.dask_config, root / "dask-root", pins.ipythondir,
              pins.jupyter_config, pins.jupyter_data, pins.jupyter_runtime, pins.env_root,
              pins.store, pins.registry_path.parent, pins.pip_cache, run_dir):  # fmt: skip
        d.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    _kernelspec(pins.jupyter_data, KERNEL_NAME)
    _kernelspec(pins.jupyter_data, "python3")

    for name in list(os.environ):
        if name.startswith(_KEPT_PREFIXES):
            continue
        if name.startswith(_DROPPED_PREFIXES) or name in _DROPPED:
            del os.environ[name]
    env = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_RUNTIME_DIR": run_dir,
        # Dask reads /etc/dask (DASK_ROOT_CONFIG), the install's etc/dask, ~/.config/dask and
        # DASK_CONFIG: the first and the last are ours, the third is under our HOME.
        "DASK_CONFIG": pins.dask_config,
        "DASK_ROOT_CONFIG": root / "dask-root",
        "IPYTHONDIR": pins.ipythondir,
        "JUPYTER_CONFIG_DIR": pins.jupyter_config,
        "JUPYTER_DATA_DIR": pins.jupyter_data,
        "JUPYTER_RUNTIME_DIR": pins.jupyter_runtime,
        # Searched before any data folder, so the suite's kernelspecs (``python3`` too) win
        # even where a test gives a server a JUPYTER_DATA_DIR of its own.
        "JUPYTER_PATH": pins.jupyter_data,
        "JUPYTERLAB_SETTINGS_DIR": root / "jupyter" / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": root / "jupyter" / "lab-workspaces",
        "DASK_JUPYTER_REMOTE__REGISTRY_PATH": pins.registry_path,
        "DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT": pins.env_root,
        # Builds in tests install from wheelhouses the tests write (tests/wheelhouse.py), never
        # from an index: no user pip/uv configuration, and no index even if a test forgot
        # --no-index (it fails at once instead of waiting on the network).
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CACHE_DIR": pins.pip_cache,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": root / "cache" / "uv",
        "UV_OFFLINE": "1",
        "PYTHONNOUSERSITE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "jupyter-remote tests",
        "GIT_AUTHOR_EMAIL": "tests@jupyter-remote.invalid",
        "GIT_COMMITTER_NAME": "jupyter-remote tests",
        "GIT_COMMITTER_EMAIL": "tests@jupyter-remote.invalid",
        _PINNED: root,
    }
    # The result store is pinned from the day the schema knows it (a key the schema does not
    # declare would make config.validate() fail).
    if _schema_knows("store"):
        env["DASK_JUPYTER_REMOTE__STORE__URL"] = pins.store_url
    os.environ.update({k: str(v) for k, v in env.items()})

    PINS = pins
    if "dask" in sys.modules:  # imported before us: make it forget what it read
        import dask.config

        dask.config.paths[:] = dask.config._get_paths()
        dask.config.PATH = str(pins.dask_config)
        dask.config.refresh()
    return pins


def check(pins: Pins, user_home: str) -> None:
    """Fail loudly if dask would still read a folder outside the pinned ones."""
    import dask.config

    outside = [
        p for p in dask.config.paths
        if p.startswith(os.path.join(user_home, "")) and not p.startswith(str(pins.root))
    ]  # fmt: skip
    if outside:
        raise RuntimeError(f"tests/hermetic.py: dask still reads the user's {outside}")


def kernel_manager(**kwargs):
    """A ``KernelManager`` for the suite's kernelspec, found in the pinned data folder even
    where a fixture (pytest-jupyter's ``jp_environ``) points Jupyter's paths elsewhere."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    assert PINS is not None, "tests/conftest.py pins the run before any kernel starts"
    specs = KernelSpecManager(kernel_dirs=[str(PINS.jupyter_data / "kernels")])
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs, **kwargs)
