"""HTTP tool backends (Starlette, FastAPI, any ASGI app): ``CapkitASGIMiddleware``.

    app = FastAPI()
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier, audience="bank-api", public=["/health"])

A request is a tool call (specs/SPEC.md §18.2). The tool is named by the
method and the route: ``POST /bank/transfer`` is the tool ``POST:bank.transfer``,
so a grant states which methods it allows (``Tools("GET:notes.*")`` reads but
cannot delete) and a proof made for a GET is refused for a DELETE. Each path
segment must be letters, digits, ``_`` or ``-``: ``.``, ``..``, empty and
percent-encoded segments are refused (400), so a segment can never pose as the
tool-name separator or climb out of its prefix. Pass ``tool_for`` to map
routes yourself (it returns the tool name, or None to refuse the route).

The arguments come from exactly one place: a JSON body (``application/json``,
UTF-8), or, for a request without a body, the query string (values are text:
numeric caveats deny text, so send numbers in a JSON body). A request with both
a body and a query string, a repeated query parameter, a body of another media
type (415), a body that is not one JSON object, a duplicate key or NaN (400)
is refused: the application could read it differently from capkit. The
application must read its arguments from that same place only (never from
headers or cookies); ``capkit.integrations.fastapi.check_routes(app)`` refuses
FastAPI routes that do not.

Everything is guarded: a route without a tool (``/``), and websocket
connections, are refused unless listed in ``public`` (exact paths, or a
function of (scope type, method, path)). The token travels in
``Authorization: Capkit <token>``, the proof in ``Capkit-Proof`` (compare DPoP,
RFC 9449).

* no token, or a malformed one: 401 with ``WWW-Authenticate: Capkit``;
* a policy denial: 403 ``application/problem+json`` (RFC 9457) whose
  ``detail`` lists every reason and whose ``reasons`` give the codes;
* allowed: the app runs without the token and proof headers; the call's
  reservation is committed whatever the answer (an error answer is not proof
  that nothing was spent), unless the app answers with the header
  ``Capkit-Outcome: nothing-spent`` (removed before the answer leaves), which
  gives its budget room back.

Client helper: ``headers_for(credentials, method, path, body)``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Awaitable, Callable, Iterable, MutableMapping
from urllib.parse import parse_qsl

from .. import strictjson
from ..core.errors import CapkitError, MalformedToken, StrictJSONError, UnmappableRoute
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ._boundary import authorize_async, denial_text, settle_async
from .credentials import Credentials

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PROOF_HEADER = "capkit-proof"
OUTCOME_HEADER = "capkit-outcome"
NOTHING_SPENT = "nothing-spent"
SCHEME = "Capkit"
MAX_BODY = 1 << 20
PROBLEM_TYPE = "urn:capkit:problem:denied"
#: The problem type of a denial for lack of approval; the body's ``approval_request`` says what to ask for.
APPROVAL_PROBLEM_TYPE = "urn:capkit:problem:approval-required"
#: Discharges (approvals) bound to the token, comma-separated.
DISCHARGE_HEADER = "capkit-discharge"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_METHOD = re.compile(r"[A-Z]{1,16}", re.ASCII)
_JSON_TYPE = re.compile(r"application/json\s*(?:;\s*charset\s*=\s*\"?utf-8\"?\s*)?", re.IGNORECASE | re.ASCII)


def tool_for_path(method: str, path: str) -> str | None:
    """The default route-to-tool mapping: ``POST /bank/transfer`` is ``POST:bank.transfer``; ``/`` is no tool.

    Raises ``UnmappableRoute`` for a path with an empty, ``.`` or ``..``
    segment, or a segment with anything but letters, digits, ``_`` and ``-``.
    """
    if not _METHOD.fullmatch(method or ""):
        raise UnmappableRoute("the request method is not a plain HTTP method name")
    if not path.startswith("/"):
        raise UnmappableRoute("the path does not start with '/'")
    segments = path[1:].split("/")
    if segments == [""]:
        return None
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise UnmappableRoute("a path segment is empty, '.' or '..', or holds characters other than letters, "
                                  "digits, '_' and '-'; such a path cannot name a tool unambiguously")
    return method + ":" + ".".join(segments)


def credentials_in_headers(authorization: str | None, proof: str | None,
                           discharge: str | None) -> "tuple[str, str | None, tuple[str, ...]] | None":
    """The token, proof and discharges of the ``Authorization``, ``Capkit-Proof`` and ``Capkit-Discharge``
    header values, or None when ``Authorization`` carries no ``Capkit`` token."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != SCHEME.lower() or not token:
        return None
    return token, proof, tuple(d.strip() for d in (discharge or "").split(",") if d.strip())


def headers_for(credentials: Credentials, method: str, path: str, body: dict[str, Any] | None = None,
                tool_for: Callable[[str, str], str | None] = tool_for_path) -> dict[str, str]:
    """The Authorization and Capkit-Proof headers for one request whose JSON body (or query) is ``body``."""
    tool = tool_for(method, path)
    if tool is None:
        return {}
    token, proof = credentials.present(tool, body or {})
    headers = {"Authorization": f"{SCHEME} {token}"}
    if proof is not None:
        headers["Capkit-Proof"] = proof
    if credentials.discharges:
        headers["Capkit-Discharge"] = ", ".join(credentials.discharges)
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


def _public_rule(public: "Iterable[str] | Callable[[str, str, str], bool] | None") -> Callable[[str, str, str], bool]:
    if public is None:
        return lambda kind, method, path: False
    if callable(public):
        return public
    paths = frozenset(public)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise CapkitError("public lists exact paths such as '/health'")
    return lambda kind, method, path: path in paths


