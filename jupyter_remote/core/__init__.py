"""Plain Python + dask + distributed: no IPython, widgets or server code."""
