"""``ApprovalServer``: a small approval service for a person who is not at a terminal.

Agents (or the services running them) ``POST /api/requests`` with an approval
request and get back ``{"id", "status": "pending", "poll_url", "user_url"}``
(the shape of Fly.io's discharge protocol: a poll URL, and a URL for the
user). They poll ``GET /api/requests/ID`` until the status is ``approved``
(with the ``discharge``), ``denied`` or ``expired``.

The person opens the login URL printed at start (it carries a one-time secret
and sets a session cookie: ``HttpOnly``, ``SameSite=Strict``), sees every
pending call exactly as it will run (tool, arguments, audience, the agent, the
token and its delegation hops) and approves or denies each; the forms carry a
per-session anti-forgery token. Only requests naming this server's approver
are accepted. The standard library's HTTP server, bound to 127.0.0.1 by
default: put it behind TLS (a reverse proxy) before exposing it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import attrs

from ..core.errors import ApprovalError
from ..core.publickey import PublicKey
from . import ApprovalRequest, approve, parse_request

__all__ = ["ApprovalServer"]

MAX_BODY = 64 * 1024
MAX_PENDING = 1000
#: How long a request waits for the person before it expires.
REQUEST_TTL = 900


@attrs.define
class _Entry:
    request: ApprovalRequest
    received: float
    status: str = "pending"
    discharge: str | None = None


class ApprovalServer:
    """Pending approval requests, a page to decide them, and a poll API for the agents."""

    def __init__(self, approver: Any, *, host: str = "127.0.0.1", port: int = 8700, lifetime: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        public = getattr(approver, "public_key", None)
        if not isinstance(public, PublicKey) or not callable(getattr(approver, "unseal", None)):
            raise ApprovalError("the approval server needs the approver's AgentKey")
        self.approver = approver
        self.lifetime = lifetime
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._login_secret = secrets.token_urlsafe(24)
        self._sessions: set[str] = set()
        self._csrf_key = secrets.token_bytes(32)
        handler = type("Handler", (_Handler,), {"app": self})
        self._http = ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def login_url(self) -> str:
        """The URL that logs the person in (keep it secret: it is the right to approve)."""
        return f"{self.base_url}/login?secret={self._login_secret}"

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def start(self) -> "ApprovalServer":
        """Serve in a background thread (for tests and embedding)."""
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # ------------------------------------------------------------------- state

    def submit(self, data: Any) -> dict[str, Any]:
        """Accept a request for this approver; the poll document of the new entry."""
        request = parse_request(data)
        if not any(t.approver == self.approver.public_key for t in request.tickets):
            raise ApprovalError("this request does not ask this server's approver")
        with self._lock:
            self._expire()
            if len(self._entries) >= MAX_PENDING:
                raise ApprovalError("too many requests are waiting")
            entry_id = secrets.token_urlsafe(16)
            self._entries[entry_id] = _Entry(request, self._clock())
        return self.poll(entry_id)

    def poll(self, entry_id: str) -> dict[str, Any]:
        with self._lock:
            self._expire()
            entry = self._entries.get(entry_id)
            if entry is None:
                raise KeyError(entry_id)
            doc: dict[str, Any] = {"id": entry_id, "status": entry.status,
                                   "poll_url": f"{self.base_url}/api/requests/{entry_id}",
                                   "user_url": f"{self.base_url}/#{entry_id}"}
            if entry.discharge is not None:
                doc["discharge"] = entry.discharge
            return doc

    def decide(self, entry_id: str, approved: bool) -> None:
        with self._lock:
            self._expire()
            entry = self._entries.get(entry_id)
            if entry is None or entry.status != "pending":
                raise ApprovalError("this request is no longer pending")
            if approved:
                entry.discharge = approve(entry.request, self.approver, now=self._clock(),
                                          lifetime=self.lifetime).serialize()
                entry.status = "approved"
            else:
                entry.status = "denied"

    def pending(self) -> list[tuple[str, ApprovalRequest, float]]:
        with self._lock:
            self._expire()
            return [(i, e.request, e.received) for i, e in self._entries.items() if e.status == "pending"]

    def _expire(self) -> None:
        now = self._clock()
        for entry_id, entry in list(self._entries.items()):
            if now - entry.received > REQUEST_TTL + self.lifetime:
                del self._entries[entry_id]  # forgotten: polling says 404
            elif entry.status == "pending" and now - entry.received > REQUEST_TTL:
                entry.status = "expired"

    # ---------------------------------------------------------------- sessions

    def login(self, secret: str) -> str | None:
        if not hmac.compare_digest(secret.encode(), self._login_secret.encode()):
            return None
        session = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions.add(session)
        return session

    def has_session(self, session: str | None) -> bool:
        return session is not None and session in self._sessions

    def csrf(self, session: str) -> str:
        return hmac.new(self._csrf_key, session.encode(), hashlib.sha256).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    app: ApprovalServer
    server_version = "capkit-approval"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no request lines on stderr
        pass

    # ------------------------------------------------------------------ helpers

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
        self.send_header("X-Frame-Options", "DENY")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if not 0 <= length <= MAX_BODY:
            return None
        return self.rfile.read(length)

    def _session(self) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "capkit_session" and self.app.has_session(value):
                return value
        return None

    # ------------------------------------------------------------------- routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/login":
            secret = parse_qs(url.query).get("secret", [""])[0]
            session = self.app.login(secret)
            if session is None:
                return self._send(HTTPStatus.FORBIDDEN, b"wrong or missing login secret", "text/plain")
            cookie = f"capkit_session={session}; HttpOnly; SameSite=Strict; Path=/"
            return self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
        if url.path.startswith("/api/requests/"):
            try:
                return self._json(HTTPStatus.OK, self.app.poll(url.path.rsplit("/", 1)[1]))
            except KeyError:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "no such request"})
        if url.path == "/":
            session = self._session()
            if session is None:
                return self._send(HTTPStatus.FORBIDDEN, b"log in with the URL the server printed", "text/plain")
            return self._send(HTTPStatus.OK, _page(self.app, session).encode(), "text/html; charset=utf-8")
        self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        body = self._body()
        if body is None:
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"at most {MAX_BODY} bytes"})
        if url.path == "/api/requests":
            try:
                return self._json(HTTPStatus.ACCEPTED, self.app.submit(body))
            except ApprovalError as exc:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": exc.message})
        parts = url.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "requests" and parts[2] in ("approve", "deny"):
            session = self._session()
            form = parse_qs(body.decode("utf-8", "replace"))
            if session is None or not hmac.compare_digest(form.get("csrf", [""])[0], self.app.csrf(session)):
                return self._send(HTTPStatus.FORBIDDEN, b"not logged in, or a forged form", "text/plain")
            try:
                self.app.decide(parts[1], parts[2] == "approve")
            except ApprovalError as exc:
                return self._send(HTTPStatus.CONFLICT, exc.message.encode(), "text/plain")
            return self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/"})
        self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")


def _page(app: ApprovalServer, session: str) -> str:
    esc = html.escape
    csrf = esc(app.csrf(session))
    cards = []
    for entry_id, request, received in app.pending():
        args = json.dumps(dict(request.args), ensure_ascii=False, sort_keys=True, indent=2)
        agent = f"agent {request.agent}" if request.agent else "a bearer token (no agent key)"
        hops = len(request.hops) - 1
        cards.append(f"""
