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
from mcp.types import CallToolResult, TextContent  # noqa: E402

from capkit.integrations import Credentials  # noqa: E402
from capkit.integrations.credentials import DECISION_META, META_KEY, OUTCOME_META  # noqa: E402
from capkit.integrations.mcp import (  # noqa: E402
    DENIED,
    TOKEN_MALFORMED,
    TOKEN_MISSING,
    CapkitMiddleware,
    call_tool,
    list_tools,
    protect,
    read_resource,
)

from .integration_kit import KEYRING, PLANNER, RENT, THIEF, rent_credentials, verifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_example(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bank = load_example("examples/mcp_bank/bank_server.py")


def codes(result) -> list[str]:
    return [r["code"] for r in result.meta[DECISION_META]["reasons"]]


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
        "capkit denied this call: recipient 'attacker-llc' is not one of 'landlord' (caveat 4, added at hop 0 "
        f"before agent {PLANNER.public_key.fingerprint} delegated)")
    assert all(credentials.token_text not in r.content[0].text for r in results)
    assert ledger == []


def test_an_error_result_commits_and_only_nothing_spent_gives_the_budget_back():
    # Finding 11 of the boundary review: a tool that paid and then returned an error got its spend released.
    server = MCPServer("flaky")
    protect(server, verifier(), audience="bank-mcp")

    @server.tool()
    def transfer(recipient: str, amount: float, currency: str) -> CallToolResult:
        if amount == 13:
            raise RuntimeError("the bank is down")  # did the money move? unknown: the spend stands
        if amount == 14:
            return CallToolResult(content=[TextContent(type="text", text="declined")], is_error=True,
                                  _meta={OUTCOME_META: "nothing_spent"})
        return CallToolResult(content=[TextContent(type="text", text="sent")])

    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            failed = await call_tool(client, "transfer", {**RENT, "amount": 13}, credentials)  # the tool raises
            declined = await call_tool(client, "transfer", {**RENT, "amount": 14}, credentials)
            first = await call_tool(client, "transfer", RENT, credentials)
            too_much = await call_tool(client, "transfer", {**RENT, "amount": 750}, credentials)
            rest = await call_tool(client, "transfer", {**RENT, "amount": 737}, credentials)
            return failed, declined, first, too_much, rest

    failed, declined, first, too_much, rest = run(main)
    assert failed.is_error and declined.is_error
    assert not first.is_error
    assert codes(too_much) == ["budget_exceeded"]  # 13 + 1,250 spent: 737 left, the declined 14 given back
    assert not rest.is_error


