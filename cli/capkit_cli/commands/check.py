"""``capkit check``: authorize one call with the local keyring, as a tool backend would."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from capkit import Invocation, Verifier
from capkit.timefmt import parse_instant

from ..errors import EXIT_DENIED, InputError, reports_errors
from ..home import home_option, load_keyring
from ..io import parse_token, read_token_text, print_json
from ..values import split_assignment, typed_value


def build_args(pairs: tuple[str, ...], args_json: str | None) -> dict:
    """Arguments from ``--args-json`` (exact JSON types) and ``--arg NAME=VALUE`` (typed, see --help)."""
    args: dict = {}
    if args_json is not None:
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise InputError(f"--args-json is not valid JSON: {exc.msg}") from None
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
              help="An argument. 12.50 is a number (exact); true/false/null are JSON; '\"007\"' is text; else text.")
@click.option("--args-json", metavar="JSON", help="All arguments as one JSON object (exact types).")
@click.option("--audience", metavar="NAME", help="The audience (backend) the call is addressed to.")
@click.option("--at", "at", metavar="WHEN", help="Time of the call: RFC 3339, Unix seconds, or +1h/-10m from now.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@home_option
@reports_errors
def check_command(token: str, tool: str, pairs: tuple[str, ...], args_json: str | None, audience: str | None,
                  at: str | None, as_json: bool, home: Path | None) -> None:
    """Authorize one call of TOKEN (or - for stdin) with the local keyring.

    Exit 0 if allowed, 1 if denied (every reason is printed with its code),
    2 for a usage or input error (including a token that is not well-formed).

    \b
    Example:
      capkit check "$TOKEN" --tool bank.transfer --arg recipient=landlord --arg amount=1250 --arg currency=USD
      capkit check - --tool bank.transfer --args-json '{"recipient": "landlord", "amount": 1250.0}'
    """
    now = int(time.time())
    invocation = Invocation(tool, build_args(pairs, args_json), audience,
                            None if at is None else parse_instant(at, now=now))
    text = read_token_text(token)
    parse_token(text)  # a token that is not even well-formed is an input error (exit 2), not a denial
    decision = Verifier(load_keyring(home)).authorize(text, invocation)
    if as_json:
        print_json(decision.to_json())
    elif decision.allowed:
        click.echo("allowed")
    else:
        click.echo("denied:")
        for reason in decision.reasons:
            click.echo(f"  [{reason.code}] {reason}")
    if not decision.allowed:
        raise SystemExit(EXIT_DENIED)

