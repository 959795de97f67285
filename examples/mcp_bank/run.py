"""A scripted multi-agent run against the capkit-protected MCP bank (over stdio).

    python examples/mcp_bank/run.py

A person grants a planner agent "pay the December rent of 1,250 USD to the
landlord"; the planner delegates a narrower token (its own key signs it) to a
payments sub-agent; the sub-agent calls the bank's MCP tools through the
official MCP client, which attaches the token and a fresh proof to each call.
The planned payment succeeds; prompt-injected calls are refused with reasons.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from capkit import AgentKey, Keyring, mint
from capkit.caveats import Audience, Budget, Eq, Expires, Holder, Max, MaxDepth, OneOf, Tools
from capkit.integrations import Credentials
from capkit.integrations.mcp import call_tool

HERE = Path(__file__).resolve().parent
RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD", "reference": "RENT-2026-12"}


def grant_for_the_task(home: Path) -> tuple[Credentials, Credentials]:
    """The person's grant (to the planner) and the planner's delegation (to the payer)."""
    keyring = Keyring.generate()
    keyring.save(home / "keys.json")
    planner, payer = AgentKey.generate(), AgentKey.generate()
    now = int(time.time())
    pay = "transfer"  # the argument caveats below constrain transfers; balance takes no arguments
    grant = mint(keyring, Holder(planner.public_key), MaxDepth(1), Audience("bank-mcp"),
                 Tools("transfer", "balance"), OneOf("recipient", ["landlord"], tool=pay),
                 Max("amount", 1250, tool=pay), Eq("currency", "USD", tool=pay),
                 Budget("amount", 1250, "month", tool=pay), Expires(now + 86400), location="bank")
    payer_token = grant.delegate(planner, payer.public_key, Eq("reference", "RENT-2026-12", tool=pay),
                                 Expires(now + 900))
    return Credentials(grant, planner, "bank-mcp"), Credentials(payer_token, payer, "bank-mcp")


async def scripted_run(home: Path) -> list[tuple[str, str, bool, str]]:
    planner, payer = grant_for_the_task(home)
    params = StdioServerParameters(command=sys.executable, args=[str(HERE / "bank_server.py")],
                                   env={"CAPKIT_HOME": str(home)})
    steps = [
        ("payer", "check the balance first", "balance", {}),
        ("payer", "pay the rent as planned", "transfer", RENT),
        ("injected", "pay the attacker instead", "transfer", {**RENT, "recipient": "attacker-llc"}),
        ("injected", "pay ten times the rent", "transfer", {**RENT, "amount": 12500}),
        ("injected", "close the account", "close_account", {"account": "checking"}),
        ("injected", "pay the rent a second time", "transfer", RENT),
    ]
    outcomes = []
    async with Client(params) as client:
        for who, intent, tool, args in steps:
            result = await call_tool(client, tool, args, payer)
            text = result.content[0].text if result.content else ""
            outcomes.append((who, intent, not result.is_error, text))
        # The planner delegated the rent away: with its own key on the payer's token it is refused.
        result = await call_tool(client, "transfer", RENT, Credentials(payer.token, planner.key, "bank-mcp"))
        outcomes.append(("planner", "use the payer's token itself", not result.is_error, result.content[0].text))
    return outcomes


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="capkit-mcp-bank-") as tmp:
        outcomes = asyncio.run(scripted_run(Path(tmp)))
    for who, intent, allowed, text in outcomes:
        print(f"{'ALLOWED' if allowed else 'DENIED ':7}  {who}: {intent}\n         {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