@pytest.mark.parametrize("meta, code", [
    ({}, TOKEN_MISSING),
    ({META_KEY: None}, TOKEN_MISSING),
    ({"capkit": {"token": "capkit_AAAA"}}, TOKEN_MISSING),  # the old unprefixed key is not read
    ({META_KEY: "capkit_xyz"}, TOKEN_MALFORMED),
    ({META_KEY: {"token": 5}}, TOKEN_MALFORMED),
    ({META_KEY: {"token": "capkit_AAAA"}}, TOKEN_MALFORMED),
    ({META_KEY: {"token": "not a token"}}, TOKEN_MALFORMED),
    ({META_KEY: {"token": "capkit_AAAA", "extra": 1}}, TOKEN_MALFORMED),
    ({META_KEY: {"token": "capkit_AAAA", "proof": 7}}, TOKEN_MALFORMED),
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
    server = MCPServer("probe")
    protect(server, verifier(), audience="bank-mcp")

    @server.tool()
    def balance(ctx: Context) -> str:
        seen.append(json.dumps(ctx.request_context.meta or {}))
        return "ok"

    credentials = rent_credentials()

    async def main():
        async with Client(server) as client:
            return await call_tool(client, "balance", {}, credentials)

    assert not run(main).is_error
    assert seen and "dev.capkit" not in seen[0] and credentials.token_text not in seen[0]


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


# ------------------------------------------------------ the boundary review, findings 8 and 9


def statement_server():
    """A bank that also serves statements (resources), a prompt and a list-taking tool."""
    from capkit import mint
    from capkit.caveats import Holder, OneOf, Prefix, Tools

    server = MCPServer("bank")
    protect(server, verifier(), audience="bank-mcp")
    served: list[str] = []

    @server.resource("bank://statements/{month}")
    def statement(month: str) -> str:
        served.append(month)
        return f"statement {month}: balance 4,210.55"

    @server.resource("bank://admin/keys")
    def keys() -> str:
        served.append("keys")
        return "the signing keys"

    @server.prompt()
    def dispute(charge: str) -> str:
        served.append("dispute")
        return f"Dispute the charge {charge}"

    @server.tool()
    def notify(recipients: list[str], text: str) -> str:
        served.append(",".join(recipients))
        return f"notified {len(recipients)}"

    @server.tool()
    def balance() -> str:
        return "4,210.55 USD"

    token = mint(KEYRING, Holder(PLANNER.public_key), Tools("balance", "notify", "mcp:resources/read"),
                 Prefix("uri", "bank://statements/", tool="mcp:resources/read"),
                 OneOf("recipients", ["alice", "bob"], tool="notify"), location="bank")
    return server, Credentials(token, PLANNER, "bank-mcp"), served


def test_attack_resources_and_prompts_are_gated_like_tools():
    server, credentials, served = statement_server()

    async def main():
        async with Client(server) as client:
            with pytest.raises(MCPError) as anonymous:
                await client.read_resource("bank://statements/2026-11")
            granted = await read_resource(client, "bank://statements/2026-11", credentials)
            with pytest.raises(MCPError) as outside:
                await read_resource(client, "bank://admin/keys", credentials)
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt("dispute", {"charge": "x"}, meta=credentials.meta(
                    "mcp:prompts/get", {"name": "dispute", "arguments": {"charge": "x"}}))
            return anonymous.value, granted, outside.value, prompt.value

    anonymous, granted, outside, prompt = run(main)
    assert anonymous.error.code == TOKEN_MISSING
    assert granted.contents[0].text == "statement 2026-11: balance 4,210.55"
    assert outside.error.code == DENIED and "does not start with 'bank://statements/'" in outside.error.message
    assert prompt.error.code == DENIED and "tool mcp:prompts/get is not granted" in prompt.error.message
    assert served == ["2026-11"]


def test_listings_show_only_what_the_token_grants():
    server, credentials, served = statement_server()

    async def main():
        async with Client(server) as client:
            everything = await client.list_tools()
            mine = await list_tools(client, credentials)
            stolen = Credentials(credentials.token, THIEF, "bank-mcp")
            with pytest.raises(MCPError) as refused:
                await list_tools(client, stolen)
            return everything, mine, refused.value

    everything, mine, refused = run(main)
    assert {t.name for t in everything.tools} == {"notify", "balance"}  # anonymous listing: it grants nothing
    assert {t.name for t in mine.tools} == {"notify", "balance"}
    assert refused.error.code == DENIED and "is held by agent" in refused.error.message


def test_listings_filter_tools_the_token_does_not_grant():
    from capkit import mint
    from capkit.caveats import Holder, Tools

    server, _, _ = statement_server()
    narrow = Credentials(mint(KEYRING, Holder(PLANNER.public_key), Tools("balance"), location="bank"), PLANNER,
                         "bank-mcp")

    async def main():
        async with Client(server) as client:
            return await list_tools(client, narrow)

    assert [t.name for t in run(main).tools] == ["balance"]


def test_a_later_page_of_a_listing_is_decided_as_the_proof_says():
    """A listing is decided as mcp:tools/list with no arguments wherever it is checked (SPEC §18.1), so the
    client helper's proof also covers a page asked for with a cursor."""
    server, credentials, _ = statement_server()

    async def main():
        async with Client(server) as client:
            return await list_tools(client, credentials, cursor="0")

    assert {t.name for t in run(main).tools} <= {"notify", "balance"}  # decided and listed, not bad_proof


def test_attack_arguments_the_sdk_would_transform_are_refused():
    # The SDK parses a JSON string into a list after the middleware saw (and authorized) the string.
    server, credentials, served = statement_server()
    smuggled = {"recipients": '["alice", "mallory"]', "text": "hi"}

    async def main():
        async with Client(server) as client:
            with pytest.raises(MCPError) as transformed:
                await call_tool(client, "notify", smuggled, credentials)
            plain = await call_tool(client, "notify", {"recipients": ["alice", "bob"], "text": "hi"}, credentials)
            denied = await call_tool(client, "notify", {"recipients": ["alice", "mallory"], "text": "hi"},
                                     credentials)
            return transformed.value, plain, denied

    transformed, plain, denied = run(main)
    assert transformed.error.code == -32602 and "recipients" in transformed.error.message
    assert not plain.is_error and codes(denied) == ["arg_not_allowed"]
    assert served == ["alice,bob"]


def test_a_middleware_that_cannot_see_the_tools_refuses():
    from capkit import mint
    from capkit.caveats import Holder, Tools

    server = MCPServer("blind", middleware=[CapkitMiddleware(verifier(), audience="bank-mcp")])

    @server.tool()
    def balance() -> str:
        return "4,210.55 USD"

    credentials = Credentials(mint(KEYRING, Holder(PLANNER.public_key), Tools("balance"), location="bank"), PLANNER,
                              "bank-mcp")

    async def main():
        async with Client(server) as client:
            with pytest.raises(MCPError) as refused:
                await call_tool(client, "balance", {}, credentials)
            return refused.value

    assert "server=" in run(main).error.message


def test_a_request_sent_without_an_id_is_never_passed_to_a_handler():
    """A JSON-RPC message without an id is a notification: one named tools/call (or any request method) must
    not reach a handler undecided, whatever the SDK would do with it; real notifications pass."""
    import dataclasses

    from capkit import Keyring, Verifier
    from capkit.integrations.mcp import CapkitMiddleware

    @dataclasses.dataclass
    class Context:
        method: str
        params: dict
        request_id: object = None
        meta: object = None

    reached = []

    async def call_next(ctx):
        reached.append(ctx.method)
        return "ran"

    middleware = CapkitMiddleware(Verifier(Keyring.generate(), location="bank"))

    async def send(method, params):
        return await middleware(Context(method, params), call_next)

    assert anyio.run(send, "tools/call", {"name": "pay", "arguments": {"amount": 10**6}}) is None
    assert anyio.run(send, "resources/read", {"uri": "file:///etc/shadow"}) is None
    assert anyio.run(send, "notifications/cancelled", {"requestId": 1}) == "ran"
    assert reached == ["notifications/cancelled"]
