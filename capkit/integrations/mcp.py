"""The official MCP SDK (``mcp>=2.3,<3``): server middleware and a client helper.

Server::

    from mcp.server.mcpserver import MCPServer
    server = MCPServer("bank", middleware=[CapkitMiddleware(verifier, audience="bank-mcp")])

Every ``tools/call`` must carry ``params._meta.capkit = {"token": ..., "proof": ...}``.
The middleware builds the invocation from the tool name, its arguments and
the server's audience, asks the verifier, and then:

* no token, or a ``capkit`` entry that is not a token: a protocol error with
  code ``TOKEN_MISSING`` (4401) or ``TOKEN_MALFORMED`` (4400), outside the
  JSON-RPC and MCP reserved ranges;
* a policy denial: a tool error result whose text lists every reason (what a
  model can act on; never a secret), with the decision under ``_meta.capkit``;
* allowed: the ``capkit`` entry is removed from the request before the tool
  sees it; the tool runs; its reservation is committed, or released if the
  tool failed (an error result or an exception).

Client: ``await call_tool(client, "transfer", args, credentials)`` sends the
token and a fresh proof computed over exactly ``args``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from ..errors import CapkitError, MalformedToken
from ..invocation import Invocation
from ..token import Token
from ..verifier import Verifier
from ._boundary import authorize_async, denial_text, run_allowed
from .credentials import META_KEY, Credentials

#: Application error codes (JSON-RPC reserves -32768..-32000; MCP uses that range too).
TOKEN_MISSING = 4401
TOKEN_MALFORMED = 4400


def read_credentials(meta: object, verifier: Verifier | None = None) -> tuple[str, str | None]:
    """The token and proof in a request's ``_meta``; raise ``MCPError`` for a missing or malformed entry.

    With a ``verifier`` the token's form is checked through its verified-chain
    cache (a token seen before costs nothing); without one it is parsed.
    """
    entry = meta.get(META_KEY) if isinstance(meta, Mapping) else None
    if entry is None:
        raise MCPError(code=TOKEN_MISSING, message="this tool requires a capkit token in _meta.capkit")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("token"), str) or not (
            entry.get("proof") is None or isinstance(entry.get("proof"), str)) or set(entry) - {"token", "proof"}:
        raise MCPError(code=TOKEN_MALFORMED,
                       message="_meta.capkit must be an object with a token (text) and an optional proof (text)")
    try:
        if verifier is None:
            Token.parse(entry["token"])
        else:
            verifier.verify_chain(entry["token"])
    except MalformedToken as exc:
        raise MCPError(code=TOKEN_MALFORMED, message=f"the capkit token is malformed: {exc.message}") from None
    except CapkitError:
        pass  # well-formed but not verifiable here (unknown key, bad signature): authorize denies it
    return entry["token"], entry.get("proof")


def without_credentials(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``meta`` without the capkit entry (what the tool may see)."""
    if meta is None:
        return None
    return {k: v for k, v in meta.items() if k != META_KEY}


def denial_result(decision: Any) -> CallToolResult:
    """The tool error result of a policy denial."""
    return CallToolResult(content=[TextContent(type="text", text=denial_text(decision))], is_error=True,
                          _meta={META_KEY: {"denied": decision.to_json()}})


def _failed(result: Any) -> bool:
    if isinstance(result, Mapping):
        return bool(result.get("isError") or result.get("is_error"))
    return bool(getattr(result, "is_error", False))


class CapkitMiddleware:
    """Server middleware: authorize every ``tools/call`` (see the module docstring)."""

    def __init__(self, verifier: Verifier, *, audience: str | None = None) -> None:
        self.verifier = verifier
        self.audience = audience

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = dict(ctx.params or {})
        token, proof = read_credentials(params.get("_meta"), self.verifier)
        arguments = params.get("arguments") or {}
        invocation = Invocation(params.get("name"), arguments, self.audience)  # type: ignore[arg-type]
        decision = await authorize_async(self.verifier, token, invocation, proof)
        if not decision.allowed:
            return denial_result(decision)
        params["_meta"] = without_credentials(params.get("_meta"))
        stripped = dataclasses.replace(ctx, params=params, meta=without_credentials(ctx.meta))
        return await run_allowed(self.verifier, decision, lambda: call_next(stripped),
                                 succeeded=lambda result: not _failed(result))


async def call_tool(client: Any, name: str, arguments: dict[str, Any], credentials: Credentials,
                    **kwargs: Any) -> Any:
    """Call ``name`` through an MCP ``Client``, ``ClientSession`` or ``fastmcp.Client`` with the token and a fresh proof."""
    meta = {**kwargs.pop("meta", {}), **credentials.meta(name, arguments)}
    return await client.call_tool(name, arguments, meta=meta, **kwargs)
