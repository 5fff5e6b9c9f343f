"""REST handlers under ``/jupyter-remote/api/``: authenticate, parse, delegate, serialise.

| verb and path                         | does                                   |
|---------------------------------------|----------------------------------------|
| GET    templates                      | the "New cluster" templates            |
| GET    clusters                       | every cluster                          |
| POST   clusters                       | start one from a template (202)        |
| GET    clusters/NAME                  | one cluster, with its calls and envs   |
| PATCH  clusters/NAME                  | scale: {"workers": N} or {"adaptive"}  |
| DELETE clusters/NAME                  | shut it down (202)                     |
| DELETE clusters/NAME/calls/CALL       | cancel a running remote call           |
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from jupyter_remote.server.manager import BadRequest, ClusterManager, Conflict, NotFound

AUTH_RESOURCE = "jupyter_remote"
_NAME = r"(?P<name>[^/]+)"


class _Handler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> ClusterManager:
        return self.settings["jupyter_remote_manager"]

    def body(self) -> Any:
        """The JSON body; a 400 (never a 500) on a body that is not UTF-8 or not JSON."""
        try:
            self.request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise web.HTTPError(
                400, "%s", f"the request body must be JSON in UTF-8; byte {exc.start} is not "
                "UTF-8. Send the body encoded as UTF-8."
            ) from None
        return self.get_json_body()  # a 400 on malformed JSON

    def reply(self, model: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(model))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """JSON errors whose message is the formatted one (the UI shows it as is)."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message and exc.args:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.log_message % exc.args, "reason": exc.reason}))
            return
        super().write_error(status_code, **kwargs)

    async def guarded(self, coro) -> Any:
        """Our own errors become 400/404/409 with their message; anything else stays a 500."""
        try:
            return await coro
        except BadRequest as exc:
            raise web.HTTPError(400, "%s", _cut(str(exc))) from None
        except NotFound as exc:
            raise web.HTTPError(404, "%s", _cut(str(exc))) from None
        except Conflict as exc:
            raise web.HTTPError(409, "%s", _cut(str(exc))) from None


MAX_MESSAGE = 2000  # characters of an error message sent back (and logged by tornado)


def _cut(message: str) -> str:
    """A message no longer than ``MAX_MESSAGE``: what a request sent is never echoed whole
    (an 8 MB name would fill the reply and the server log). The manager already cuts the
    values it quotes; this is the last guard."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[: MAX_MESSAGE - 40]}... ({len(message):,} characters in all)"


class TemplatesHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(self.manager.templates())


class ClustersHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.guarded(self.manager.list()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        self.reply(await self.guarded(self.manager.create(body)), 202)


class ClusterHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.guarded(self.manager.get(name)))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        body = self.body()
        self.reply(await self.guarded(self.manager.scale(name, body)))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.guarded(self.manager.shutdown(name))
        self.reply({"message": f"cluster {name!r} is shutting down"}, 202)


class CallHandler(_Handler):
    @web.authenticated
    @authorized
    async def delete(self, name: str, call: str) -> None:
        message = await self.guarded(self.manager.cancel_call(name, call))
        self.reply({"message": message})


def setup_handlers(web_app, manager: ClusterManager) -> None:
    web_app.settings["jupyter_remote_manager"] = manager
    base = url_path_join(web_app.settings["base_url"], "jupyter-remote", "api")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "templates"), TemplatesHandler),
            (url_path_join(base, "clusters"), ClustersHandler),
            (url_path_join(base, "clusters", _NAME), ClusterHandler),
            (url_path_join(base, "clusters", _NAME, "calls", r"(?P<call>[^/]+)"), CallHandler),
        ],
    )
