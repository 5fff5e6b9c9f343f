"""What crosses processes: the words the notebook and the workers both speak.

- :mod:`~jupyter_remote.wire.payload`: the opaque bytes a task carries (user code and values,
  remote values cut out as task dependencies) and the header of calls with requirements;
- :mod:`~jupyter_remote.wire.failures`: how an exception raised by user code travels back;
- :mod:`~jupyter_remote.wire.events`: the log events of a call and their packing;
- :mod:`~jupyter_remote.wire.envspec`: the env spec (requirements and files) as both sides
  read it;
- :mod:`~jupyter_remote.wire.locks`: the file lock both sides use on shared folders.

Nothing here imports the notebook side (``core``, IPython, widgets, the server) or the worker
side (``worker``): both import this package, never the other way round.
"""
