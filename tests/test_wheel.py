"""The wheel, not the editable install, carries the sidebar and enables both halves (README
"The Remote clusters sidebar": "The prebuilt extension ships in the wheel").

The wheel is built from this checkout (``pip wheel --no-deps --no-build-isolation``: offline,
with the build backend of the test extra; the labextension already built in
``jupyter_remote/labextension`` is reused, as the build hook's ``skip-if-exists`` says). Its
files are checked, then it is installed into a prefix of the test's own and Jupyter is asked,
with only that prefix added to its data path, whether the extension found there is valid.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = "jupyter_remote-{version}.data/data/"
LABEXT = "share/jupyter/labextensions/jupyter-remote/"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/jupyter_remote.json"


def _run(*args: str, **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert done.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dest), cwd=str(dest))  # fmt: skip
    (built,) = dest.glob("jupyter_remote-*.whl")
    return built


def test_the_wheel_holds_the_prebuilt_labextension_and_the_server_config(wheel):
    version = wheel.name.split("-")[1]
    data = DATA.format(version=version)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        package = json.loads(z.read(data + LABEXT + "package.json"))
        install = json.loads(z.read(data + LABEXT + "install.json"))
        server = json.loads(z.read(data + SERVER_CONFIG))
    assert package["name"] == "jupyter-remote" and package["version"] == version
    # The build's own record of its entry point, and that file is in the wheel.
    entry = package["jupyterlab"]["_build"]["load"]
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", entry), entry
    assert data + LABEXT + entry in names
    assert install["packageName"] == "jupyter_remote" and install["packageManager"] == "python"
    assert server["ServerApp"]["jpserver_extensions"]["jupyter_remote.server"] is True
    # The Python package is in it too (the editable install's source tree is not).
    assert "jupyter_remote/server/templates.yaml" in names


def test_the_installed_wheel_is_a_valid_extension_for_jupyter(wheel, tmp_path):
    # Into a venv of its own, never this one: pip would first uninstall the editable install
    # the whole run uses (a --prefix install does).
    prefix = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(prefix))
    _run(sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install",
         "--no-deps", "--no-index", str(wheel))  # fmt: skip
    assert list(prefix.glob("lib/python*/site-packages/jupyter_remote/__init__.py"))
    share = prefix / "share" / "jupyter"
    assert (share / "labextensions" / "jupyter-remote" / "package.json").is_file()
    assert (prefix / SERVER_CONFIG).is_file()
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join([str(share), os.environ["JUPYTER_PATH"]])}
    listed = _run(sys.executable, "-m", "jupyter", "labextension", "list", env=env)
    # The listing is grouped by folder: the wheel's folder lists the extension, valid.
    section = listed.split(str(share / "labextensions"), 1)
    assert len(section) == 2, listed
    first = section[1].split("\n/", 1)[0]
    assert re.search(r"jupyter-remote v[\d.]+\s+enabled\s+OK", first), listed
