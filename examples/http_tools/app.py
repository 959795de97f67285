"""An HTTP tool backend (FastAPI) protected by capkit's ASGI middleware.

Routes are tools: POST /files/read is the tool ``files.read``; the JSON body
is its arguments. The token travels in ``Authorization: Capkit <token>``, the
proof of possession in ``Capkit-Proof``.
"""

from __future__ import annotations

from fastapi import FastAPI

from capkit import Verifier
from capkit.integrations.asgi import CapkitASGIMiddleware

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

    return app
