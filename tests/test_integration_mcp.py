"""The official MCP SDK: the real client against a capkit-protected MCPServer, in memory and over stdio."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.mcp import TOKEN_MALFORMED, TOKEN_MISSING, CapkitMiddleware, call_tool  # noqa: E402

from .integration_kit import KEYRING, PLANNER, RENT, THIEF, rent_credentials, verifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_example(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bank = load_example("examples/mcp_bank/bank_server.py")


def codes(result) -> list[str]:
    return [r["code"] for r in result.meta["capkit"]["denied"]["reasons"]]


def run(coroutine_fn):
    return anyio.run(coroutine_fn)


@pytest.fixture
def server():
    ledger: list[str] = []
    return bank.build_server(verifier(), ledger), ledger


def test_allowed_calls_reach_the_tools(server):
    mcp_server, ledger = server
    credentials = rent_credentials()

    async def main():
        async with Client(mcp_server) as client:
            balance = await call_tool(client, "balance", {}, credentials)
            paid = await call_tool(client, "transfer", RENT, credentials)
            return balance, paid

    balance, paid = run(main)
    assert not balance.is_error and balance.content[0].text == "4,210.55 USD"
    assert not paid.is_error and paid.content[0].text == "sent 1250.0 USD to landlord"
    assert ledger == ["transfer 1250.0 USD to landlord ()"]


def test_policy_denials_are_tool_errors_with_reasons(server):
    mcp_server, ledger = server
    credentials = rent_credentials()

    async def main():
        async with Client(mcp_server) as client:
            return [await call_tool(client, tool, args, credentials) for tool, args in [
                ("transfer", {**RENT, "recipient": "attacker-llc"}),
                ("transfer", {**RENT, "amount": 5000}),
                ("close_account", {"account": "checking"}),
                ("transfer", {**RENT, "currency": "EUR"}),
            ]]

    results = run(main)
    assert all(r.is_error for r in results)
    assert [codes(r) for r in results] == [["arg_not_allowed"], ["arg_out_of_range"], ["tool_not_granted"],
                                          ["arg_not_allowed"]]
    assert results[0].content[0].text == (
        "capkit denied this call: recipient 'attacker-llc' is not one of 'landlord' (caveat 4, added at hop 0)")
    assert all(credentials.token_text not in r.content[0].text for r in results)
    assert ledger == []


def test_budget_and_release_when_the_tool_fails():
    server = MCPServer("flaky", middleware=[CapkitMiddleware(verifier(), audience="bank-mcp")])

    @server.tool()
    def transfer(recipient: str, amount: float, currency: str) -> str:
        if amount == 13:
            raise RuntimeError("the bank is down")
        return "sent"

    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            failed = await call_tool(client, "transfer", {**RENT, "amount": 13}, credentials)  # the tool raises
            first = await call_tool(client, "transfer", RENT, credentials)
            second = await call_tool(client, "transfer", {**RENT, "amount": 750}, credentials)
            over = await call_tool(client, "transfer", {**RENT, "amount": 1}, credentials)
            return failed, first, second, over

    failed, first, second, over = run(main)
    assert failed.is_error and failed.content[0].text == "Error executing tool transfer"
    assert not first.is_error and not second.is_error  # 1,250 + 750: the failed call's 13 was given back
    assert codes(over) == ["budget_exceeded"]


@pytest.mark.parametrize("meta, code", [
    ({}, TOKEN_MISSING),
    ({"capkit": None}, TOKEN_MISSING),
    ({"capkit": "capkit_xyz"}, TOKEN_MALFORMED),
    ({"capkit": {"token": 5}}, TOKEN_MALFORMED),
    ({"capkit": {"token": "capkit_AAAA"}}, TOKEN_MALFORMED),
    ({"capkit": {"token": "not a token"}}, TOKEN_MALFORMED),
    ({"capkit": {"token": "capkit_AAAA", "extra": 1}}, TOKEN_MALFORMED),
    ({"capkit": {"token": "capkit_AAAA", "proof": 7}}, TOKEN_MALFORMED),
])
def test_missing_or_malformed_token_is_a_protocol_error(server, meta, code):
    mcp_server, ledger = server

    async def main():
        async with Client(mcp_server) as client:
            with pytest.raises(MCPError) as error:
                await client.call_tool("balance", {}, meta=meta)
            return error.value

    error = run(main)
    assert error.error.code == code
    assert not -32768 <= code <= -32000


def test_replayed_proof_is_refused(server):
    mcp_server, ledger = server
    credentials = rent_credentials()

    async def main():
        async with Client(mcp_server) as client:
            meta = credentials.meta("transfer", RENT)
            first = await client.call_tool("transfer", RENT, meta=meta)
            replay = await client.call_tool("transfer", RENT, meta=meta)
            return first, replay

    first, replay = run(main)
    assert not first.is_error
    assert codes(replay) == ["proof_replayed"]
    assert ledger == ["transfer 1250.0 USD to landlord ()"]


def test_stolen_token_and_proof_over_other_arguments(server):
    mcp_server, _ = server
    credentials = rent_credentials()

    async def main():
        async with Client(mcp_server) as client:
            stolen = await call_tool(client, "transfer", RENT, Credentials(credentials.token, THIEF, "bank-mcp"))
            parent = await call_tool(client, "transfer", RENT, Credentials(credentials.token, PLANNER, "bank-mcp"))
            bait = credentials.meta("transfer", {**RENT, "amount": 1})
            switched = await client.call_tool("transfer", RENT, meta=bait)  # proof for 1, sent with 1250
            other_audience = await call_tool(client, "balance", {}, Credentials(credentials.token, credentials.key,
                                                                                 "other-mcp"))
            return stolen, parent, switched, other_audience

    stolen, parent, switched, other_audience = run(main)
    assert codes(stolen) == ["wrong_holder"] and codes(parent) == ["wrong_holder"]
    assert codes(switched) == ["bad_proof"]
    assert codes(other_audience) == ["bad_proof"]


def test_the_tool_never_sees_the_token():
    seen = []
    server = MCPServer("probe", middleware=[CapkitMiddleware(verifier(), audience="bank-mcp")])

    @server.tool()
    def balance(ctx: Context) -> str:
        seen.append(json.dumps(ctx.request_context.meta or {}))
        return "ok"

    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            return await call_tool(client, "balance", {}, credentials)

    assert not run(main).is_error
    assert seen and "capkit" not in seen[0] and credentials.token_text not in seen[0]


def test_over_stdio_with_the_example_server(tmp_path):
    KEYRING.save(tmp_path / "keys.json")
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "examples/mcp_bank/bank_server.py")],
                                   env={"CAPKIT_HOME": str(tmp_path)})
    credentials = rent_credentials()

    async def main():
        async with Client(params) as client:
            allowed = await call_tool(client, "transfer", RENT, credentials)
            denied = await call_tool(client, "transfer", {**RENT, "amount": 9999}, credentials)
            with pytest.raises(MCPError) as missing:
                await client.call_tool("balance", {})
            meta = credentials.meta("balance", {})
            once = await client.call_tool("balance", {}, meta=meta)
            replay = await client.call_tool("balance", {}, meta=meta)
            return allowed, denied, missing.value, once, replay

    allowed, denied, missing, once, replay = run(main)
    assert not allowed.is_error and allowed.content[0].text == "sent 1250.0 USD to landlord"
    assert codes(denied) == ["arg_out_of_range"]
    assert missing.error.code == TOKEN_MISSING
    assert not once.is_error and codes(replay) == ["proof_replayed"]
    assert (tmp_path / "state.db").exists()  # the server kept nonces and budgets in SQLite


def test_the_scripted_multi_agent_example_runs():
    run_module = load_example("examples/mcp_bank/run.py")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        outcomes = anyio.run(run_module.scripted_run, Path(tmp))
    assert [allowed for _, _, allowed, _ in outcomes] == [True, True, False, False, False, False, False]
    assert "recipient 'attacker-llc' is not one of 'landlord'" in outcomes[2][3]
    assert "the token is held by agent" in outcomes[-1][3]


def test_the_mcp_bank_example_runs_as_its_readme_says():
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "examples/mcp_bank/run.py")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = [line.split()[0] for line in done.stdout.splitlines() if line.startswith(("ALLOWED", "DENIED"))]
    assert verdicts == ["ALLOWED", "ALLOWED", "DENIED", "DENIED", "DENIED", "DENIED", "DENIED"]
    assert "recipient 'attacker-llc' is not one of 'landlord'" in done.stdout
    assert "amount 12500 exceeds max 1250" in done.stdout
    assert "tool close_account is not granted" in done.stdout
    assert "exceeds the budget" in done.stdout
    assert "but the token is held by agent" in done.stdout
