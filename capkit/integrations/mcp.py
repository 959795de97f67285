"""The official MCP SDK (``mcp>=2.3,<3``): server middleware and client helpers.

Server::

    from mcp.server.mcpserver import MCPServer
    server = MCPServer("bank")
    protect(server, verifier, audience="bank-mcp")     # or middleware=[CapkitMiddleware(..., server=server)]

Every request except the handshake (``initialize``, ``ping``,
``server/discover``, ``logging/setLevel``) and notifications must carry
``params._meta["dev.capkit/credentials"] = {"token": ..., "proof": ...}``
(specs/SPEC.md §18.1). What each request is authorized as:

* ``tools/call``: the tool ``params.name`` with ``params.arguments``;
* every other method (``resources/read``, ``prompts/get``,
  ``completion/complete``, ``resources/subscribe``, and whatever the SDK adds):
  the tool ``mcp:METHOD`` with the request's params (without ``_meta``) as its
  arguments, so a grant states them like any tool:
  ``Tools("mcp:resources/read")``, ``Prefix("uri", "bank://statements/")``;
* listings (``tools/list``, ``resources/list``, ``resources/templates/list``,
  ``prompts/list``) that carry credentials: the token, holder proof, time and
  audience are checked (``Verifier.authorize_listing``) and the result shows
  only what the token grants. A listing without credentials shows everything
  (it grants nothing: every call needs a token; hosts list before they call)
  unless the middleware is built with ``anonymous_listings=False``.

The arguments decided on are the arguments the handler receives: the
middleware runs the server's own validation of the request and refuses
(``INVALID_PARAMS``) one it would transform (a JSON string parsed into a
list, ``"5"`` coerced to 5), since nobody authorized the transformed value.

* no token, or a credentials entry that is not a token: a protocol error with
  code ``TOKEN_MISSING`` (4401) or ``TOKEN_MALFORMED`` (4400);
* a policy denial of a tool call: a tool error result whose text lists every
  reason (what a model can act on; never a secret), with the decision under
  ``_meta["dev.capkit/decision"]``; of any other request: protocol error
  ``DENIED`` (4403) carrying the same decision;
* allowed: capkit's ``_meta`` entries are removed before the handler sees the
  request; the call's reservation is committed once it finishes, whatever
  its outcome, unless the result's ``_meta["dev.capkit/outcome"]`` is
  ``"nothing_spent"`` (then its budget room is given back).

Client: ``await call_tool(client, "transfer", args, credentials)`` sends the
token and a fresh proof computed over exactly ``args``; ``await
list_tools(client, credentials)`` lists what the token grants.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from ..core.caveats import Call
from ..core.codes import Code
from ..core.errors import CapkitError, MalformedToken
from ..core.invocation import Invocation
from ..core.token.token import Token
from ..core.verifier import VerifiedToken, Verifier
from ._boundary import (
    authorize_async,
    denial_text,
    in_thread,
    run_allowed,
    store_does_io,
    transformed_arguments,
)
from .credentials import APPROVAL_META, DECISION_META, META_KEY, META_PREFIX, NOTHING_SPENT, OUTCOME_META, Credentials

#: Application error codes (JSON-RPC reserves -32768..-32000; MCP uses that range too).
TOKEN_MISSING = 4401
TOKEN_MALFORMED = 4400
DENIED = 4403
INVALID_PARAMS = -32602
#: Requests that reach no server data or action: the handshake and liveness.
PASS_THROUGH = frozenset({"initialize", "ping", "server/discover", "logging/setLevel"})
#: Listings, and the key of the items each lists.
LISTINGS = {"tools/list": "tools", "resources/list": "resources", "resources/templates/list": "resourceTemplates",
            "prompts/list": "prompts"}
#: The tool name a non-tool request is authorized as.
METHOD_TOOL_PREFIX = "mcp:"
_LEGACY_META_KEY = "capkit"


def method_tool(method: str) -> str:
    """The tool name a request of ``method`` is authorized as: ``mcp:resources/read``."""
    return METHOD_TOOL_PREFIX + method


def read_credentials(meta: object, verifier: Verifier | None = None) -> tuple[str, str | None, tuple[str, ...]]:
    """The token, proof and discharges in a request's ``_meta``; raise ``MCPError`` for a missing or malformed entry.

    With a ``verifier`` the token's form is checked through its verified-chain
    cache (a token seen before costs nothing); without one it is parsed.
    """
    entry = meta.get(META_KEY) if isinstance(meta, Mapping) else None
    if entry is None:
        hint = ""
        if isinstance(meta, Mapping) and _LEGACY_META_KEY in meta:
            hint = f" (the key is now {META_KEY!r}, not {_LEGACY_META_KEY!r})"
        raise MCPError(code=TOKEN_MISSING, message=f"this server requires a capkit token in _meta[{META_KEY!r}]"
                                                   + hint)
    discharges = entry.get("discharges", []) if isinstance(entry, Mapping) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("token"), str) or not (
            entry.get("proof") is None or isinstance(entry.get("proof"), str)) or \
            set(entry) - {"token", "proof", "discharges"} or not isinstance(discharges, list) or \
            not all(isinstance(d, str) for d in discharges):
        raise MCPError(code=TOKEN_MALFORMED,
                       message=f"_meta[{META_KEY!r}] must be an object with a token (text), an optional proof (text) "
                               "and optional discharges (a list of text)")
    check_token_form(entry["token"], verifier)
    return entry["token"], entry.get("proof"), tuple(discharges)


def check_token_form(token: str, verifier: Verifier | None = None) -> None:
    """Raise ``MCPError`` (``TOKEN_MALFORMED``) for token text that is not a token; a well-formed token that does
    not verify here (unknown key, bad signature) passes: ``authorize`` denies it with its reasons."""
    try:
        if verifier is None:
            Token.parse(token)
        else:
            verifier.verify_chain(token)  # cached: a token seen before costs nothing
    except MalformedToken as exc:
        raise MCPError(code=TOKEN_MALFORMED, message=f"the capkit token is malformed: {exc.message}") from None
    except CapkitError:
        pass


def _has_credentials(meta: object) -> bool:
    return isinstance(meta, Mapping) and (META_KEY in meta or _LEGACY_META_KEY in meta)


def without_credentials(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``meta`` without capkit's entries (what the handler may see)."""
    if meta is None:
        return None
    return {k: v for k, v in meta.items() if not (isinstance(k, str) and (k.startswith(META_PREFIX)
                                                                         or k == _LEGACY_META_KEY))}


