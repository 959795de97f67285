"""``capkit demo``: one concrete task, a sub-agent, and prompt-injected calls that are refused."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from capkit import Invocation, Keyring, Token, Verifier, mint
from capkit.caveats import Eq, Expires, Max, OneOf, Tools
from capkit.token import binary
from capkit import _b64

from ..io import console, print_json

RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD", "reference": "RENT-2026-12"}


def _drop_caveat(token: Token, index: int) -> str:
    """A forgery: the token with one caveat removed and the signature kept."""
    caveats = token.encoded_caveats[:index] + token.encoded_caveats[index + 1:]
    raw = binary.RawMacaroon(token.location.encode(), token.identifier.encode(), caveats, token.signature)
    return "capkit_" + _b64.encode(binary.encode(raw))


def run_demo(home: Path, now: int) -> dict[str, Any]:
    """Run the scenario in ``home``; return what happened as data."""
    keyring = Keyring.generate(now=now)
    keyring.save(home / "keys.json")
    verifier = Verifier(keyring, clock=lambda: now)

    # The person grants the planner agent exactly the task.
    grant = mint(keyring, Tools("bank.transfer"), OneOf("recipient", ["landlord"]), Max("amount", 1250),
                 Eq("currency", "USD"), Expires(now + 86400), location="bank")
    # The planner narrows it for the payments sub-agent: 15 minutes, and the rent reference.
    sub_token = grant.attenuate(Eq("reference", "RENT-2026-12"), Expires(now + 900))
    widened = sub_token.attenuate(Max("amount", 100000))  # a hijacked sub-agent "widens" its token

    steps = [
        ("sub-agent", "pays the rent as planned", sub_token, "bank.transfer", RENT, now),
        ("injected", "pay the attacker instead", sub_token, "bank.transfer", {**RENT, "recipient": "attacker-llc"}, now),
        ("injected", "pay ten times the rent", sub_token, "bank.transfer", {**RENT, "amount": 12500}, now),
        ("injected", "close the account", sub_token, "bank.close_account", {"account": "checking"}, now),
        ("injected", "widen the token, then pay 12,500", widened, "bank.transfer", {**RENT, "amount": 12500}, now),
        ("forger", "drop the recipient caveat", _drop_caveat(sub_token, 1), "bank.transfer",
         {**RENT, "recipient": "attacker-llc"}, now),
        ("sub-agent", "pays again two days later", sub_token, "bank.transfer", RENT, now + 2 * 86400),
    ]
    rows = []
    for number, (who, what, token, tool, args, at) in enumerate(steps, start=1):
        text = token if isinstance(token, str) else token.serialize()
        decision = verifier.authorize(text, Invocation(tool, args, at=at))
        rows.append({
            "step": number, "who": who, "what": what, "tool": tool, "args": args,
            "at": "now" if at == now else f"now + {(at - now) // 86400} days",
            "allowed": decision.allowed, "codes": list(decision.codes),
            "explanation": decision.explain(),
            "reasons": [str(r) for r in decision.reasons],
        })
    return {
        "task": "pay the December rent of 1,250 USD to the landlord",
        "home": str(home),
        "grant": [c.describe() for c in grant.caveats],
        "sub_agent_adds": [c.describe() for c in sub_token.caveats[len(grant.caveats):]],
        "token_id": grant.id,
        "calls": rows,
    }


def _call_text(row: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in row["args"].items())
    return f"{row['tool']}({args})" + ("" if row["at"] == "now" else f" at {row['at']}")


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
def demo_command(as_json: bool) -> None:
    """Walk through one task end to end in a temporary home.

    A person grants an agent "pay the December rent of 1,250 USD to the
    landlord"; the agent narrows the token for a payments sub-agent; the bank's
    verifier allows the planned payment and refuses prompt-injected calls
    (another recipient, a larger amount, another tool, a widened or forged
    token, after expiry), each with its reason.

    \b
    Example:
      capkit demo
      capkit demo --json | jq '.calls[] | {what, allowed, codes}'
    """
    with tempfile.TemporaryDirectory(prefix="capkit-demo-") as tmp:
        result = run_demo(Path(tmp), int(time.time()))
    if as_json:
        print_json(result)
        return
    out = console(min_width=130)
    out.print(f"[bold]Task:[/bold] {result['task']}")
    out.print("[bold]Grant[/bold] (minted by the person, location 'bank'): " + "; ".join(result["grant"]))
    out.print("[bold]Sub-agent token[/bold] adds: " + "; ".join(result["sub_agent_adds"]))
    table = Table(title="What the bank's verifier decided", show_lines=True)
    table.add_column("#")
    table.add_column("who: intent, and the call", ratio=2, overflow="fold")
    table.add_column("decision")
    table.add_column("why (reason code: sentence)", ratio=3, overflow="fold")
    for row in result["calls"]:
        verdict = "[green]allowed[/green]" if row["allowed"] else "[red]denied[/red]"
        why = "\n".join(f"{code}: {text}" for code, text in zip(row["codes"], row["reasons"])) or "every caveat holds"
        table.add_row(str(row["step"]), f"{row['who']}: {row['what']}\n[dim]{_call_text(row)}[/dim]", verdict, why)
    out.print(table)
    denied = sum(not r["allowed"] for r in result["calls"])
    out.print(f"{len(result['calls']) - denied} allowed, {denied} denied; no model took part in any decision.")
