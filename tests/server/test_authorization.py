"""Every verb asks the server's authorizer about resource ``jupyter_remote``."""

from __future__ import annotations

import pytest
from jupyter_server.auth.authorizer import Authorizer


class DenyRemote(Authorizer):
    """Allows everything except this extension's resource."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "jupyter_remote"


@pytest.fixture
def jp_server_config(registry_path):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_remote.server": True},
            "authorizer_class": DenyRemote,
        }
    }


@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", ("templates",), None),
        ("GET", ("clusters",), None),
        ("POST", ("clusters",), {"template": "local"}),
        ("GET", ("clusters", "lab-1"), None),
        ("PATCH", ("clusters", "lab-1"), {"workers": 1}),
        ("DELETE", ("clusters", "lab-1"), None),
        ("DELETE", ("clusters", "lab-1", "calls", "abc"), None),
    ],
)
async def test_an_authenticated_but_unauthorized_user_is_refused(api, method, parts, body):
    code, _ = await api(method, *parts, body=body)
    assert code == 403
