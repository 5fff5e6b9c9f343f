"""The errors the cluster manager raises; the handlers map each to its HTTP status."""

from __future__ import annotations


class BadRequest(ValueError):
    """A malformed or invalid request (HTTP 400)."""


class NotFound(KeyError):
    """No cluster of that name (HTTP 404)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Conflict(RuntimeError):
    """The request does not fit the cluster's state or owner (HTTP 409)."""