class CapkitASGIMiddleware:
    """Authorize every HTTP request and websocket (see the module docstring)."""

    def __init__(self, app: Any, *, verifier: Verifier, audience: str | None = None,
                 tool_for: Callable[[str, str], str | None] = tool_for_path,
                 public: "Iterable[str] | Callable[[str, str, str], bool] | None" = None) -> None:
        if not isinstance(verifier, Verifier):
            raise CapkitError("CapkitASGIMiddleware needs a capkit Verifier")
        self.app = app
        self.verifier = verifier
        self.audience = audience
        self.tool_for = tool_for
        self.is_public = _public_rule(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET" if kind == "websocket" else ""), scope.get("path", "")
        if self.is_public(kind, method, path):
            await self.app(scope, receive, send)
            return
        if kind != "http":  # websockets and anything else capkit cannot authorize message by message
            if kind == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008,
                            "reason": "capkit authorizes HTTP requests only; this route is not public"})
            return
        raw_path = scope.get("raw_path")
        if isinstance(raw_path, (bytes, bytearray)) and b"%" in raw_path:
            await _respond(send, 400, _problem(400, "bad request", "a percent-encoded path cannot name a tool "
                                                                    "unambiguously"), problem=True)
            return
        try:
            tool = self.tool_for(method, path)
        except UnmappableRoute as exc:
            await _respond(send, 400, _problem(400, "bad request", exc.message), problem=True)
            return
        if tool is None:
            await _respond(send, 403, _problem(403, "capkit denied this call", "this route is not mapped to a tool "
                                                                               "and is not public"), problem=True)
            return
        await self._authorized_call(scope, receive, send, tool)

    async def _authorized_call(self, scope: Scope, receive: Receive, send: Send, tool: str) -> None:
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name = key.decode("latin-1").lower()
            if name in headers and name in ("authorization", PROOF_HEADER, DISCHARGE_HEADER, "content-type"):
                await _respond(send, 400, _problem(400, "bad request", f"more than one {name} header"), problem=True)
                return
            headers[name] = value.decode("latin-1")
        unauthorized = [(b"www-authenticate", SCHEME.encode())]
        found = credentials_in_headers(headers.get("authorization"), headers.get(PROOF_HEADER),
                                       headers.get(DISCHARGE_HEADER))
        if found is None:
            await _respond(send, 401, _problem(401, "capkit token required",
                                               "send the token as: Authorization: Capkit <token>"),
                           problem=True, extra=unauthorized)
            return
        token, proof, discharges = found
        try:
            self.verifier.verify_chain(token)  # cached: a token seen before costs nothing here
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
        status, args = _arguments(body, scope.get("query_string", b""), headers.get("content-type"))
        if isinstance(args, str):
            await _respond(send, status, _problem(status, "bad request" if status == 400 else "unsupported media type",
                                                  args), problem=True)
            return
        decision = await authorize_async(self.verifier, token, Invocation(tool, args, self.audience), proof,
                                         discharges)
        if not decision.allowed:
            problem = _problem(403, "capkit denied this call", denial_text(decision),
                               reasons=[r.to_json() for r in decision.reasons])
            if decision.approval is not None:
                problem.update(type=APPROVAL_PROBLEM_TYPE, title="this call needs the person's approval",
                               approval_request=decision.approval.to_json())
            await _respond(send, 403, problem, problem=True)
            return
        outcome: list[bool] = []

        async def replay() -> MutableMapping[str, Any]:
            if chunks:
                return chunks.pop(0)
            return await receive()

        async def watch(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = []
                for key, value in message.get("headers", []):
                    if key.lower() == OUTCOME_HEADER.encode():
                        outcome.append(value.strip().lower() == NOTHING_SPENT.encode())
                    else:
                        kept.append((key, value))
                message = {**message, "headers": kept}
            await send(message)

        # What the app sees: the request without the token and the proof.
        stripped = dict(scope)
        stripped["headers"] = [(k, v) for k, v in scope.get("headers", [])
                               if k.lower() not in (PROOF_HEADER.encode(), DISCHARGE_HEADER.encode()) and not (
                                   k.lower() == b"authorization" and v[:len(SCHEME) + 1].lower() == b"capkit ")]
        try:
            await self.app(stripped, replay, watch)
        except BaseException:
            await settle_async(self.verifier, decision, spent=True)
            raise
        await settle_async(self.verifier, decision, spent=not (outcome and all(outcome)))


def _arguments(body: bytes, query: bytes, content_type: str | None) -> tuple[int, dict[str, Any] | str]:
    """The call's arguments and 200, or the status and sentence of a refusal.

    Ambiguous input is refused, never resolved: arguments in two places, a
    body of another media type, a duplicate key (in the body or the query) or
    NaN could be read one way here and another way by the app.
    """
    if body:
        if query:
            return 400, "the request carries arguments in both the body and the query string; send them in one place"
        if content_type is None or not _JSON_TYPE.fullmatch(content_type.strip()):
            return 415, "capkit authorizes only application/json (UTF-8) bodies"
        try:
            args = strictjson.loads(body)
        except StrictJSONError as exc:
            return 400, f"the body must be one JSON object: {exc.message}"
        return (200, args) if isinstance(args, dict) else (400, "the body must be a JSON object")
    if not query.isascii():  # raw bytes: one framework reads them as Latin-1, another as UTF-8
        return 400, "the query string holds bytes outside ASCII; percent-encode them (as UTF-8)"
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query),
                          errors="strict")  # an escape that is not UTF-8 would become U+FFFD here, or fail there
    except ValueError:  # UnicodeDecodeError included
        return 400, "the query string cannot be parsed (a percent-escape that is not UTF-8, or a bad pair)"
    args = dict(pairs)
    if len(args) != len(pairs):
        return 400, "a query parameter is given more than once"
    return 200, args


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
