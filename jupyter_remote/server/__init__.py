"""The Jupyter server extension of jupyter_remote: the cluster manager behind the sidebar.

Enabled by the package's own ``jupyter-config/jupyter_server_config.d/jupyter_remote.json``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "jupyter_remote.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    from jupyter_remote.server.handlers import setup_handlers
    from jupyter_remote.server.manager import ClusterManager

    web_app = serverapp.web_app
    proxy = None
    if serverapp.jpserver_extensions.get("jupyter_server_proxy"):
        proxy = url_path_join(web_app.settings["base_url"], "proxy") + "/"
    manager = ClusterManager(proxy_prefix=proxy)
    setup_handlers(web_app, manager)
    serverapp.log.info("jupyter_remote: cluster manager at /jupyter-remote/api/")
