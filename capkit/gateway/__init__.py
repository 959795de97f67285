"""``Gateway``: least privilege in front of an unmodified MCP server, for an unmodified MCP host.

The gateway sits between a host (stdio, or streamable HTTP) and an upstream
server (a child process over stdio, or a URL) and relays JSON-RPC messages
(built on the official MCP SDK's transports). Every request that reaches data
or actions is decided by ``Verifier.authorize`` before the upstream sees it:

* ``tools/call``: denied calls never reach the upstream; the host gets a tool
  error result listing the reasons (and, for ``approval_required``, the
  approval request), which the model can act on. An allowed call is forwarded
  exactly as it was authorized (capkit's ``_meta`` entry removed); its
  reservation is committed when the upstream answers (released only if the
  result's ``_meta`` says nothing was spent), and committed if the upstream
  dies before answering (the host gets an error, never an allow);
* the other requests (resources, prompts, completions, subscriptions, any
  method) are decided as the tool ``mcp:METHOD``;
* listings are decided without arguments and show only what the token grants.

The handshake, pings, notifications (progress, cancellation) and the
upstream's own requests to the host (sampling, roots, elicitation) pass
through unchanged; upstream errors come back as they were.

Approvals: a call denied only for lack of an approval the gateway's
``approver`` key can give is, when the host supports MCP elicitation, put to
the person in the host's own UI (the exact call, ``approvals.describe``); a
yes approves exactly that call (a discharge for its digest, the token, a short
lifetime, once), which is retried with it and forwarded; a no, a timeout or a
host without elicitation leaves the denial (with the approval request).

Arguments are forwarded byte-for-value as authorized, and the gateway refuses
a call whose arguments do not have the JSON types the upstream's own tool
schema declares (learned from ``tools/list``, fetched if needed): a server that
coerced ``"5"`` into ``5`` or a JSON string into a list would run a call other
than the one authorized.

Credentials: the gateway holds a token (and the agent key it is bound to) on
behalf of a host that knows nothing of capkit, and signs each call's proof
itself; the model never sees either. Without them, each request must carry its
own: in ``_meta["dev.capkit/credentials"]``, or, over HTTP (``serve_listening``,
``capkit.gateway.http``), in its POST's ``Authorization: Capkit`` and
``Capkit-Proof`` headers; never both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from typing import Any, AsyncIterator, Callable, Mapping

from mcp.shared.exceptions import MCPError

from ..approvals import DEFAULT_LIFETIME, approve, describe
from ..core.decision import Decision
from ..core.errors import CapkitError, StoreUnavailable
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ..integrations._boundary import denial_text, settle
from ..integrations._schema import type_problem
from ..integrations.credentials import APPROVAL_META, DECISION_META, NOTHING_SPENT, OUTCOME_META, Credentials
from ..integrations.mcp import (
    APPROVAL_SENTENCE,
    DENIED,
    INVALID_PARAMS,
    LISTINGS,
    META_KEY,
    PASS_THROUGH,
    TOKEN_MALFORMED,
    check_token_form,
    filtered_listing,
    request_invocation,
    read_credentials,
    without_credentials,
)
from .http import header_credentials, serve_http
from .transports import MessageStream, SdkStream, child_process, own_stdio

__all__ = ["UPSTREAM_FAILED", "Gateway", "open_upstream", "serve", "serve_listening"]

_log = logging.getLogger("capkit.gateway")
#: The JSON-RPC error of a request the upstream never answered (it exited or broke the connection).
UPSTREAM_FAILED = -32603
_OWN_ID = "capkit-gateway-"
#: Methods without an id that pass through: MCP's notifications (progress, cancellation, initialized, ...).
NOTIFICATION_PREFIX = "notifications/"
#: Seconds the gateway waits for the person to answer an approval question in the host.
ASK_TIMEOUT = 300.0
#: How an approval question starts (the exact call follows).
APPROVAL_QUESTION = "capkit: this call needs your approval. Approve only if you asked for exactly this.\n\n"


def _is_request(message: Mapping[str, Any]) -> bool:
    return "method" in message and "id" in message


def _is_answer(message: Mapping[str, Any]) -> bool:
    return "method" not in message and "id" in message and ("result" in message or "error" in message)


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class Gateway:
    """Relays one host connection to one upstream connection, deciding every request (see the module docstring)."""

    def __init__(self, verifier: Verifier, *, credentials: Credentials | None = None,
                 audience: str | None = None, check_schemas: bool = True, approver: Any = None,
                 approval_lifetime: int = DEFAULT_LIFETIME, ask_timeout: float = ASK_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        if not isinstance(verifier, Verifier):
            raise CapkitError("the gateway needs a capkit Verifier")
        if credentials is not None and not isinstance(credentials, Credentials):
            raise CapkitError("the gateway's credentials are a capkit Credentials")
        if approver is not None and (credentials is None or not callable(getattr(approver, "unseal", None))):
            raise CapkitError("approving through the host needs the approver's AgentKey and credentials the gateway "
                              "holds (it signs the retried call)")
        self.verifier = verifier
        self.credentials = credentials
        self.approver = approver
        self.approval_lifetime = approval_lifetime
        self.ask_timeout = ask_timeout
        self._clock = clock
        self._host_elicits = False
        self._asking: dict[str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: host request id -> the task asking the person to approve that call
        self._held: dict[Any, asyncio.Task[None]] = {}
        self.audience = audience if audience is not None else (credentials.audience if credentials else None)
        self.check_schemas = check_schemas
        self._pending: dict[Any, tuple[str, Any]] = {}  # host request id -> (what, decision or listing)
        self._schemas: dict[str, Any] | None = None
        self._own: dict[str, tuple[asyncio.Event, list[Any]]] = {}
        self._ids = itertools.count(1)
        self._host: Any = None
        self._server: Any = None

    # -------------------------------------------------------------------- relay

    async def run(self, host: MessageStream, server: MessageStream) -> None:
        """Relay until either side closes."""
        self._host, self._server = host, server

        async def from_host() -> None:  # in order: the handshake must precede the rest
            async for message in host:
                await self._from_host(message)

        async def from_server() -> None:
            try:
                async for message in server:
                    await self._from_server(message)
            finally:
                await self._upstream_gone()

        tasks = [asyncio.ensure_future(from_host()), asyncio.ensure_future(from_server())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in [*tasks, *self._tasks]:
                task.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)

    async def _from_host(self, message: dict[str, Any]) -> None:
        if "method" in message and not (isinstance(message["method"], str) and (
                "id" in message or message["method"].startswith(NOTIFICATION_PREFIX))):
            # a request without an id (a "notification" named tools/call), or a method that is not a name: an
            # upstream that ran it would run a call nobody decided; it is dropped, never forwarded
            _log.warning("capkit gateway: dropped a message from the host that is neither a request with an id "
                         "nor a notification")
            return
        if "method" not in message and not _is_answer(message):
            return  # neither a request, a notification nor an answer: nothing to relay
        if not _is_request(message):
            asked = self._asking.pop(message["id"], None) if _is_answer(message) and isinstance(
                message["id"], str) else None
            if asked is not None:  # the host's answer to the gateway's own question (an approval)
                if not asked.done():
                    asked.set_result(message)
                return
            if _is_answer(message) and isinstance(message["id"], str) and message["id"].startswith(_OWN_ID):
                return  # a late answer to a question the gateway no longer asks (timed out, withdrawn)
            if message.get("method") == "notifications/cancelled":
                params = message.get("params")
                held = params.get("requestId") if isinstance(params, Mapping) else None
                if _hashable(held) and held in self._held:  # the host withdrew a call awaiting approval:
                    self._held.pop(held).cancel()             # it never runs, whatever is answered later
                    return
            await self._server.send(message)  # notifications, and the host's answers to the upstream's requests
            return
        if self._is_own_id(message["id"]):  # the upstream's answer would be taken for the gateway's own
            await self._host.send(_error(message["id"], INVALID_PARAMS, "this request id is in use by the gateway"))
            return
        if _hashable(message["id"]) and (message["id"] in self._pending or message["id"] in self._held):
            # two requests in flight under one id: which answer belongs to which (a call, or a listing to
            # filter) could not be told
            await self._host.send(_error(message["id"], INVALID_PARAMS, "a request with this id is still in flight"))
            return
        if message.get("method") == "initialize":
            params = message.get("params")
            capabilities = params.get("capabilities") if isinstance(params, Mapping) else None
            self._host_elicits = isinstance(capabilities, Mapping) and isinstance(capabilities.get("elicitation"),
                                                                                  Mapping)
        try:
            forwarded = await self._decide(message)
        except MCPError as exc:
            await self._host.send(_error(message["id"], exc.error.code, exc.error.message, exc.error.data))
            return
        except Exception:  # fail closed, never forward
            _log.exception("capkit gateway: a request could not be decided; it is refused")
            await self._host.send(_error(message["id"], DENIED, "capkit could not decide this request; it is refused"))
            return
        if forwarded is not None:
            try:
                await self._server.send(forwarded)
            except (ConnectionError, RuntimeError):
                await self._answer_lost(message["id"])

    async def _from_server(self, message: dict[str, Any]) -> None:
        if _is_request(message) and self._is_own_id(message["id"]):
            # the host's answer would be taken for the answer to the gateway's own question (an approval)
            await self._server.send(_error(message["id"], INVALID_PARAMS, "this request id is in use by the gateway"))
            return
        if _is_answer(message):
            request_id = message["id"]
            if isinstance(request_id, str) and request_id in self._own:
                event, box = self._own.pop(request_id)
                box.append(message)
                event.set()
                return
            entry = self._pending.pop(request_id, None) if _hashable(request_id) else None
            if entry is not None:
                what, detail = entry
                if what == "list" and "result" in message:
                    method, verified = detail
                    if method == "tools/list":
                        self._learn_schemas(message["result"])
                    message = {**message, "result": filtered_listing(verified, self.audience, method,
                                                                     message["result"])}
                elif what == "call":  # answer first, then settle (a lease that lapses counts as spent)
                    await self._host.send(message)
                    await self._settle(detail, not ("result" in message and _nothing_spent(message["result"])))
                    return
        await self._host.send(message)

    async def _upstream_gone(self) -> None:
        """The upstream ended: every request it had not answered gets an error (and its spend stands)."""
        for request_id in list(self._pending):
            await self._answer_lost(request_id)
        for event, _ in self._own.values():
            event.set()

    async def _answer_lost(self, request_id: Any) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is not None and entry[0] == "call":
            await self._settle(entry[1], True)  # the outcome is unknown: authority is not given back
        try:
            await self._host.send(_error(request_id, UPSTREAM_FAILED,
                                         "the upstream MCP server ended before answering this request"))
        except (ConnectionError, RuntimeError):
            pass

    async def _settle(self, decision: Decision, spent: bool) -> None:
        try:
            settle(self.verifier, decision, spent=spent)
        except (StoreUnavailable, CapkitError) as exc:
            _log.warning("capkit gateway: settling a call failed (%s); its reservation lapses as spent",
                         getattr(exc, "message", type(exc).__name__))

    # ------------------------------------------------------------------ deciding

    def _presented(self, request: Mapping[str, Any], tool: str, args: dict[str, Any],
                   meta: object) -> tuple[str, str | None, tuple[str, ...]]:
        """The credentials this request is decided with: the gateway's own, else the ones the client sent in
        its HTTP request's headers or in ``_meta`` (never both)."""
        if self.credentials is not None:
            token, proof = self.credentials.present(tool, args)
            return token, proof, self.credentials.discharges
        carried = getattr(request, "http_credentials", None)
        if carried is None:
            return read_credentials(meta, self.verifier)
        if isinstance(carried, str):
            raise MCPError(code=TOKEN_MALFORMED, message=carried)
        if isinstance(meta, Mapping) and META_KEY in meta:
            raise MCPError(code=TOKEN_MALFORMED, message="capkit credentials came both in the HTTP headers and in "
                                                        f"_meta[{META_KEY!r}]; send them one way")
        check_token_form(carried[0], self.verifier)
        return carried

    async def _decide(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The request to forward upstream, or None when the host has been answered already (a denial)."""
        method = request["method"]
        raw_params = request.get("params")
        if method in PASS_THROUGH:
            return request
        if raw_params is not None and not isinstance(raw_params, dict):
            raise MCPError(code=INVALID_PARAMS, message="params must be an object")
        if not _hashable(request["id"]):
            raise MCPError(code=INVALID_PARAMS, message="a request id is a string or a number")
        params = dict(raw_params or {})
        meta = params.get("_meta")
        if "_meta" in params:
            stripped = without_credentials(meta if isinstance(meta, Mapping) else None)
            if stripped:
                params["_meta"] = stripped
            else:
                del params["_meta"]
        # ``params`` only when the host sent them: a peer may refuse ``"params": null``
        forwarded = {k: v for k, v in request.items() if k != "params"}
        if raw_params is not None:
            forwarded["params"] = params
        call = request_invocation(method, params)
        if call is None:
            raise MCPError(code=INVALID_PARAMS, message="tools/call needs a tool name and an object of arguments")
        invocation = Invocation(call[0], call[1], self.audience)
        if method in LISTINGS:
            token, proof, _ = self._presented(request, invocation.tool, dict(invocation.args), meta)
            decision = self.verifier.authorize_listing(token, invocation, proof)
            if not decision.allowed:
                raise MCPError(code=DENIED, message=denial_text(decision), data={DECISION_META: decision.to_json()})
            self._pending[request["id"]] = ("list", (method, self.verifier.verify_chain(token)))
            return forwarded
        if method == "tools/call":
            problem = await self._schema_problem(*call)
            if problem is not None:
                raise MCPError(code=INVALID_PARAMS, message=f"capkit refuses this call: {problem} (the server would "
                                                           "receive other values than were authorized)")
        token, proof, discharges = self._presented(request, invocation.tool, dict(invocation.args), meta)
        # On the loop, not in a thread: one host session waits for this call anyway, and a thread hop per call
        # and per settlement costs more than a local store's work (bench/gateway.py).
        decision = self.verifier.authorize(token, invocation, proof, discharges)
        if not decision.allowed:
            if method == "tools/call" and self._can_ask(decision):
                task = asyncio.ensure_future(self._ask_then_forward(request["id"], forwarded, invocation, decision))
                self._held[request["id"]] = task
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return None
            if method == "tools/call":
                await self._host.send({"jsonrpc": "2.0", "id": request["id"], "result": _denial_result(decision)})
                return None
            raise MCPError(code=DENIED, message=denial_text(decision), data={DECISION_META: decision.to_json()})
        self._pending[request["id"]] = ("call", decision)
        return forwarded

    def _new_id(self) -> str:
        """An id for the gateway's own request: unguessable, so neither peer can answer in the other's name."""
        return f"{_OWN_ID}{next(self._ids)}-{secrets.token_urlsafe(12)}"

    def _is_own_id(self, request_id: Any) -> bool:
        return isinstance(request_id, str) and (request_id in self._asking or request_id in self._own)

    # ------------------------------------------------------------- approvals

    def _can_ask(self, decision: Decision) -> bool:
        """True when the only thing missing is an approval this gateway can obtain by asking the host's user."""
        return (self.approver is not None and self._host_elicits and decision.approval is not None
                and decision.codes == ("approval_required",)
                and any(t.approver == self.approver.public_key for t in decision.approval.tickets))

    async def _ask_then_forward(self, request_id: Any, forwarded: dict[str, Any], invocation: Invocation,
                                denied: Decision) -> None:
        """Ask the person, in the host's own UI (MCP elicitation), about exactly this call; on a yes, approve it
        with the approver's key, retry it with the discharge and forward it; otherwise answer the denial."""
        assert self.credentials is not None and denied.approval is not None
        try:
            await self._approve_then_forward(request_id, forwarded, invocation, denied)
        finally:
            self._held.pop(request_id, None)

    async def _approve_then_forward(self, request_id: Any, forwarded: dict[str, Any], invocation: Invocation,
                                    denied: Decision) -> None:
        assert self.credentials is not None and denied.approval is not None
        answer = await self._ask_host(APPROVAL_QUESTION + describe(denied.approval))
        result = answer.get("result") if isinstance(answer, Mapping) else None
        content = result.get("content") if isinstance(result, Mapping) else None
        if not (isinstance(result, Mapping) and result.get("action") == "accept" and isinstance(content, Mapping)
                and content.get("approve") is True):
            outcome = "declined" if isinstance(result, Mapping) else "not answered"
            await self._host.send({"jsonrpc": "2.0", "id": request_id,
                                   "result": _denial_result(denied, f"the person {outcome} the approval; ")})
            return
        try:
            discharge = approve(denied.approval, self.approver, now=self._clock(), lifetime=self.approval_lifetime)
        except CapkitError as exc:
            _log.warning("capkit gateway: the approval could not be issued: %s", exc.message)
            await self._host.send({"jsonrpc": "2.0", "id": request_id, "result": _denial_result(denied)})
            return
        approved = self.credentials.approved(discharge)
        token, proof = approved.present(invocation.tool, dict(invocation.args))
        decision = self.verifier.authorize(token, invocation, proof, approved.discharges)
        if not decision.allowed:
            await self._host.send({"jsonrpc": "2.0", "id": request_id, "result": _denial_result(decision)})
            return
        self._pending[request_id] = ("call", decision)
        try:
            await self._server.send(forwarded)
        except (ConnectionError, RuntimeError):
            await self._answer_lost(request_id)

    async def _ask_host(self, message: str) -> Any:
        """The host's answer to an ``elicitation/create`` form with one yes/no field, or None (timeout, gone)."""
        own_id = self._new_id()
        waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asking[own_id] = waiting
        await self._host.send({"jsonrpc": "2.0", "id": own_id, "method": "elicitation/create", "params": {
            "mode": "form", "message": message, "requestedSchema": {
                "type": "object", "required": ["approve"],
                "properties": {"approve": {"type": "boolean", "title": "Approve this exact call",
                                           "description": "Yes runs this call once, as shown; nothing else."}}}}})
        try:
            return await asyncio.wait_for(waiting, self.ask_timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._asking.pop(own_id, None)

    # --------------------------------------------------------------- schemas

    def _learn_schemas(self, result: Any) -> None:
        tools = result.get("tools") if isinstance(result, Mapping) else None
        if not isinstance(tools, list):
            return
        schemas = dict(self._schemas or {})
        for tool in tools:
            if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
                schemas[tool["name"]] = tool.get("inputSchema")
        self._schemas = schemas

    async def _schema_problem(self, name: str, arguments: dict[str, Any]) -> str | None:
        if not self.check_schemas:
            return None
        if self._schemas is None or name not in self._schemas:
            await self._fetch_schemas()
        schemas = self._schemas or {}
        if name not in schemas:
            return None  # the upstream lists no such tool: authorize decides (and the upstream refuses it)
        return type_problem(arguments, schemas[name])

    async def _fetch_schemas(self) -> None:
        """Ask the upstream for its tools (all pages) under the gateway's own request ids."""
        cursor = None
        for _ in range(100):
            own_id = self._new_id()
            event, box = asyncio.Event(), []
            self._own[own_id] = (event, box)
            request: dict[str, Any] = {"jsonrpc": "2.0", "id": own_id, "method": "tools/list"}
            if cursor:
                request["params"] = {"cursor": cursor}
            await self._server.send(request)
            try:
                await asyncio.wait_for(event.wait(), 30)
            except asyncio.TimeoutError:
                pass
            answer = box[0] if box else None
            if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
                self._schemas = self._schemas or {}
                return
            self._learn_schemas(answer["result"])
            cursor = answer["result"].get("nextCursor")
            if not cursor:
                return


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _denial_result(decision: Decision, why: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {DECISION_META: decision.to_json()}
    text = why + denial_text(decision)
    if decision.approval is not None:
        meta[APPROVAL_META] = decision.approval.to_json()
        text = APPROVAL_SENTENCE + " (" + text + ")"
    return {"content": [{"type": "text", "text": text}], "isError": True, "_meta": meta}


def _nothing_spent(result: Any) -> bool:
    meta = result.get("_meta") if isinstance(result, Mapping) else None
    return isinstance(meta, Mapping) and meta.get(OUTCOME_META) == NOTHING_SPENT



@contextlib.asynccontextmanager
async def open_upstream(command: list[str] | None = None, url: str | None = None,
                        env: dict[str, str] | None = None) -> AsyncIterator[MessageStream]:
    """The upstream as a message stream: a child started with ``command`` (over its stdio), or the server at
    ``url`` (streamable HTTP, through the MCP SDK's client). Leaving closes it (and stops the child)."""
    if (command is None) == (url is None):
        raise CapkitError("the gateway needs an upstream: a command, or a URL")
    if command is not None:
        try:
            process, upstream = await child_process(command, env)
        except OSError as exc:
            raise CapkitError(f"cannot start the upstream server {command[0]}: {exc.strerror}") from None
        try:
            yield upstream
        finally:
            await upstream.aclose()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                process.kill()
    else:
        from mcp.client.streamable_http import streamable_http_client

        async with streamable_http_client(url) as streams:  # type: ignore[arg-type]
            upstream = SdkStream(streams[0], streams[1])
            try:
                yield upstream
            finally:
                await upstream.aclose()


async def serve(gateway: Gateway, *, command: list[str] | None = None, url: str | None = None,
                env: dict[str, str] | None = None) -> None:
    """Serve the host on this process's stdio, relaying to the upstream (see ``open_upstream``)."""
    host = await own_stdio()
    try:
        async with open_upstream(command, url, env) as upstream:
            await gateway.run(host, upstream)
    finally:
        await host.aclose()


async def serve_listening(make_gateway: Callable[[], Gateway], listen_url: str, *, command: list[str] | None = None,
                          url: str | None = None, env: dict[str, str] | None = None,
                          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve hosts over streamable HTTP at ``listen_url``: each MCP session gets a new ``make_gateway()`` and
    its own upstream connection (see ``capkit.gateway.http``)."""
    if (command is None) == (url is None):
        raise CapkitError("the gateway needs an upstream: a command, or a URL")

    async def run_session(host: MessageStream) -> None:
        async with open_upstream(command, url, env) as upstream:
            await make_gateway().run(host, upstream)

    model = make_gateway()
    admit = None if model.credentials is not None else (lambda headers: _admission(model.verifier, headers))
    await serve_http(listen_url, run_session, on_ready=on_ready, admit=admit)


def _admission(verifier: Verifier, headers: Any) -> str | None:
    """None if a new HTTP session may open: its request carries a capkit token that verifies here (a chain
    under this verifier's keys and location; the calls are decided one by one later); else why not."""
    carried = header_credentials(headers)
    if not isinstance(carried, tuple):
        return carried or ("open a session with your token: Authorization: Capkit <token> (this gateway holds "
                           "none of its own)")
    try:
        verifier.verify_chain(carried[0])
    except CapkitError as exc:
        return f"the capkit token does not verify here: {exc.message}"
    return None
