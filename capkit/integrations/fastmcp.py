"""The ``fastmcp`` package (``fastmcp>=4.2,<5``): the same boundary as ``capkit.integrations.mcp``.

    from fastmcp import FastMCP
    server = FastMCP("bank", strict_input_validation=True,
                     middleware=[CapkitFastMCPMiddleware(verifier, audience="bank-mcp")])

Every request except the handshake is authorized, as in
``capkit.integrations.mcp``: tool calls as their tool, ``resources/read`` and
``prompts/get`` (and every other method) as ``mcp:METHOD`` with their params,
listings by ``Verifier.authorize_listing`` and then filtered to what the token
grants. The token and proof are read from the request's ``_meta`` and removed
before any handler runs.

FastMCP validates tool arguments after middleware runs; in its default lax
mode that validation may transform a value (``"5"`` into 5, a JSON string into
a list) that nobody authorized. The middleware therefore refuses tool calls
unless the server validates strictly (``strict_input_validation=True``).
Resource URIs and prompt names are authorized as FastMCP parsed them (so a
proof made over a different spelling does not verify).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import Middleware
from mcp.shared.exceptions import MCPError

from ..core.caveats import Call
from ..core.codes import Code
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ._boundary import authorize_async, denial_text, in_thread, run_allowed, store_does_io
from .credentials import META_KEY
from .mcp import (
    DENIED,
    INVALID_PARAMS,
    PASS_THROUGH,
    TOKEN_MALFORMED,
    TOKEN_MISSING,
    call_tool,
    denial_error,
    method_tool,
    nothing_spent,
    read_credentials,
    without_credentials,
)

__all__ = ["DENIED", "TOKEN_MALFORMED", "TOKEN_MISSING", "CapkitFastMCPMiddleware", "call_tool"]

_TYPED = frozenset({"tools/call", "resources/read", "prompts/get", "tools/list", "resources/list",
                    "resources/templates/list", "prompts/list"})


def _request_of(context: Any) -> Any:
    return context.fastmcp_context.request_context if context.fastmcp_context is not None else None


def _strip(request: Any) -> None:
    """Remove capkit's entries from the request's ``_meta`` (what handlers see)."""
    if request is None:
        return
    for holder in (request, getattr(request, "_srctx", None)):
        meta = getattr(holder, "meta", None)
        if isinstance(meta, dict):
            kept = without_credentials(meta) or {}
            meta.clear()
            meta.update(kept)
        params = getattr(holder, "params", None)
        if isinstance(params, dict) and isinstance(params.get("_meta"), dict):
            kept = without_credentials(params["_meta"]) or {}
            params["_meta"].clear()
            params["_meta"].update(kept)


def _params(message: Any) -> dict[str, Any]:
    if hasattr(message, "model_dump"):
        data = message.model_dump(mode="json", by_alias=True, exclude_unset=True)
    elif isinstance(message, Mapping):
        data = dict(message)
    else:
        data = {}
    params = data.get("params", data) if isinstance(data.get("params"), Mapping) else data
    return {k: v for k, v in params.items() if k not in ("_meta", "method")}


class CapkitFastMCPMiddleware(Middleware):
    """Authorize every request of a FastMCP server (see the module docstring)."""

    def __init__(self, verifier: Verifier, *, audience: str | None = None, anonymous_listings: bool = True) -> None:
        self.verifier = verifier
        self.audience = audience
        self.anonymous_listings = anonymous_listings

    def _credentials(self, context: Any) -> tuple[str, str | None, tuple[str, ...]]:
        request = _request_of(context)
        return read_credentials(None if request is None else request.meta, self.verifier)

    async def _listing(self, token: str, tool: str, proof: str | None) -> Any:
        invocation = Invocation(tool, {}, self.audience)
        if store_does_io(self.verifier):
            return await in_thread(self.verifier.authorize_listing, token, invocation, proof)
        return self.verifier.authorize_listing(token, invocation, proof)

    # ------------------------------------------------------------------ calls

    async def on_request(self, context: Any, call_next: Any) -> Any:
        method = context.method
        if method in PASS_THROUGH or method in _TYPED:
            return await call_next(context)
        token, proof, discharges = self._credentials(context)
        invocation = Invocation(method_tool(method or ""), _params(context.message), self.audience)
        decision = await authorize_async(self.verifier, token, invocation, proof, discharges)
        if not decision.allowed:
            raise denial_error(decision)
        _strip(_request_of(context))
        return await run_allowed(self.verifier, decision, lambda: call_next(context))

    async def on_call_tool(self, context: Any, call_next: Any) -> Any:
        token, proof, discharges = self._credentials(context)
        server = context.fastmcp_context.fastmcp if context.fastmcp_context is not None else None
        if server is None or not getattr(server, "strict_input_validation", False):
            raise MCPError(code=INVALID_PARAMS, message="capkit refuses tool calls on a FastMCP server that "
                                                       "validates laxly: lax validation may hand the tool other "
                                                       "values than were authorized; build it with "
                                                       "FastMCP(..., strict_input_validation=True)")
        message = context.message
        invocation = Invocation(message.name, dict(message.arguments or {}), self.audience)
        decision = await authorize_async(self.verifier, token, invocation, proof, discharges)
        if not decision.allowed:
            raise ToolError(denial_text(decision))
        _strip(_request_of(context))
        return await run_allowed(self.verifier, decision, lambda: call_next(context), nothing_spent=nothing_spent)

    async def on_read_resource(self, context: Any, call_next: Any) -> Any:
        token, proof, discharges = self._credentials(context)
        invocation = Invocation(method_tool("resources/read"), {"uri": str(context.message.uri)}, self.audience)
        decision = await authorize_async(self.verifier, token, invocation, proof, discharges)
        if not decision.allowed:
            raise denial_error(decision)
        _strip(_request_of(context))
        return await run_allowed(self.verifier, decision, lambda: call_next(context))

    async def on_get_prompt(self, context: Any, call_next: Any) -> Any:
        token, proof, discharges = self._credentials(context)
        args: dict[str, Any] = {"name": context.message.name}
        if context.message.arguments is not None:
            args["arguments"] = dict(context.message.arguments)
        decision = await authorize_async(self.verifier, token, Invocation(method_tool("prompts/get"), args,
                                                                          self.audience), proof, discharges)
        if not decision.allowed:
            raise denial_error(decision)
        _strip(_request_of(context))
        return await run_allowed(self.verifier, decision, lambda: call_next(context))

    # --------------------------------------------------------------- listings

    async def _list(self, context: Any, call_next: Any, method: str, visible: Any) -> Any:
        request = _request_of(context)
        meta = None if request is None else request.meta
        if self.anonymous_listings and not (isinstance(meta, Mapping) and META_KEY in meta):
            return await call_next(context)  # a listing grants nothing; every call needs a token
        token, proof, discharges = self._credentials(context)
        decision = await self._listing(token, method_tool(method), proof)
        if not decision.allowed:
            raise denial_error(decision)
        _strip(_request_of(context))
        verified = self.verifier.verify_chain(token)
        return [item for item in await call_next(context) if visible(verified, item)]

    def _admits(self, verified: Any, tool: str, args: dict[str, Any], *, missing_ok: bool) -> bool:
        if not verified.grants_tool(tool):
            return False
        failures = verified.check(Call(tool, args, self.audience, time.time()))
        return all(f.code == Code.ARG_MISSING for f in failures) if missing_ok else not failures

    async def on_list_tools(self, context: Any, call_next: Any) -> Any:
        return await self._list(context, call_next, "tools/list", lambda v, t: v.grants_tool(t.name))

    async def on_list_resources(self, context: Any, call_next: Any) -> Any:
        return await self._list(context, call_next, "resources/list", lambda v, r: self._admits(
            v, method_tool("resources/read"), {"uri": str(r.uri)}, missing_ok=False))

    async def on_list_resource_templates(self, context: Any, call_next: Any) -> Any:
        return await self._list(context, call_next, "resources/templates/list",
                                lambda v, t: v.grants_tool(method_tool("resources/read")))

    async def on_list_prompts(self, context: Any, call_next: Any) -> Any:
        return await self._list(context, call_next, "prompts/list", lambda v, p: self._admits(
            v, method_tool("prompts/get"), {"name": p.name}, missing_ok=True))