<section class="call" id="{esc(entry_id)}">
  <h2>{esc(agent)} asks to call <code class="tool">{esc(request.tool)}</code></h2>
  <p>audience: <code>{esc(request.audience or "any")}</code> &middot; token <code>{esc(request.token_id)}</code>
     &middot; delegated {hops} time(s) &middot; received {esc(time.strftime("%H:%M:%S", time.gmtime(received)))} UTC</p>
  <pre class="args">{esc(args)}</pre>
  <form method="post" action="/requests/{esc(entry_id)}/approve"><input type="hidden" name="csrf" value="{csrf}">
    <button class="approve" type="submit">Approve exactly this call</button></form>
  <form method="post" action="/requests/{esc(entry_id)}/deny"><input type="hidden" name="csrf" value="{csrf}">
    <button class="deny" type="submit">Deny</button></form>
</section>""")
    body = "".join(cards) or '<p class="empty">No call is waiting for your approval.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>capkit approvals</title>
<style>body{{font-family:sans-serif;max-width:50rem;margin:2rem auto}} .call{{border:1px solid #999;padding:1rem;
margin:1rem 0}} pre{{background:#f4f4f4;padding:.5rem}} form{{display:inline}} button{{margin-right:1rem}}</style>
</head><body><h1>Calls waiting for approver {esc(app.approver.public_key.fingerprint)}</h1>
<p>Each approval lets this one call run once, with this token, within {app.lifetime} seconds.</p>
{body}</body></html>"""
