"""Old name of :mod:`jupyter_remote.preload`, kept so that ``preload:`` entries written in
Dask config (``jupyter_remote.core.tuning``) keep working. A one-line shim."""

from jupyter_remote.preload import INTERACTIVE_ENV, PARENT_ENV, dask_setup  # noqa: F401
