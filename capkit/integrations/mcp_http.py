"""Capkit credentials on each HTTP request of an MCP client over streamable HTTP.

For a server that reads credentials from headers (``capkit gateway --listen``
without a token of its own): pass ``CapkitHttpAuth(credentials)`` as the
``auth`` of the ``httpx2.AsyncClient`` given to the SDK's
``streamable_http_client``. Every POST that carries a JSON-RPC request gets
``Authorization: Capkit <token>``, a ``Capkit-Proof`` over exactly the call
the body holds (the tool and arguments of a ``tools/call``; ``mcp:METHOD``
with the other parameters for any other method, none for a listing), and
``Capkit-Discharge`` when there are approvals. Other requests (the SSE
``GET``, the session ``DELETE``) get the ``Authorization`` header only.

    auth = CapkitHttpAuth(Credentials(token, agent_key))
    async with httpx2.AsyncClient(auth=auth) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            ...
"""

from __future__ import annotations

import json
from typing import Any, Generator

import httpx2

from .asgi import SCHEME
from .credentials import Credentials
from .mcp import PASS_THROUGH, request_invocation

__all__ = ["CapkitHttpAuth", "invocation_of"]


def invocation_of(message: Any) -> tuple[str, dict[str, Any]] | None:
    """(tool, arguments) a JSON-RPC request is authorized as (``mcp.request_invocation``), or None for what is not
    decided (the handshake, pings, notifications, answers, anything malformed: the server refuses that itself)."""
    if not isinstance(message, dict) or "id" not in message or not isinstance(message.get("method"), str):
        return None
    params = message.get("params") or {}
    if message["method"] in PASS_THROUGH or not isinstance(params, dict):
        return None
    return request_invocation(message["method"], params)


class CapkitHttpAuth(httpx2.Auth):
    """An ``httpx2`` auth flow that signs every MCP request it sends (see the module docstring)."""

    requires_request_body = True

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"{SCHEME} {self.credentials.token_text}"
        if request.method == "POST" and request.content:
            try:
                message = json.loads(request.content)
            except ValueError:
                message = None
            call = invocation_of(message)
            if call is not None:
                _, proof = self.credentials.present(*call)
                if proof is not None:
                    request.headers["Capkit-Proof"] = proof
                if self.credentials.discharges:
                    request.headers["Capkit-Discharge"] = ", ".join(self.credentials.discharges)
        yield request
