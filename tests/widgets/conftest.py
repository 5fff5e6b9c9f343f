"""A real kernel (jupyter_client) with the extension loaded, shared by a module's tests.

The kernel starts the package's embedded cluster itself, on first use, as a notebook would.
"""

from __future__ import annotations

import pytest

from tests.widgets.kernel import Kernel


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("notebook")))
    try:
        k.execute("%load_ext jupyter_remote")
        # Start the embedded cluster now, so each test measures its own calls only.
        k.execute("%%remote --out warm\nwarm = 1\n", timeout=120)
        yield k
    finally:
        k.close()
