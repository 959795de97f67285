"""``capkit check``: authorize one call with the local keyring, as a tool backend would."""

from __future__ import annotations

import time
from pathlib import Path

import click

from capkit import Invocation, Verifier, strictjson
from capkit.core.discharge import Discharge
from capkit.core.proof import Proof
from capkit.core.timefmt import parse_instant

from ..errors import EXIT_DENIED, InputError, reports_errors
from ..home import home_option, load_keyring, open_cli_audit, open_cli_store, store_option
from ..io import escape, parse_token, print_json, read_token_text
from ..values import split_assignment, typed_value
from .agent import load_agent_key


def build_args(pairs: tuple[str, ...], args_json: str | None) -> dict:
    """Arguments from ``--args-json`` (exact JSON types) and ``--arg NAME=VALUE`` (typed, see --help)."""
    args: dict = {}
    if args_json is not None:
        try:
            args = strictjson.loads(args_json)
        except strictjson.StrictJSONError as exc:
            raise InputError(f"--args-json is {exc}") from None
        if not isinstance(args, dict):
            raise InputError("--args-json must be a JSON object")
    for pair in pairs:
        name, raw = split_assignment(pair, "--arg")
        if name in args:
            raise InputError(f"argument {name!r} is given twice")
        args[name] = typed_value(raw)
    return args


@click.command("check")
@click.argument("token")
@click.option("--tool", required=True, metavar="NAME", help="The tool being called.")
@click.option("--arg", "pairs", multiple=True, metavar="NAME=VALUE",
              help="An argument. 12.50 is a number (exact); true/false/null are JSON; 00123 and '\"7\"' are text; "
                   "anything else is text.")
@click.option("--args-json", metavar="JSON", help="All arguments as one JSON object (exact types).")
@click.option("--audience", metavar="NAME", help="The audience (backend) the call is addressed to.")
@click.option("--at", "at", metavar="WHEN", help="Time of the call: RFC 3339, Unix seconds, or +1h/-10m from now.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Agent key file: sign a proof of possession for this call, as the agent's runtime would.")
@click.option("--proof", metavar="PROOF", help="A proof made elsewhere (capkit prove, an agent runtime).")
@click.option("--allow-bearer", is_flag=True, help="Accept a token that names no holder (off by default).")
@click.option("--dry-run", is_flag=True,
              help="Give back what an allowed call reserved (budgets and call limits), as for a call never made.")
@click.option("--discharge", "discharges", multiple=True, metavar="DISCHARGE",
              help="An approval (capkit approve's output) for this exact call; bound to the token here. Repeatable.")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the decision (and its settlement) to this audit log, signed by the home's audit key.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@home_option
@store_option
@reports_errors
def check_command(token: str, tool: str, pairs: tuple[str, ...], args_json: str | None, audience: str | None,
                  at: str | None, key_path: Path | None, proof: str | None, allow_bearer: bool, dry_run: bool,
                  discharges: tuple[str, ...], audit_path: Path | None, as_json: bool, home: Path | None,
                  store_url: str | None) -> None:
    """Authorize one call of TOKEN (or - for stdin) with the local keyring.

    A holder-bound token needs a proof: --key signs one with the agent's key
    file. A bearer token (no holder) is refused unless --allow-bearer. An
    allowed check counts against budgets and call limits in the store, as the
    call would (--dry-run gives it back). Exit 0
    if allowed, 1 if denied (every reason is printed with its code), 2 for a
    usage or input error (including a token that is not well-formed).

    \b
    Example:
      capkit check "$TOKEN" --key payer.key --tool bank.transfer \\
        --arg recipient=landlord --arg amount=1250 --arg currency=USD
      capkit check - --allow-bearer --tool bank.transfer --args-json '{"recipient": "landlord", "amount": 1250.0}'
    """
    now = int(time.time())
    invocation = Invocation(tool, build_args(pairs, args_json), audience,
                            None if at is None else parse_instant(at, now=now))
    text = read_token_text(token)
    parsed = parse_token(text)  # a token that is not even well-formed is an input error (exit 2), not a denial
    if key_path is not None and proof is not None:
        raise InputError("give --key or --proof, not both")
    if key_path is not None:
        moment = now if invocation.at is None else int(invocation.at)  # type: ignore[arg-type]
        proof = Proof.create(load_agent_key(key_path), parsed, invocation, at=moment).serialize()
    audit = None if audit_path is None else open_cli_audit(home, audit_path)
    verifier = Verifier(load_keyring(home), location=parsed.location, allow_bearer=allow_bearer,
                        store=open_cli_store(home, store_url), audit=audit)
    try:
        bound = [Discharge.parse(d).bind(parsed.signature).serialize() for d in discharges]
        decision = verifier.authorize(text, invocation, proof, bound)
        if decision.allowed:
            if dry_run:
                verifier.cancel(decision)
            else:
                verifier.complete(decision, spent=True)
    finally:
        verifier.close()
    if as_json:
        print_json(decision.to_json())
    elif decision.allowed:
        click.echo("allowed" + (f" (held by agent {decision.chain[-1].holder})" if decision.chain[-1:]
                                and decision.chain[-1].holder else ""))
    else:
        click.echo("denied:")
        for reason in decision.reasons:
            click.echo(f"  [{reason.code}] {escape(str(reason))}")
        if decision.approval is not None:
            click.echo("ask the approver: run this check again with --json, save .approval_request, and have them "
                       "run capkit approve on it; then add --discharge with what it prints")
    if not decision.allowed:
        raise SystemExit(EXIT_DENIED)



@click.command("prove")
@click.argument("token")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The holder's agent key file.")
@click.option("--tool", required=True, metavar="NAME", help="The tool being called.")
@click.option("--arg", "pairs", multiple=True, metavar="NAME=VALUE", help="An argument (typed as in check).")
@click.option("--args-json", metavar="JSON", help="All arguments as one JSON object (exact types).")
@click.option("--audience", metavar="NAME", help="The audience (backend) the call is addressed to.")
@reports_errors
def prove_command(token: str, key_path: Path, tool: str, pairs: tuple[str, ...], args_json: str | None,
                  audience: str | None) -> None:
    """Print a proof of possession for one call of TOKEN (or - for stdin), valid for about a minute.

    The proof binds the token, the tool, the exact arguments and the audience;
    send it with the call (HTTP header Capkit-Proof, MCP _meta).

    \b
    Example:
      PROOF=$(capkit prove "$TOKEN" --key payer.key --tool bank.transfer --arg amount=50)
    """
    parsed = parse_token(read_token_text(token))
    invocation = Invocation(tool, build_args(pairs, args_json), audience)
    click.echo(Proof.create(load_agent_key(key_path), parsed, invocation).serialize())
