"""The installed package enables both halves by itself: no `jupyter ... enable` step."""

from __future__ import annotations

import re
import subprocess
import sys


def _jupyter(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


def test_server_extension_is_enabled_by_the_package_config():
    text = _jupyter("server", "extension", "list")
    assert re.search(r"jupyter_remote\.server\s+enabled", text), text
    assert "jupyter_remote.server  OK" in text or "jupyter_remote.server OK" in text, text


def test_prebuilt_labextension_is_installed_and_enabled():
    text = _jupyter("labextension", "list")
    assert re.search(r"jupyter-remote v[\d.]+\s+enabled\s+OK", text), text
