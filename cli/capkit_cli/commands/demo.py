"""``capkit demo``: one concrete task, a sub-agent, and prompt-injected calls that are refused."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import click
from ..io import escape
from rich.table import Table

from capkit import AgentKey, Invocation, Keyring, Proof, Token, Verifier, mint, open_store
from capkit.audit import AuditLog, verify_log
from capkit.caveats import Budget, Delegate, Eq, Expires, Holder, Max, MaxDepth, OneOf, Tools
from capkit.core.messages import delegation_message
from capkit.core.token import binary
from capkit.core import b64 as _b64

from ..errors import InputError, reports_errors
from ..io import console, print_json

RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD", "reference": "RENT-2026-12"}


def _drop_caveat(token: Token, index: int) -> str:
    """A forgery: the token with one caveat removed and the signature kept."""
    caveats = token.encoded_caveats[:index] + token.encoded_caveats[index + 1:]
    raw = binary.RawMacaroon(token.location.encode(), token.identifier.encode(), caveats, token.signature)
    return "capkit_" + _b64.encode(binary.encode(raw))


def run_demo(home: Path, now: int, store_url: str | None = None) -> dict[str, Any]:
    """Run the scenario in ``home`` (state in ``store_url``, else SQLite in the home); return what happened."""
    keyring = Keyring.generate(now=now)
    keyring.save(home / "keys.json")
    planner, payer, thief = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    planner.save(home / "planner.key")
    payer.save(home / "payer.key")
    store = open_store(store_url or f"sqlite://{home.resolve() / 'state.db'}")
    # Every decision goes to a hash-chained audit log whose checkpoints the bank's audit key signs.
    audit_key = AgentKey.generate()
    audit_path = home / "audit.jsonl"
    audit = AuditLog(audit_path, audit_key, origin="bank.example/audit")
    # Holder-bound tokens only (bearer tokens refused); budgets, nonces and revocations in the store.
    verifier = Verifier(keyring, location="bank", store=store, clock=lambda: now, audit=audit)

    # The person grants the planner agent exactly the task, bound to the planner's key, one delegation at most,
    # and at most 1,250 USD per calendar month in total.
    # The argument caveats are scoped to bank.transfer, so a call of another tool is refused for that alone.
    pay = "bank.transfer"
    grant = mint(keyring, Holder(planner.public_key), MaxDepth(1), Tools(pay),
                 OneOf("recipient", ["landlord"], tool=pay), Max("amount", 1250, tool=pay),
                 Eq("currency", "USD", tool=pay), Budget("amount", 1250, "month", tool=pay), Expires(now + 86400),
                 location="bank")
    # The planner delegates to the payments sub-agent: 15 minutes, and the rent reference.
    sub_token = grant.delegate(planner, payer.public_key, Eq("reference", "RENT-2026-12", tool=pay),
                               Expires(now + 900))
    widened = sub_token.attenuate(Max("amount", 100000))  # a hijacked sub-agent "widens" its token
    forged_delegation = sub_token.attenuate(Delegate(thief.public_key, thief.sign(
        delegation_message(sub_token.signature, thief.public_key, 2))))
    captured = Invocation("bank.transfer", RENT, at=now)
    captured_proof = Proof.create(payer, sub_token, captured, at=now).serialize()

    def signed_by(key: AgentKey | None) -> Callable[[Any, Invocation], str | None]:
        return lambda token, call: None if key is None else Proof.create(key, token, call, at=call.at).serialize()

    def revoke_payer() -> None:
        verifier.revoke(payer_hop(), "the person withdrew the payments agent")

    payer_hop = lambda: verifier.verify_chain(sub_token).chain[1].id  # noqa: E731
    steps = [
        ("payer", "pays the rent as planned", sub_token, "bank.transfer", RENT, now, signed_by(payer)),
        ("injected", "pay the rent a second time", sub_token, "bank.transfer", RENT, now, signed_by(payer)),
        ("injected", "pay the attacker instead", sub_token, "bank.transfer", {**RENT, "recipient": "attacker-llc"}, now,
         signed_by(payer)),
        ("injected", "pay ten times the rent", sub_token, "bank.transfer", {**RENT, "amount": 12500}, now,
         signed_by(payer)),
        ("injected", "close the account", sub_token, "bank.close_account", {"account": "checking"}, now,
         signed_by(payer)),
        ("injected", "widen the token, then pay 12,500", widened, "bank.transfer", {**RENT, "amount": 12500}, now,
         signed_by(payer)),
        ("thief", "uses the stolen token (no key)", sub_token, "bank.transfer", RENT, now, signed_by(None)),
        ("thief", "signs with its own key", sub_token, "bank.transfer", RENT, now, signed_by(thief)),
        ("thief", "re-delegates the token to itself", forged_delegation, "bank.transfer", RENT, now, signed_by(thief)),
        ("thief", "replays a captured proof", sub_token, "bank.transfer", RENT, now, lambda t, c: captured_proof),
        ("forger", "drops the recipient caveat", _drop_caveat(sub_token, 3), "bank.transfer",
         {**RENT, "recipient": "attacker-llc"}, now, signed_by(payer)),
        ("payer", "pays again two days later", sub_token, "bank.transfer", RENT, now + 2 * 86400, signed_by(payer)),
        ("person", "revokes the payer; the payer tries a 1 USD fee", sub_token, "bank.transfer",
         {**RENT, "amount": 1}, now, signed_by(payer)),
    ]
    # The captured proof was first used by one of the payer's real calls (a balance check, allowed, no spend).
    first_use = verifier.authorize(sub_token.attenuate(), captured, captured_proof)
    assert first_use.allowed, first_use.explain()
    verifier.cancel(first_use)
    rows = []
    for number, (who, what, token, tool, args, at, prove) in enumerate(steps, start=1):
        if who == "person":
            revoke_payer()
        text = token if isinstance(token, str) else token.serialize()
        call = Invocation(tool, args, at=at)
        decision = verifier.authorize(text, call, prove(token if not isinstance(token, str) else sub_token, call))
        if decision.allowed:
            verifier.complete(decision, spent=True)  # the bank made the transfer
        rows.append({
            "step": number, "who": who, "what": what, "tool": tool, "args": args,
            "at": "now" if at == now else f"now + {(at - now) // 86400} days",
            "allowed": decision.allowed, "codes": list(decision.codes),
            "explanation": decision.explain(),
            "reasons": [str(r) for r in decision.reasons],
        })
    verifier.close()  # the audit log writes its final signed checkpoint
    lines = audit_path.read_bytes().splitlines(keepends=True)
    report = verify_log(lines, audit_key.public_key)
    # Someone with write access to the log makes the first refused payment to the attacker look allowed.
    tampered = [line.replace(b'"allowed":false', b'"allowed":true', 1) if b"attacker-llc" in line else line
                for line in lines]
    caught = verify_log(tampered, audit_key.public_key)
    return {
        "task": "pay the December rent of 1,250 USD to the landlord",
        "audit": {"public_key": audit_key.public_key.text, "intact": report.intact, "records": report.records,
                  "checkpoints": report.checkpoints, "summary": report.summary(),
                  "after_editing_a_denial": caught.summary()},
        "home": str(home),
        "agents": {"planner": planner.public_key.fingerprint, "payer": payer.public_key.fingerprint,
                   "thief": thief.public_key.fingerprint},
        "grant": [c.describe() for c in grant.caveats],
        "delegation_adds": [c.describe() for c in sub_token.caveats[len(grant.caveats):]],
        "token_id": grant.id,
        "store": store.url,
        "calls": rows,
    }


def _call_text(row: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in row["args"].items())
    return f"{row['tool']}({args})" + ("" if row["at"] == "now" else f" at {row['at']}")


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
@click.option("--store", "store_url", metavar="URL", envvar="CAPKIT_STORE",
              help="Where budgets, nonces and revocations live (default: SQLite in the demo's temporary home).")
@click.option("--audit", "audit_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the demo's audit log here (then: capkit audit verify FILE --key <the key it prints>).")
@reports_errors
def demo_command(as_json: bool, store_url: str | None, audit_out: Path | None) -> None:
    """Walk through one task end to end in a temporary home.

    A person grants a planner agent "pay the December rent of 1,250 USD to
    the landlord", bound to the planner's key; the planner delegates a
    narrower token to a payments sub-agent; the bank's verifier allows the
    planned payment and refuses prompt-injected calls (another recipient, a
    larger amount, a second payment over the monthly budget, another tool, a
    widened token), a thief holding the stolen token (without the key, with
    its own key, re-delegating it, replaying a proof), a forged token, a late
    call and a call after the person revoked the sub-agent, each with its
    reason. State (budgets, nonces, revocations) is kept in SQLite.

    \b
    Example:
      capkit demo
      capkit demo --json | jq '.calls[] | {what, allowed, codes}'
    """
    with tempfile.TemporaryDirectory(prefix="capkit-demo-") as tmp:
        result = run_demo(Path(tmp), int(time.time()), store_url)
        if audit_out is not None:
            try:
                shutil.copyfile(Path(tmp) / "audit.jsonl", audit_out)
            except OSError as exc:
                raise InputError(f"cannot write {audit_out}: {exc.strerror}") from None
            result["audit"]["log"] = str(audit_out)
    if as_json:
        print_json(result)
        return
    out = console(min_width=130)
    where = (f"state: {escape(result['store'])}" if store_url else
             "state: SQLite in a temporary home, deleted afterwards; --store URL keeps it")
    out.print(f"[bold]Task:[/bold] {result['task']}   [dim]({where})[/dim]")
    agents = result["agents"]
    out.print(f"[bold]Agents[/bold]: planner {agents['planner']}, payer {agents['payer']} (thief {agents['thief']})")
    out.print("[bold]Grant[/bold] (minted by the person for the planner, location 'bank'): " + "; ".join(result["grant"]))
    out.print("[bold]Planner delegates to the payer[/bold], adding: " + "; ".join(result["delegation_adds"]))
    table = Table(title="What the bank's verifier decided", show_lines=True)
    table.add_column("#")
    table.add_column("who: intent, and the call", ratio=2, overflow="fold")
    table.add_column("decision")
    table.add_column("why (reason code: sentence)", ratio=3, overflow="fold")
    for row in result["calls"]:
        verdict = "[green]allowed[/green]" if row["allowed"] else "[red]denied[/red]"
        why = "\n".join(f"{code}: {text}" for code, text in zip(row["codes"], row["reasons"])) or "every caveat holds"
        table.add_row(str(row["step"]), f"{escape(row['who'])}: {escape(row['what'])}\n[dim]{escape(_call_text(row))}[/dim]",
                      verdict, escape(why))
    out.print(table)
    denied = sum(not r["allowed"] for r in result["calls"])
    out.print(f"{len(result['calls']) - denied} allowed, {denied} denied; no model took part in any decision.")
    audit = result["audit"]
    out.print(f"[bold]Audit log[/bold]: {escape(audit['summary'])}. Rewriting the refused payment to the "
              f"attacker as allowed: {escape(audit['after_editing_a_denial'])}")
    if "log" in audit:
        out.print(f"Kept in {escape(audit['log'])}: capkit audit verify {escape(audit['log'])} --key {audit['public_key']}")
    out.print("Try it yourself: capkit --help shows a session with agent keys, delegate and check --key.")