APPROVAL_SENTENCE = ("this call needs the person's approval; it has been requested. Wait for the approval, "
                     "then make the same call again.")


def denial_result(decision: Any) -> CallToolResult:
    """The tool error result of a policy denial (with the approval request when approval is all it lacks)."""
    meta: dict[str, Any] = {DECISION_META: decision.to_json()}
    text = denial_text(decision)
    if getattr(decision, "approval", None) is not None:
        meta[APPROVAL_META] = decision.approval.to_json()
        text = APPROVAL_SENTENCE + " (" + text + ")"
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)


def denial_error(decision: Any) -> MCPError:
    """The protocol error of a denied request that is not a tool call."""
    return MCPError(code=DENIED, message=denial_text(decision), data={DECISION_META: decision.to_json()})


def nothing_spent(result: Any) -> bool:
    """True if a tool result says, in its ``_meta``, that the call spent nothing."""
    if isinstance(result, Mapping):
        meta = result.get("_meta") or result.get("meta")
    else:
        meta = getattr(result, "meta", None)
    return isinstance(meta, Mapping) and meta.get(OUTCOME_META) == NOTHING_SPENT


def _arguments_of(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "_meta"}


def request_invocation(method: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(tool, arguments) the MCP request ``method`` with ``params`` is decided as (SPEC §18.1): ``tools/call`` is
    its tool and arguments (None when they are not a name and an object); a listing is ``mcp:METHOD`` with no
    arguments; any other method is ``mcp:METHOD`` with its params without ``_meta``. Servers, the gateway and
    clients all use this one mapping, so a proof covers what is decided."""
    if method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments") or {}
        return (name, dict(arguments)) if isinstance(name, str) and isinstance(arguments, Mapping) else None
    return method_tool(method), ({} if method in LISTINGS else _arguments_of(params))


class CapkitMiddleware:
    """Server middleware: authorize every request that reaches data or actions (see the module docstring).

    ``server`` is the ``MCPServer`` (or low-level ``Server``) it protects: its
    own validation is what tells which arguments a handler receives. Without
    it every request that has params is refused (the middleware cannot know).
    """

    def __init__(self, verifier: Verifier, *, audience: str | None = None, server: Any = None,
                 anonymous_listings: bool = True) -> None:
        if not isinstance(verifier, Verifier):
            raise CapkitError("CapkitMiddleware needs a capkit Verifier")
        self.verifier = verifier
        self.audience = audience
        self.server = server
        self.anonymous_listings = anonymous_listings

    # ------------------------------------------------------------ what runs

    def _lowlevel(self) -> Any:
        server = self.server
        return getattr(server, "_lowlevel_server", server)

    def _transformed(self, method: str, params: Mapping[str, Any]) -> list[str] | None:
        """Names of the arguments the handler would receive transformed; None if that cannot be known."""
        server = self.server
        if server is None:
            return None
        if method == "tools/call":
            arguments = params.get("arguments") or {}
            if not isinstance(arguments, Mapping):
                return ["arguments"]
            manager = getattr(server, "_tool_manager", None)
            if manager is None:  # a low-level server: handlers receive the arguments as sent
                return []
            tool = manager.get_tool(params.get("name"))
            if tool is None:
                return []  # the server answers "unknown tool" without running anything
            try:
                validated = tool.fn_metadata.validate_arguments(dict(arguments))
            except Exception:
                return []  # the server refuses these arguments itself; nothing runs
            return transformed_arguments(arguments, validated)
        lowlevel = self._lowlevel()
        entry = lowlevel.get_request_handler(method) if hasattr(lowlevel, "get_request_handler") else None
        if entry is None:
            return []  # method not found: the server runs nothing
        try:
            typed = entry.params_type.model_validate(dict(params), by_name=False)
        except Exception:
            return []  # invalid params: the server refuses them itself
        seen = typed.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return transformed_arguments(_arguments_of(params), _arguments_of(seen))

    async def _decide(self, token: str, invocation: Invocation, proof: str | None, *, listing: bool,
                      discharges: tuple[str, ...] = ()) -> Any:
        if not listing:
            return await authorize_async(self.verifier, token, invocation, proof, discharges)
        if store_does_io(self.verifier):
            return await in_thread(self.verifier.authorize_listing, token, invocation, proof)
        return self.verifier.authorize_listing(token, invocation, proof)

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        method = ctx.method
        if ctx.request_id is None and not (isinstance(method, str) and method.startswith("notifications/")):
            return None  # a "notification" named like a request (tools/call without an id) runs nothing
        if ctx.request_id is None or method in PASS_THROUGH:  # notifications and the handshake
            return await call_next(ctx)
        params = dict(ctx.params or {})
        listing = method in LISTINGS
        if listing and self.anonymous_listings and not _has_credentials(params.get("_meta")):
            return await call_next(ctx)
        token, proof, discharges = read_credentials(params.get("_meta"), self.verifier)
        call = request_invocation(method, params)
        if call is None:  # tools/call with a name or arguments of the wrong type: the verifier denies it
            call = ("", params.get("arguments") or {})
        invocation = Invocation(call[0], call[1], self.audience)
        changed = self._transformed(method, params)
        if changed is None:
            raise MCPError(code=INVALID_PARAMS, message="capkit cannot tell which arguments this server's handler "
                                                       "receives: build the middleware with server=..., or use "
                                                       "capkit.integrations.mcp.protect(server, verifier)")
        if changed:
            raise MCPError(code=INVALID_PARAMS,
                           message=f"capkit refuses argument(s) {', '.join(changed)}: the server would hand the tool "
                                   "other values than the call holds (send them in the form the tool receives)")
        decision = await self._decide(token, invocation, proof, listing=listing, discharges=discharges)
        if not decision.allowed:
            if method == "tools/call":
                return denial_result(decision)
            raise denial_error(decision)
        params["_meta"] = without_credentials(params.get("_meta"))
        stripped = dataclasses.replace(ctx, params=params, meta=without_credentials(ctx.meta))
        if listing:
            result = await call_next(stripped)
            return self._filtered(method, result, token)
        return await run_allowed(self.verifier, decision, lambda: call_next(stripped),
                                 nothing_spent=nothing_spent)

    # --------------------------------------------------------------- listings

    def _filtered(self, method: str, result: Any, token: str) -> Any:
        """A listing result with only the items the token grants."""
        return filtered_listing(self.verifier.verify_chain(token), self.audience, method, result)


def filtered_listing(verified: VerifiedToken, audience: str | None, method: str, result: Any) -> Any:
    """A listing result (a dict, or the SDK's result model) with only the items ``verified`` grants."""
    key = LISTINGS[method]
    if isinstance(result, Mapping):
        items = result.get(key)
        if not isinstance(items, list):
            return result
        return {**result, key: [item for item in items if _visible(verified, audience, method, item)]}
    attribute = {"tools": "tools", "resources": "resources", "resourceTemplates": "resource_templates",
                 "prompts": "prompts"}[key]
    items = getattr(result, attribute, None)
    if not isinstance(items, list) or not hasattr(result, "model_copy"):
        return result
    kept = [item for item in items if _visible(verified, audience, method, item)]
    return result.model_copy(update={attribute: kept})


def _visible(verified: VerifiedToken, audience: str | None, method: str, item: Any) -> bool:
    def field(name: str) -> Any:
        return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)

    if method == "tools/list":
        name = field("name")
        return isinstance(name, str) and verified.grants_tool(name)
    if method == "resources/templates/list":
        return verified.grants_tool(method_tool("resources/read"))
    if method == "resources/list":
        tool, args = method_tool("resources/read"), {"uri": str(field("uri"))}
    else:
        tool, args = method_tool("prompts/get"), {"name": field("name")}
    if not verified.grants_tool(tool):
        return False
    failures = verified.check(Call(tool, args, audience, time.time()))
    return all(f.code == Code.ARG_MISSING for f in failures) if method == "prompts/list" else not failures


def protect(server: Any, verifier: Verifier, *, audience: str | None = None,
            anonymous_listings: bool = True) -> CapkitMiddleware:
    """Put capkit in front of every request ``server`` (an ``MCPServer`` or low-level ``Server``) handles."""
    middleware = CapkitMiddleware(verifier, audience=audience, server=server, anonymous_listings=anonymous_listings)
    server.middleware.append(middleware)
    return middleware


async def call_tool(client: Any, name: str, arguments: dict[str, Any], credentials: Credentials,
                    *, on_approval: Any = None, **kwargs: Any) -> Any:
    """Call ``name`` through an MCP ``Client``, ``ClientSession`` or ``fastmcp.Client`` with the token and a fresh proof.

    ``on_approval``: when the call is denied only for lack of approval, ``await on_approval(request)`` (the
    request's JSON) for a discharge (e.g. polled from ``capkit approval-server``), then the call is made once
    more with it. A None discharge (refused, timed out) returns the denial.
    """
    extra = kwargs.pop("meta", {})
    result = await client.call_tool(name, arguments, meta={**extra, **credentials.meta(name, arguments)}, **kwargs)
    request = approval_request_of(result)
    if request is None or on_approval is None:
        return result
    discharge = await on_approval(request)
    if discharge is None:
        return result
    approved = credentials.approved(discharge)
    return await client.call_tool(name, arguments, meta={**extra, **approved.meta(name, arguments)}, **kwargs)


def approval_request_of(result: Any) -> "dict[str, Any] | None":
    """The approval request a tool error result carries (a denial for lack of approval), or None."""
    meta = result.get("_meta") if isinstance(result, Mapping) else getattr(result, "meta", None)
    request = meta.get(APPROVAL_META) if isinstance(meta, Mapping) else None
    return request if isinstance(request, dict) else None


async def list_tools(client: Any, credentials: Credentials, **kwargs: Any) -> Any:
    """List the tools the token grants, through an MCP ``Client`` (the listing carries the token and a proof)."""
    meta = {**kwargs.pop("meta", {}), **credentials.meta(method_tool("tools/list"), {})}
    return await client.list_tools(meta=meta, **kwargs)


async def read_resource(client: Any, uri: str, credentials: Credentials, **kwargs: Any) -> Any:
    """Read a resource through an MCP ``Client`` with the token and a proof over ``{"uri": uri}``."""
    meta = {**kwargs.pop("meta", {}), **credentials.meta(method_tool("resources/read"), {"uri": uri})}
    return await client.read_resource(uri, meta=meta, **kwargs)
