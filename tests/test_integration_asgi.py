"""HTTP tool backends: httpx against a FastAPI app behind CapkitASGIMiddleware."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("fastapi")

import httpx  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402

from capkit import mint  # noqa: E402
from capkit.caveats import Budget, Holder, Max, PathUnder, Tools  # noqa: E402
from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.asgi import CapkitASGIMiddleware, headers_for  # noqa: E402

from .integration_kit import KEYRING, PAYER, THIEF, verifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def app_and_credentials():
    app = FastAPI()
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier(), audience="bank-api", public=["/health"])
    seen: list = []

    @app.post("/bank/transfer")
    async def transfer(request: Request) -> dict:
        body = await request.json()
        seen.append(dict(request.headers))
        if body["amount"] == 13:
            raise RuntimeError("the bank is down")
        if body["amount"] == 14:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": "timed out upstream"}, status_code=502)
        if body["amount"] == 15:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": "declined"}, status_code=402, headers={"Capkit-Outcome": "nothing-spent"})
        return {"sent": body["amount"]}

    @app.get("/bank/balance")
    async def balance(request: Request) -> dict:
        return {"query": dict(request.query_params)}

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    token = mint(KEYRING, Holder(PAYER.public_key), Tools("*:bank.*"), Max("amount", 100, tool="POST:bank.transfer"),
                 Budget("amount", 150, tool="POST:bank.transfer"), location="bank")
    return app, Credentials(token, PAYER, "bank-api"), seen


def call(app, requests):
    async def main():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            return [await client.request(method, path, json=body, headers=headers, params=params)
                    for method, path, body, headers, params in requests]

    return anyio.run(main)


def post(credentials, amount, **extra):
    body = {"amount": amount}
    return ("POST", "/bank/transfer", body, {**headers_for(credentials, "POST", "/bank/transfer", body), **extra},
            None)


def test_allowed_denied_and_the_problem_body():
    app, credentials, seen = app_and_credentials()
    ok, denied = call(app, [post(credentials, 50), post(credentials, 500)])
    assert ok.status_code == 200 and ok.json() == {"sent": 50}
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    problem = denied.json()
    assert problem["type"] == "urn:capkit:problem:denied" and problem["status"] == 403
    assert problem["detail"] == "capkit denied this call: amount 500 exceeds max 100 (caveat 3, added at hop 0)"
    assert [r["code"] for r in problem["reasons"]] == ["arg_out_of_range"]
    assert credentials.token_text not in denied.text


def test_the_app_never_sees_the_token_or_proof():
    app, credentials, seen = app_and_credentials()
    call(app, [post(credentials, 50)])
    assert seen and "authorization" not in seen[0] and "capkit-proof" not in seen[0]


@pytest.mark.parametrize("headers, status", [
    ({}, 401),
    ({"Authorization": "Bearer abc"}, 401),
    ({"Authorization": "Capkit "}, 401),
    ({"Authorization": "Capkit capkit_AAAA"}, 401),
    ({"Authorization": "Capkit not-a-token"}, 401),
])
def test_missing_or_malformed_token_is_401(headers, status):
    app, credentials, _ = app_and_credentials()
    (response,) = call(app, [("POST", "/bank/transfer", {"amount": 1}, headers, None)])
    assert response.status_code == status
    assert response.headers["www-authenticate"] == "Capkit"
    assert response.headers["content-type"] == "application/problem+json"


def test_a_body_that_is_not_a_json_object_is_400():
    app, credentials, _ = app_and_credentials()

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bank") as client:
            return await client.post("/bank/transfer", content=b"[1,2]",
                                     headers={**headers_for(credentials, "POST", "/bank/transfer", {}),
                                              "content-type": "application/json"})

    assert anyio.run(main).status_code == 400


def raw_request(app, method: str, path: str, content: bytes, headers):
    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bank") as client:
            return await client.request(method, path, content=content, headers=headers)

    return anyio.run(main)


@pytest.mark.parametrize("body, fragment", [
    (b'{"amount": 1, "amount": 5000}', "duplicate key"),
    (b'{"amount": NaN}', "NaN is not a JSON number"),
    (b'{"amount": 1} {"amount": 5000}', "data follows the value"),
    (b'\xff\xfe', "not valid JSON"),
])
def test_ambiguous_bodies_are_400_not_guessed(body, fragment):
    # The proof is made for {"amount": 1}: were the last duplicate key to win here and the first in the
    # app (or the reverse), the call authorized would not be the call executed.
    app, credentials, seen = app_and_credentials()
    response = raw_request(app, "POST", "/bank/transfer", body,
                           {**headers_for(credentials, "POST", "/bank/transfer", {"amount": 1}),
                            "content-type": "application/json"})
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert seen == []


def test_an_oversized_body_is_413_and_never_reaches_the_app():
    app, credentials, seen = app_and_credentials()
    body = b'{"amount": 1, "pad": "' + b"x" * (1 << 20) + b'"}'
    response = raw_request(app, "POST", "/bank/transfer", body,
                           {**headers_for(credentials, "POST", "/bank/transfer", {"amount": 1}),
                            "content-type": "application/json"})
    assert response.status_code == 413 and seen == []


def test_duplicate_query_parameters_and_duplicate_credential_headers_are_400():
    app, credentials, _ = app_and_credentials()
    query = {"account": "checking"}
    headers = headers_for(credentials, "GET", "/bank/balance", query)
    twice = raw_request(app, "GET", "/bank/balance?account=checking&account=savings", b"", headers)
    assert twice.status_code == 400 and "more than once" in twice.json()["detail"]
    doubled = [("authorization", headers["Authorization"]), ("authorization", headers["Authorization"]),
               ("capkit-proof", headers["Capkit-Proof"])]
    two_tokens = raw_request(app, "GET", "/bank/balance?account=checking", b"", doubled)
    assert two_tokens.status_code == 400 and "more than one authorization header" in two_tokens.json()["detail"]


def test_replayed_proof_and_stolen_token():
    app, credentials, _ = app_and_credentials()
    request = post(credentials, 10)
    thief = Credentials(credentials.token, THIEF, "bank-api")
    first, replay, stolen, bare = call(app, [request, request, post(thief, 10),
                                             ("POST", "/bank/transfer", {"amount": 10},
                                              {"Authorization": f"Capkit {credentials.token_text}"}, None)])
    assert first.status_code == 200
    assert [r["code"] for r in replay.json()["reasons"]] == ["proof_replayed"]
    assert [r["code"] for r in stolen.json()["reasons"]] == ["wrong_holder"]
    assert [r["code"] for r in bare.json()["reasons"]] == ["proof_missing"]


def test_error_answers_commit_and_only_an_explicit_nothing_spent_gives_the_budget_back():
    # Finding 11 of the boundary review: an error answer is not proof that nothing was spent.
    app, credentials, _ = app_and_credentials()
    responses = call(app, [post(credentials, 13), post(credentials, 14), post(credentials, 15), post(credentials, 100),
                           post(credentials, 23), post(credentials, 1)])
    assert [r.status_code for r in responses] == [500, 502, 402, 200, 200, 403]  # 13 + 14 + 100 + 23 = 150
    assert "capkit-outcome" not in responses[2].headers  # the marker never leaves the server
    assert [r["code"] for r in responses[-1].json()["reasons"]] == ["budget_exceeded"]


def test_get_uses_query_parameters_and_public_routes_pass():
    app, credentials, _ = app_and_credentials()
    query = {"account": "checking"}
    balance, health = call(app, [
        ("GET", "/bank/balance", None, headers_for(credentials, "GET", "/bank/balance", query), query),
        ("GET", "/health", None, {}, None)])
    assert balance.status_code == 200 and balance.json() == {"query": query}
    assert health.status_code == 200


def test_the_http_example_runs():
    spec = importlib.util.spec_from_file_location("http_run", ROOT / "examples/http_tools/run.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "examples/http_tools"))
    try:
        spec.loader.exec_module(module)
        outcomes = anyio.run(module.scripted_run)
    finally:
        sys.path.remove(str(ROOT / "examples/http_tools"))
    assert [status for _, status, _ in outcomes] == [200, 200, 403, 403, 403, 403, 403]


# ------------------------------------------------------- the boundary review, findings 3-7
# Each attack sends what capkit authorizes one way and what the app acts on another.


def files_app():
    """A FastAPI file server as people write it: simple parameters may come from the query string."""
    from fastapi import Form

    app = FastAPI()
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier(), audience="files-api")
    acted: list = []

    @app.api_route("/files/read", methods=["GET", "POST"])
    async def read(path: str) -> dict:  # FastAPI reads `path` from the query string, on GET and POST alike
        acted.append(("read", path))
        return {"read": path}

    @app.delete("/files/read")
    async def delete(path: str) -> dict:
        acted.append(("delete", path))
        return {"deleted": path}

    @app.post("/files/form")
    async def form(path: str = Form()) -> dict:
        acted.append(("form", path))
        return {"form": path}

    @app.get("/")
    async def root() -> dict:
        acted.append(("root", ""))
        return {"root": True}

    @app.get("/files/{rest:path}")
    async def anything(rest: str) -> dict:
        acted.append(("path", rest))
        return {"path": rest}

    @app.websocket("/ws")
    async def ws(websocket) -> None:  # type: ignore[no-untyped-def]
        await websocket.accept()
        acted.append(("ws", ""))
        await websocket.send_text("secret")
        await websocket.close()

    token = mint(KEYRING, Holder(PAYER.public_key), Tools("GET:files.read", "POST:files.read", "POST:files.form",
                                                          "GET:files.srv.docs.*"),
                 PathUnder("path", "/srv/docs"), location="bank")
    return app, Credentials(token, PAYER, "files-api"), acted


def test_attack_decoy_body_real_query_is_refused():
    app, credentials, acted = files_app()
    body = {"path": "/srv/docs/notes.txt"}
    response = raw_request(app, "POST", "/files/read?path=/etc/passwd", b'{"path": "/srv/docs/notes.txt"}',
                           {**headers_for(credentials, "POST", "/files/read", body), "content-type": "application/json"})
    assert response.status_code == 400 and "both the body and the query string" in response.json()["detail"]
    assert acted == []
    twice = raw_request(app, "GET", "/files/read?path=/srv/docs/a&path=/etc/passwd", b"",
                        headers_for(credentials, "GET", "/files/read", {"path": "/srv/docs/a"}))
    assert twice.status_code == 400 and acted == []


def test_attack_one_body_two_meanings_is_refused_unless_json():
    app, credentials, acted = files_app()
    body = b'{"path": "/srv/docs/a", "x": "&path=/etc/passwd&"}'
    signed = {"path": "/srv/docs/a", "x": "&path=/etc/passwd&"}
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None, "application/json; charset=latin-1"):
        headers = headers_for(credentials, "POST", "/files/form", signed)
        if content_type is not None:
            headers["content-type"] = content_type
        response = raw_request(app, "POST", "/files/form", body, headers)
        assert response.status_code == 415, content_type
    assert acted == []


def test_attack_the_method_is_part_of_the_grant_and_of_the_proof():
    app, credentials, acted = files_app()
    query = {"path": "/srv/docs/a"}
    read = call(app, [("GET", "/files/read", None, headers_for(credentials, "GET", "/files/read", query), query)])[0]
    assert read.status_code == 200
    # The read grant does not delete; and a proof made for a GET is refused for a DELETE.
    delete = call(app, [("DELETE", "/files/read", None, headers_for(credentials, "DELETE", "/files/read", query),
                         query)])[0]
    assert delete.status_code == 403 and [r["code"] for r in delete.json()["reasons"]] == ["tool_not_granted"]
    widened = Credentials(mint(KEYRING, Holder(PAYER.public_key), Tools("*:files.read"), location="bank"), PAYER,
                          "files-api")
    replayed_method = call(app, [("DELETE", "/files/read", None, headers_for(widened, "GET", "/files/read", query),
                                  query)])[0]
    assert [r["code"] for r in replayed_method.json()["reasons"]] == ["bad_proof"]
    assert acted == [("read", "/srv/docs/a")]


@pytest.mark.parametrize("path", ["/files/srv/docs/%2e%2e/%2e%2e/etc/passwd", "/files/srv/docs/../../etc/passwd",
                                  "/files/srv/docs.private/keys", "/files/srv//docs/x", "/files/srv/docs/./x",
                                  "/files/srv/docs/a%2Fb"])
def test_attack_paths_that_pose_as_tool_names_are_refused(path):
    app, credentials, acted = files_app()
    headers = headers_for(credentials, "GET", "/files/srv/docs/x", {})
    response = raw_request(app, "GET", path, b"", headers)
    assert response.status_code in (400, 403)
    assert acted == []


def test_attack_unguarded_scopes_are_guarded():
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    app, credentials, acted = files_app()
    root = raw_request(app, "GET", "/", b"", {})
    assert root.status_code == 403
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws") as ws:
                ws.receive_text()
    assert closed.value.code == 1008
    assert acted == []


def test_public_routes_are_the_only_exception():
    app = FastAPI()
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier(), public=["/health"])

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    @app.get("/admin")
    async def admin() -> dict:
        return {"admin": True}

    health_response, admin_response = call(app, [("GET", "/health", None, {}, None), ("GET", "/admin", None, {}, None)])
    assert health_response.status_code == 200
    assert admin_response.status_code == 401


def test_check_routes_refuses_what_the_middleware_cannot_see():
    from fastapi import Cookie, Header

    from capkit.integrations.fastapi import UnsafeRoutes, check_routes

    app = FastAPI()

    @app.post("/a")
    async def a(amount: int, body: dict) -> dict:
        return {}

    @app.get("/b")
    async def b(x_amount: str = Header()) -> dict:
        return {}

    @app.get("/c")
    async def c(session: str = Cookie()) -> dict:
        return {}

    @app.get("/ok")
    async def ok(path: str) -> dict:
        return {}

    with pytest.raises(UnsafeRoutes) as refused:
        check_routes(app)
    message = refused.value.message
    assert "/a reads both a body and query parameters" in message
    assert "/b reads request headers" in message and "/c reads cookies" in message and "/ok" not in message


def _asgi_get(app, path: str, query: bytes, headers: dict) -> tuple[int, dict]:
    """One GET straight into the ASGI app with this exact query string (no client re-encodes it)."""
    sent: list = []

    async def main():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                 "client": ("127.0.0.1", 1), "server": ("bank", 80)}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    anyio.run(main)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


@pytest.mark.parametrize("query, fragment", [
    (b"account=\xc3\xa9", "bytes outside ASCII"),       # raw UTF-8: Latin-1 here, UTF-8 in another framework
    (b"account=%FF", "percent-escape that is not UTF-8"),  # U+FFFD in one reader, an error in another
])
def test_query_strings_two_readers_could_read_differently_are_400(query, fragment):
    app, credentials, _ = app_and_credentials()
    headers = headers_for(credentials, "GET", "/bank/balance", {"account": "checking"})
    status, body = _asgi_get(app, "/bank/balance", query, headers)
    assert status == 400 and fragment in body["detail"]
    # a UTF-8 escape is one value for every reader: decided (and here denied: the grant names no such account)
    status, _ = _asgi_get(app, "/bank/balance", b"account=%C3%A9", headers)
    assert status in (200, 403)
