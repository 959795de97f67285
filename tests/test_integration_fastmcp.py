"""fastmcp: its real client against a capkit-protected FastMCP server, in memory and over stdio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("fastmcp")

from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import PythonStdioTransport  # noqa: E402
from fastmcp.exceptions import ToolError  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.credentials import META_KEY  # noqa: E402
from capkit.integrations.fastmcp import TOKEN_MALFORMED, TOKEN_MISSING, call_tool  # noqa: E402

from .fastmcp_bank import build  # noqa: E402
from .integration_kit import KEYRING, RENT, THIEF, rent_credentials, verifier  # noqa: E402

HERE = Path(__file__).resolve().parent


async def attempt(client, name, args, credentials=None, meta=None):
    """('ok', text), ('denied', text) or ('protocol', code)."""
    try:
        if credentials is not None:
            result = await call_tool(client, name, args, credentials)
        else:
            result = await client.call_tool(name, args, meta=meta)
    except ToolError as exc:
        return "denied", str(exc)
    except MCPError as exc:
        return "protocol", exc.error.code
    return "ok", result.data


def test_allow_deny_release_and_stripping():
    seen: list = []
    server = build(verifier(), seen)
    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            return [
                await attempt(client, "balance", {}, credentials),
                await attempt(client, "transfer", RENT, credentials),
                await attempt(client, "transfer", {**RENT, "recipient": "attacker-llc"}, credentials),
                await attempt(client, "transfer", {**RENT, "amount": 13}, credentials),  # the tool raises
                await attempt(client, "transfer", {**RENT, "amount": 750}, credentials),
                await attempt(client, "transfer", {**RENT, "amount": 737}, credentials),
                await attempt(client, "transfer", RENT, Credentials(credentials.token, THIEF, "bank-mcp")),
                await attempt(client, "balance", {}, meta={}),
                await attempt(client, "balance", {}, meta={META_KEY: {"token": "capkit_AAAA"}}),
            ]

    results = anyio.run(main)
    assert results[0] == ("ok", "4,210.55 USD")
    assert results[1] == ("ok", "sent 1250.0 USD to landlord")
    assert results[2][0] == "denied" and "recipient 'attacker-llc' is not one of 'landlord'" in results[2][1]
    assert results[3][0] == "denied" and "the bank is down" in results[3][1]
    assert results[4][0] == "denied" and "exceeds the budget" in results[4][1]  # the failed call's 13 stays spent
    assert results[5] == ("ok", "sent 737.0 USD to landlord")
    assert results[6][0] == "denied" and "is held by agent" in results[6][1]
    assert results[7] == ("protocol", TOKEN_MISSING)
    assert results[8] == ("protocol", TOKEN_MALFORMED)
    assert seen and all(not any(k.startswith("dev.capkit") for k in m) for m in seen)
    assert all(credentials.token_text not in json.dumps(m) for m in seen)


def test_replayed_proof():
    server = build(verifier())
    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            meta = credentials.meta("balance", {})
            return await attempt(client, "balance", {}, meta=meta), await attempt(client, "balance", {}, meta=meta)

    first, replay = anyio.run(main)
    assert first == ("ok", "4,210.55 USD")
    assert replay[0] == "denied" and "already used" in replay[1]


def test_over_stdio(tmp_path):
    KEYRING.save(tmp_path / "keys.json")
    transport = PythonStdioTransport(str(HERE / "fastmcp_bank.py"), env={"CAPKIT_HOME": str(tmp_path)},
                                     python_cmd=sys.executable)
    credentials = rent_credentials()

    async def main():
        async with Client(transport) as client:
            return [await attempt(client, "transfer", RENT, credentials),
                    await attempt(client, "transfer", {**RENT, "amount": 5000}, credentials),
                    await attempt(client, "balance", {}, meta={})]

    allowed, denied, missing = anyio.run(main)
    assert allowed == ("ok", "sent 1250.0 USD to landlord")
    assert denied[0] == "denied" and "amount 5000 exceeds max 1250" in denied[1]
    assert missing == ("protocol", TOKEN_MISSING)
