"""HTTP tool backends (Starlette, FastAPI, any ASGI app): ``CapkitASGIMiddleware``.

    app = FastAPI()
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier, audience="bank-api")

A request is a tool call: the tool is named by the route (``POST /bank/transfer``
is the tool ``bank.transfer``; pass ``tool_for`` to map routes yourself, or
return None from it to leave a route unprotected), and its arguments are the
JSON object body (or the query parameters of a request without a body). The
token travels in ``Authorization: Capkit <token>``, the proof in a
``Capkit-Proof`` header, in the spirit of DPoP (RFC 9449).

* no token, or a malformed one: 401 with ``WWW-Authenticate: Capkit``;
* a body that is not one JSON object, a duplicate key in the body or the
  query, NaN, or two Authorization or Capkit-Proof headers: 400 (ambiguous
  input is refused, never resolved);
* a policy denial: 403 with an ``application/problem+json`` body (RFC 9457)
  whose ``detail`` lists every reason and whose ``reasons`` give the codes;
* allowed: the app runs without the token and proof headers; a 2xx or 3xx
  answer commits the reservation, any other answer or an exception releases it.

Client helper: ``headers_for(credentials, method, path, body)``.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import parse_qsl

from .. import strictjson
from ..errors import CapkitError, MalformedToken
from ..invocation import Invocation
from ..verifier import Verifier
from ._boundary import authorize_async, complete_async, denial_text
from .credentials import Credentials

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PROOF_HEADER = "capkit-proof"
SCHEME = "Capkit"
MAX_BODY = 1 << 20
PROBLEM_TYPE = "urn:capkit:problem:denied"


def tool_for_path(method: str, path: str) -> str | None:
    """The default route-to-tool mapping: ``/bank/transfer`` is ``bank.transfer`` (any method)."""
    name = path.strip("/").replace("/", ".")
    return name or None


def headers_for(credentials: Credentials, method: str, path: str, body: dict[str, Any] | None = None,
                tool_for: Callable[[str, str], str | None] = tool_for_path) -> dict[str, str]:
    """The Authorization and Capkit-Proof headers for one request whose JSON body is ``body``."""
    tool = tool_for(method, path)
    if tool is None:
        return {}
    token, proof = credentials.present(tool, body or {})
    headers = {"Authorization": f"{SCHEME} {token}"}
    if proof is not None:
        headers["Capkit-Proof"] = proof
    return headers


async def _respond(send: Send, status: int, body: dict[str, Any], *, problem: bool, extra: list | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json" if problem else b"application/json"),
               (b"content-length", str(len(payload)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _problem(status: int, title: str, detail: str, **more: Any) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE if status == 403 else "about:blank", "title": title, "status": status,
            "detail": detail, **more}


class CapkitASGIMiddleware:
    """Authorize every HTTP request that maps to a tool (see the module docstring)."""

    def __init__(self, app: Any, *, verifier: Verifier, audience: str | None = None,
                 tool_for: Callable[[str, str], str | None] = tool_for_path) -> None:
        self.app = app
        self.verifier = verifier
        self.audience = audience
        self.tool_for = tool_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tool = self.tool_for(scope["method"], scope["path"])
        if tool is None:
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name = key.decode("latin-1").lower()
            if name in headers and name in ("authorization", PROOF_HEADER):
                await _respond(send, 400, _problem(400, "bad request", f"more than one {name} header"), problem=True)
                return
            headers[name] = value.decode("latin-1")
        unauthorized = [(b"www-authenticate", SCHEME.encode())]
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != SCHEME.lower() or not token.strip():
            await _respond(send, 401, _problem(401, "capkit token required",
                                               "send the token as: Authorization: Capkit <token>"),
                           problem=True, extra=unauthorized)
            return
        try:
            self.verifier.verify_chain(token.strip())  # cached: a token seen before costs nothing here
        except MalformedToken as exc:
            await _respond(send, 401, _problem(401, "malformed capkit token", exc.message), problem=True,
                           extra=unauthorized)
            return
        except CapkitError:
            pass  # well-formed but not verifiable (unknown key, bad signature): authorize denies it (403)
        body, chunks = await _read_body(receive)
        if body is None:
            await _respond(send, 413, _problem(413, "body too large", f"at most {MAX_BODY} bytes"), problem=True)
            return
        args = _arguments(body, scope.get("query_string", b""))
        if isinstance(args, str):
            await _respond(send, 400, _problem(400, "bad request", args), problem=True)
            return
        decision = await authorize_async(self.verifier, token.strip(), Invocation(tool, args, self.audience),
                                         headers.get(PROOF_HEADER))
        if not decision.allowed:
            await _respond(send, 403, _problem(403, "capkit denied this call", denial_text(decision),
                                               reasons=[r.to_json() for r in decision.reasons]), problem=True)
            return
        status: list[int] = []

        async def replay() -> MutableMapping[str, Any]:
            if chunks:
                return chunks.pop(0)
            return await receive()

        async def watch(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        # What the app sees: the request without the token and the proof.
        stripped = dict(scope)
        stripped["headers"] = [(k, v) for k, v in scope.get("headers", [])
                               if k.lower() != PROOF_HEADER.encode() and not (
                                   k.lower() == b"authorization" and v[:len(SCHEME) + 1].lower() == b"capkit ")]
        try:
            await self.app(stripped, replay, watch)
        except BaseException:
            await complete_async(self.verifier, decision, ok=False)
            raise
        await complete_async(self.verifier, decision, ok=bool(status) and 200 <= status[0] < 400)


def _arguments(body: bytes, query: bytes) -> dict[str, Any] | str:
    """The call's arguments: the JSON object body, else the query parameters; or why the request is refused.

    Ambiguous input is refused, never resolved: a duplicate key (in the body or
    the query) or NaN could be read one way here and another way by the app.
    """
    if body:
        try:
            args = strictjson.loads(body)
        except strictjson.StrictJSONError as exc:
            return f"the body must be one JSON object: {exc}"
        return args if isinstance(args, dict) else "the body must be a JSON object"
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        return "the query string cannot be parsed"
    args = dict(pairs)
    if len(args) != len(pairs):
        return "a query parameter is given more than once"
    return args


async def _read_body(receive: Receive) -> tuple[bytes | None, list]:
    """The request body, and the messages to hand to the app again; None if it is too large."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), [message]
        part = message.get("body", b"")
        size += len(part)
        if size > MAX_BODY:
            return None, []
        parts.append(part)
        if not message.get("more_body"):
            body = b"".join(parts)
            return body, [{"type": "http.request", "body": body, "more_body": False}]
