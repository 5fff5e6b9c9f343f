"""``%%remote`` and ``%remote``: parse, delegate to core, render.

Everything that happens to a cell happens in :mod:`jupyter_remote.core.cells`; this module
turns arguments into a call and results into notebook names and displays.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from jupyter_remote.ipython import arguments


@magics_class
class RemoteMagics(Magics):
    """The ``%%remote`` cell magic and the ``%remote`` line magic."""

    # -- %%remote --------------------------------------------------------------------------
    @magic_arguments()
    @argument("cluster", nargs="?", default=None,
              help="cluster name or scheduler address (default: `%%remote use`, else `local`)")
    @argument("--reqs", nargs="+", metavar="SPEC", help="pip requirements for the code")
    @argument("-r", dest="requirements_file", metavar="FILE", help="a requirements file")
    @argument("--files", nargs="+", metavar="PATH", help="files the code needs on the worker")
    @argument("--out", nargs="+", metavar="NAME",
              help="bind only these names (default: every top-level name the cell binds)")
    @argument("--get", action="store_true",
              help="download the outputs into the notebook instead of keeping them remote")
    @argument("--no-wait", action="store_true",
              help="return at once; the names are bound to pending refs")
    @argument("--cache", action="store_true",
              help="answer from the result store (jupyter-remote.store.url) when an identical "
                   "run (same source, inputs and requirements) was stored, by any kernel; "
                   "else run and store the values")
    @argument("--resources", nargs="+", metavar="KEY=N",
              help="Dask worker resources the cell needs, e.g. GPU=1")
    @argument("--timeout", type=float, metavar="SECONDS",
              help="cancel the remote work and raise TimeoutError after this long")
    @argument("--workers", nargs="+", metavar="HOST",
              help="run only on these workers (addresses, host names or worker names)")
    @argument("--gpu", choices=["require", "prefer"],
              help="require: only on workers with the GPU resource; prefer: on them if any")
    @cell_magic
    def remote(self, line: str, cell: str) -> Any:
        """Run this cell on a worker of a Dask cluster.

        Names the cell reads come from the notebook (remote refs stay remote: their data
        moves worker to worker). Names the cell binds become RemoteRefs in the notebook.
        A trailing expression is shown with its repr computed on the worker. The cell's
        output (print, logging, warnings) appears here while it runs.

        Examples::

            %%remote
            model = train(X, y)

            %%remote tcp://scheduler:8786 --out model --timeout 600
            ...

            %%remote --reqs "scikit-learn==1.5.2" ./wheels/mypkg-1.0-py3-none-any.whl --files data.csv
            ...   # runs in an environment with those, built once per host, cached by content
        """
        args = arguments.parse(self.remote, line)
        if args.get and args.no_wait:
            raise UsageError("--get and --no-wait cannot be combined: --get waits to download")
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
        resources = arguments.resources(args.resources)
        env = arguments.env_spec(args.reqs, args.requirements_file, args.files)

        from jupyter_remote.core import cells
        from jupyter_remote.ipython import render

        cluster = arguments.cluster(args.cluster)
        # IPython counts the running cell before running it: its number is one less.
        count = getattr(self.shell, "execution_count", 1) - 1
        label = f"cell In[{count}]" if count > 0 else "remote cell"
        view = render.cell_view(wait=not args.no_wait)
        if not cluster.connected:
            view.connecting(cluster)  # at once: starting the embedded cluster takes seconds
        __tracebackhide__ = True  # IPython then shows the remote traceback, not ours
        try:
            # One leading newline: the remote traceback's line numbers then match the
            # cell's, whose line 1 is the %%remote line.
            result = cells.run_cell(
                "\n" + cell, self.shell.user_ns, cluster, label=label,
                filename=f"<remote {label}>", outputs=args.out, get=args.get,
                wait=not args.no_wait, resources=resources, timeout=args.timeout,
                on_lines=view.on_lines, on_call=view.start, env=env, cache=args.cache,
                reqs=args.reqs, requirements_file=args.requirements_file,
                workers=args.workers, gpu=args.gpu,
            )
        except Exception as error:
            view.fail(error)
            # Raised on the cluster or before submitting: shown without our frames.
            raise render.traceback_for(error).with_traceback(None) from error.__cause__
        self._bind(result, view)
        if result.display is not None:
            return cells.RemoteDisplay(result.display)
        return None

    def _bind(self, result: Any, view: Any) -> None:
        """Bind the cell's names in the notebook, and tell the view what they replaced."""
        from jupyter_remote.ipython.bound import MISSING

        before = {name: self.shell.user_ns.get(name, MISSING) for name in result.bound}
        self.shell.user_ns.update(result.bound)
        view.show_bound(result.bound, before)
        view.finish(result, result.bound)

    # -- %remote ---------------------------------------------------------------------------
    @line_magic("remote")
    def remote_line(self, line: str) -> Any:
        """Manage clusters and remote refs.

        Usage::

            %remote clusters                    list clusters with their status
            %remote use NAME                    default cluster for %%remote in this notebook
            %remote connect ADDRESS [--name NAME]
            %remote refs                        remote refs in the notebook
            %remote get NAME [NAME ...]         download refs into local variables
            %remote get NAME --head N|--sample N  a few rows, cut on the worker (binds nothing)
            %remote cancel NAME [NAME ...]|all  cancel remote work
            %remote publish NAME [--as SHARED]  share a ref with other notebooks
            %remote fetch SHARED [--as NAME]    bind a shared ref here
            %remote logs [CALL]                 list recent calls, or replay one call's log
            %remote envs [CLUSTER] [--prune]    requirement environments on the cluster
            %remote cache [CLUSTER] [--clear]   results stored by cache=True and --cache
            %remote functions [CLUSTER] [--latest]  functions saved with .save()
            %remote free NAME [NAME ...]|all    drop remote values now, and their names
            %remote shutdown [CLUSTER]          close a cluster this notebook started
            %remote submit FILE [CLUSTER]       run an experiment file's object, step by step
            %remote jobs                        runnables submitted from this notebook
        """
        from jupyter_remote.ipython import commands

        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot parse {line!r}: {exc}") from None
        if not words:
            raise UsageError(self.remote_line.__doc__)
        name, rest = words[0], words[1:]
        handler = commands.COMMANDS.get(name)
        if handler is None:
            raise UsageError(
                f"unknown subcommand {name!r}; expected one of: {', '.join(commands.COMMANDS)}\n"
                + self.remote_line.__doc__
            )
        return handler(self.shell, rest)


def load_ipython_extension(ipython) -> None:
    from jupyter_remote.ipython import render

    ipython.register_magics(RemoteMagics)
    render.install(ipython)


def unload_ipython_extension(ipython) -> None:
    from jupyter_remote.ipython import render

    render.uninstall(ipython)
    magics = ipython.magics_manager.registry.pop("RemoteMagics", None)
    if magics is not None:
        ipython.magics_manager.magics["cell"].pop("remote", None)
        ipython.magics_manager.magics["line"].pop("remote", None)
