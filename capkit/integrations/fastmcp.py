"""The ``fastmcp`` package (``fastmcp>=4.2,<5``): the same boundary as ``capkit.integrations.mcp``.

    from fastmcp import FastMCP
    server = FastMCP("bank", middleware=[CapkitFastMCPMiddleware(verifier, audience="bank-mcp")])

``Middleware.on_call_tool`` sees the tool name and arguments in the message;
the request's ``_meta`` is reachable from the request context, where the
token and proof are read and then removed before the tool runs. A missing or
malformed token is a protocol error (codes 4401 / 4400); a policy denial is a
tool error (``ToolError``) whose text lists every reason.

Client: ``await call_tool(client, "transfer", args, credentials)`` with a
``fastmcp.Client``.
"""

from __future__ import annotations

from typing import Any

from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import Middleware

from ..invocation import Invocation
from ..verifier import Verifier
from ._boundary import authorize_async, denial_text, run_allowed
from .credentials import META_KEY
from .mcp import TOKEN_MALFORMED, TOKEN_MISSING, call_tool, read_credentials  # call_tool serves fastmcp.Client too

__all__ = ["TOKEN_MALFORMED", "TOKEN_MISSING", "CapkitFastMCPMiddleware", "call_tool"]


def _strip(meta: Any) -> None:
    if isinstance(meta, dict):
        meta.pop(META_KEY, None)


class CapkitFastMCPMiddleware(Middleware):
    """Authorize every tool call of a FastMCP server (see the module docstring)."""

    def __init__(self, verifier: Verifier, *, audience: str | None = None) -> None:
        self.verifier = verifier
        self.audience = audience

    async def on_call_tool(self, context: Any, call_next: Any) -> Any:
        request = context.fastmcp_context.request_context if context.fastmcp_context is not None else None
        meta = None if request is None else request.meta
        token, proof = read_credentials(meta, self.verifier)
        message = context.message
        invocation = Invocation(message.name, dict(message.arguments or {}), self.audience)
        decision = await authorize_async(self.verifier, token, invocation, proof)
        if not decision.allowed:
            raise ToolError(denial_text(decision))
        # What the tool sees: the request without the token and proof.
        _strip(meta)
        raw = getattr(request, "_srctx", None)
        if raw is not None and isinstance(getattr(raw, "params", None), dict):
            _strip(raw.params.get("_meta"))
        return await run_allowed(self.verifier, decision, lambda: call_next(context),
                                 succeeded=lambda result: not getattr(result, "is_error", False))

