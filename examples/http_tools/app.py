"""An HTTP tool backend (FastAPI) protected by capkit's ASGI middleware.

Routes are tools: POST /files/read is the tool ``POST:files.read``; the JSON
body is its arguments, and the routes read nothing else (``check_routes``
refuses routes that read headers, cookies, forms, or a body and a query
together). The token travels in ``Authorization: Capkit <token>``, the proof
of possession in ``Capkit-Proof``.
"""

from __future__ import annotations

from fastapi import FastAPI

from capkit import Verifier
from capkit.integrations.asgi import CapkitASGIMiddleware
from capkit.integrations.fastapi import check_routes

AUDIENCE = "files-api"
FILES = {"/srv/docs/2026/report.pdf": "quarterly report", "/srv/docs/notes.txt": "notes",
         "/etc/passwd": "root:x:0:0"}


def build_app(verifier: Verifier) -> FastAPI:
    app = FastAPI(title="files")
    app.add_middleware(CapkitASGIMiddleware, verifier=verifier, audience=AUDIENCE)

    @app.post("/files/read")
    async def read(body: dict) -> dict:
        return {"path": body["path"], "content": FILES.get(body["path"], "")}

    @app.post("/files/delete")
    async def delete(body: dict) -> dict:
        FILES.pop(body["path"], None)
        return {"deleted": body["path"]}

    @app.post("/mail/send")
    async def send(body: dict) -> dict:
        return {"sent_to": body["to"]}

    check_routes(app, public=["/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"])
    return app
