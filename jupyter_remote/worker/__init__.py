"""What runs inside Dask workers and in the processes of requirement environments.

- :mod:`~.runner`: the stable functions every task calls (``run``, ``take``, ...);
- :mod:`~.kinds`: running each kind of payload (cell, call, batch);
- :mod:`~.state`: per-call state (running calls, kept values, interrupts);
- :mod:`~.capture`: routing each call's output to its log events;
- :mod:`~.plugin`: the one ``WorkerPlugin``, registered when a notebook connects;
- :mod:`~.context`: ``get_env()`` for the running code;
- :mod:`~.envstore`, :mod:`~.envbuild`: the environments of one host;
- :mod:`~.envexec`, :mod:`~.envchild`, :mod:`~.pipe`: calls in an environment's process.

Nothing here imports the notebook side (``jupyter_remote.core``, IPython, widgets or the
server): what both sides speak is in :mod:`jupyter_remote.wire`.
"""
