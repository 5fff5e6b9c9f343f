"""The error family of jupyter_remote.

Each message says what was expected, what came, and what to do next.
"""

from __future__ import annotations


class JupyterRemoteError(Exception):
    """Base class of the errors raised by jupyter_remote itself."""


class UnknownClusterError(JupyterRemoteError, KeyError):
    """A cluster name that is neither defined, connected nor an address."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(
            f"cluster {name!r} is not known; known clusters: {', '.join(known) or '(none)'}. "
            f"Define it in dask config under jupyter-remote.clusters.{name} (with `address:` or "
            f"`factory:` and `kwargs:`), connect it with `%remote connect ADDRESS --name {name}`, "
            "or pass an address such as tcp://host:8786."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ClusterConnectError(JupyterRemoteError, ConnectionError):
    """A cluster could not be reached or started."""


class UnknownInputError(JupyterRemoteError, NameError):
    """A name the cell reads is defined neither in the cell nor in the notebook."""

    def __init__(self, names: list[str], where: str = "the cell"):
        self.names = names
        listed = ", ".join(repr(n) for n in names)
        plural = "s" if len(names) > 1 else ""
        super().__init__(
            f"{where} reads name{plural} {listed} that {'are' if plural else 'is'} not defined "
            "in the notebook; define it in an earlier cell (or in this cell before it is used). "
            "Nothing was sent to the cluster."
        )


class SerializationError(JupyterRemoteError, TypeError):
    """An input could not be serialized for the trip to the worker."""

    def __init__(self, name: str, value: object, cause: BaseException):
        self.name = name
        self.type_name = f"{type(value).__module__}.{type(value).__qualname__}"
        super().__init__(
            f"input {name!r} of type {self.type_name} cannot be sent to the cluster: "
            f"{type(cause).__name__}: {cause}. Create it inside the remote cell instead, or "
            "keep it remote (a RemoteRef) so it never needs to travel. Nothing was sent."
        )


class ResourceError(JupyterRemoteError, ValueError):
    """No worker of the cluster offers the resources a call asks for."""


class EmptyCellError(JupyterRemoteError, ValueError):
    """A ``%%remote`` cell with no code."""


class EnvironmentBuildError(JupyterRemoteError):
    """Installing a call's requirements failed; the message carries the installer's error."""


class WorkerLostError(JupyterRemoteError):
    """A worker that ran a call, or held a result, died."""


class RemoteTimeoutError(JupyterRemoteError, TimeoutError):
    """A remote call did not finish within its ``--timeout``; the work was cancelled."""


class RemoteCancelledError(JupyterRemoteError):
    """The remote work behind a call or a ref was cancelled."""


class RemoteError(JupyterRemoteError):
    """A remote exception whose type cannot be re-created in the notebook.

    ``type_name`` names the remote type; the remote traceback is the ``__cause__``.
    """

    def __init__(self, type_name: str, message: str):
        self.type_name = type_name
        super().__init__(f"{type_name}: {message}")


class RemoteTraceback(Exception):
    """Carries the remote traceback text as the ``__cause__`` of a re-raised exception."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text


class RemoteTaskError(Exception):
    """Raised by the runner on a worker; holds the failure as opaque bytes.

    Its only argument is bytes, so the scheduler can hold it without importing user code.
    The client turns it back into the original exception (see :mod:`jupyter_remote.wire.failures`).
    The second argument is a one-line summary for logs.
    """

    def __str__(self) -> str:
        return str(self.args[1]) if len(self.args) > 1 else "remote failure"

    def __repr__(self) -> str:
        return f"RemoteTaskError({self})"
