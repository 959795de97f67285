"""The gateway's host side over streamable HTTP (``capkit gateway --listen http://HOST:PORT/PATH``).

Each MCP session a client opens (an ``initialize`` POST without a session id)
gets its own relay: its own ``Gateway`` (pending calls, learned schemas) and its
own upstream connection (a child process started for it, or a client of the
upstream URL), all sharing one ``Verifier`` and so one store of budgets, call
limits, nonces and revocations. The session ends when the client deletes it,
when it has been idle for ``idle_timeout`` seconds, or when the upstream ends.

Credentials come either from the gateway (``--token``/``--key``: every client
of the listener acts with that authority, so that is allowed on a loopback
address only) or from each client, per request: ``Authorization: Capkit
<token>`` with ``Capkit-Proof`` (and ``Capkit-Discharge``) headers on the POST
that carries the request, the same headers the ASGI middleware reads, or the
request's ``_meta["dev.capkit/credentials"]``. A request that carries both, or
a header twice, is refused: which credentials were meant cannot be told.

On a loopback address, requests whose ``Host`` or ``Origin`` names another
host are refused (DNS rebinding: a web page must not reach the listener).
Without a token of its own, the gateway opens a session (and starts its
upstream) only for a client whose opening request carries ``Authorization:
Capkit <token>`` with a token that verifies here: nobody can make it start
processes or connections by knocking.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import urlsplit
from uuid import uuid4

import anyio

from ..core.errors import CapkitError
from ..integrations.asgi import DISCHARGE_HEADER, PROOF_HEADER, SCHEME, credentials_in_headers
from .transports import MessageStream, SdkStream

__all__ = ["HostMessage", "Listener", "parse_listen_url", "serve_http"]

_log = logging.getLogger("capkit.gateway")
_SESSION_HEADER = "mcp-session-id"
#: Seconds a session may go without a request before the gateway ends it (and its upstream).
IDLE_TIMEOUT = 1800.0
#: Sessions open at once (each holds an upstream connection or process).
MAX_SESSIONS = 100


class HostMessage(dict):  # type: ignore[type-arg]
    """A message from an HTTP client, with what the HTTP request that carried it said about credentials.

    ``http_credentials`` is None (no ``Authorization: Capkit`` header), a
    (token, proof or None, discharges) triple, or a sentence saying why the
    headers cannot be used (a header sent twice)."""

    __slots__ = ("http_credentials",)

    def __init__(self, message: Mapping[str, Any], http_credentials: Any = None) -> None:
        super().__init__(message)
        self.http_credentials = http_credentials


def header_credentials(headers: Any) -> "tuple[str, str | None, tuple[str, ...]] | str | None":
    """The Capkit credentials in HTTP ``headers`` (a Starlette ``Headers``): see ``HostMessage``."""
    for name in ("authorization", PROOF_HEADER, DISCHARGE_HEADER):
        if len(headers.getlist(name)) > 1:
            return f"the request has more than one {name} header; which one was meant cannot be told"
    return credentials_in_headers(headers.get("authorization"), headers.get(PROOF_HEADER) or None,
                                  headers.get(DISCHARGE_HEADER))


class HttpHostStream(SdkStream):
    """A session's SDK transport streams as host messages (dicts that know their request's credentials)."""

    def _message(self, item: Any) -> dict[str, Any]:
        request = getattr(item.metadata, "request_context", None)
        headers = getattr(request, "headers", None)
        return HostMessage(super()._message(item), header_credentials(headers) if headers is not None else None)


def parse_listen_url(url: str) -> tuple[str, int, str]:
    """(host, port, path) of ``http://HOST:PORT/PATH``; ``CapkitError`` for anything else."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise CapkitError("--listen takes http://HOST:PORT/PATH, e.g. http://127.0.0.1:8931/mcp (TLS belongs to a "
                          "reverse proxy in front)")
    return parts.hostname, port, parts.path or "/"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Listener:
    """The ASGI app: one relay per MCP session (see the module docstring)."""

    def __init__(self, path: str, run_session: Callable[[HttpHostStream], Awaitable[None]], *,
                 security: Any = None, idle_timeout: float = IDLE_TIMEOUT, max_sessions: int = MAX_SESSIONS,
                 admit: "Callable[[Any], str | None] | None" = None) -> None:
        self.path = path
        self._run_session = run_session
        self._admit = admit
        self._security = security
        self._idle_timeout = idle_timeout
        self._max_sessions = max_sessions
        self._sessions: dict[str, Any] = {}
        self._tasks: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http" or scope.get("path") != self.path:
            return await _plain(send, 404, "not found: the MCP endpoint is " + self.path)
        from starlette.requests import Request

        headers = Request(scope, receive).headers
        session_id = headers.get(_SESSION_HEADER)
        if session_id is not None:
            transport = self._sessions.get(session_id)
            if transport is None:
                return await _plain(send, 404, "session not found")
            await transport.handle_request(scope, receive, send)
            if transport.is_terminated:
                self._sessions.pop(session_id, None)
            return
        if len(self._sessions) >= self._max_sessions:
            return await _plain(send, 503, "too many open sessions")
        refusal = self._admit(headers) if self._admit is not None else None
        if refusal is not None:  # nobody starts an upstream (a process, a connection) without a token that verifies
            return await _plain(send, 401, refusal, [(b"www-authenticate", SCHEME.encode())])
        from mcp.server.streamable_http import StreamableHTTPServerTransport

        transport = StreamableHTTPServerTransport(uuid4().hex, security_settings=self._security,
                                                  idle_timeout=self._idle_timeout)
        self._sessions[transport.mcp_session_id] = transport
        await self._tasks.start(self._session, transport)
        await transport.handle_request(scope, receive, send)

    async def _session(self, transport: Any, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with transport.connect() as (read, write):
                task_status.started()
                scope = transport.idle_scope or contextlib.nullcontext()
                with scope:
                    await self._run_session(HttpHostStream(read, write))
        except Exception:  # one session's failure must not end the others
            _log.exception("capkit gateway: a session ended with an error")
        finally:
            self._sessions.pop(transport.mcp_session_id, None)
            with anyio.CancelScope(shield=True):
                await transport.terminate()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Listener"]:
        """The task group sessions run in; leaving it ends every session."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield self
            finally:
                tasks.cancel_scope.cancel()


async def _plain(send: Any, status: int, text: str, extra: "list[tuple[bytes, bytes]] | None" = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def security_for(host: str, port: int) -> Any:
    """DNS-rebinding protection for a loopback listener (the Host and Origin must name this address); none
    elsewhere, where every client brings its own credentials."""
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = {host, "localhost", "127.0.0.1", "[::1]"} if host in ("localhost", "127.0.0.1", "::1") else {host}
    hosts = [f"{name}:{port}" for name in sorted(names)]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=[f"http://{h}" for h in hosts])


async def serve_http(listen_url: str, run_session: Callable[[MessageStream], Awaitable[None]], *,
                     on_ready: Callable[[str], None] | None = None,
                     admit: "Callable[[Any], str | None] | None" = None) -> None:
    """Listen on ``listen_url`` until cancelled, running ``run_session(host_stream)`` for each MCP session.

    Port 0 picks a free port; ``on_ready`` gets the URL actually listened on
    (by default it is written to stderr). ``admit(headers)`` decides whether a
    new session may open: None to admit it, else the sentence of a 401.
    """
    import uvicorn

    host, port, path = parse_listen_url(listen_url)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CapkitError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    listener = Listener(path, run_session, security=security_for(host, port), admit=admit)
    config = uvicorn.Config(listener, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    shown = f"http://{'[' + host + ']' if ':' in host else host}:{port}{path}"
    async with listener.running():
        (on_ready or (lambda url: print(f"capkit gateway listening on {url}", file=sys.stderr, flush=True)))(shown)
        await server.serve(sockets=[sock])
