"""``capkit approver``, ``capkit approve`` and ``capkit approval-server``: a person approves one exact call."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from capkit.approvals import approve, describe, parse_request
from capkit.core.holder import AgentKey
from capkit.core.timefmt import parse_duration

from ..errors import EXIT_DENIED, InputError, reports_errors
from ..io import escape, print_json


@click.group("approver")
def approver_group() -> None:
    """Approver keys: the key an approval caveat is sealed to, and that approves calls.

    \b
    Example:
      ALICE=$(capkit approver keygen --out alice.key)
      capkit mint --location bank --tool bank.transfer --max amount=5000 \\
        --approval "$ALICE@bank.transfer:amount>100"
    """


@approver_group.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the approver's private key (mode 0600).")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@reports_errors
def approver_keygen(out: Path, force: bool) -> None:
    """Generate an approver key; write it (0600) and print its public key (for --approval).

    \b
    Example:
      ALICE=$(capkit approver keygen --out alice.key)
    """
    if out.exists() and not force:
        raise InputError(f"{out} already exists; use --force to replace it")
    key = AgentKey.generate()
    key.save(out, overwrite=force)
    click.echo(f"wrote approver key {out} (approver {key.public_key.fingerprint})", err=True)
    click.echo(key.public_key.text)


def read_request_text(source: str) -> str:
    """An approval request given as a file path, ``-`` (stdin) or the JSON itself."""
    if source == "-":
        return sys.stdin.read()
    if source.lstrip().startswith("{"):
        return source
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the approval request {source}: {exc.strerror}") from None


@click.command("approve")
@click.argument("request")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The approver's key file.")
@click.option("--yes", is_flag=True, help="Approve without asking (the call is still printed).")
@click.option("--lifetime", default="5m", show_default=True, metavar="DURATION",
              help="How long the approval may be used (at most 1h); it is usable once.")
@click.option("--json", "as_json", is_flag=True, help="Print the discharge and the call as JSON.")
@reports_errors
def approve_command(request: str, key_path: Path, yes: bool, lifetime: str, as_json: bool) -> None:
    """Show the exact call of an approval REQUEST (a file, - or JSON) and, if approved, print its discharge.

    The request comes from a denial with approval_required (capkit check --json,
    an MCP result's _meta, an HTTP 403 body). The discharge approves exactly the
    call shown, with that token, once, for --lifetime. The agent sends it with the
    same call again (capkit check --discharge). Exit 0 approved, 1 declined.

    \b
    Example:
      capkit check "$TOKEN" --key payer.key --tool bank.transfer --arg amount=500 --json \\
        | jq .approval_request > request.json
      capkit approve request.json --key alice.key
    """
    parsed = parse_request(read_request_text(request))
    seconds = parse_duration(lifetime)
    if not 0 < seconds <= 3600:
        raise InputError("--lifetime is at most 1h")
    key = AgentKey.load(key_path)
    for line in describe(parsed).splitlines():
        click.echo(escape(line), err=True)
    if not yes and not click.confirm("Approve exactly this call?", default=False, err=True):
        click.echo("declined", err=True)
        raise SystemExit(EXIT_DENIED)
    discharge = approve(parsed, key, now=time.time(), lifetime=seconds)
    if as_json:
        print_json({"discharge": discharge.serialize(), "call": parsed.to_json()["call"],
                    "lifetime": seconds})
    else:
        click.echo(discharge.serialize())


@click.command("approval-server")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The approver's key file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--lifetime", default="5m", show_default=True, metavar="DURATION",
              help="How long each approval may be used (at most 1h).")
@reports_errors
def approval_server_command(key_path: Path, host: str, port: int, lifetime: str) -> None:
    """Serve a page where the approver sees each requested call and approves or denies it.

    Agents POST approval requests to /api/requests and poll the poll_url they
    get back for the discharge. The page is at the address printed on start,
    with a one-time login secret: only someone who has it can approve.

    \b
    Example:
      capkit approval-server --key alice.key --port 8700
    """
    from capkit.approvals.server import ApprovalServer

    seconds = parse_duration(lifetime)
    if not 0 < seconds <= 3600:
        raise InputError("--lifetime is at most 1h")
    server = ApprovalServer(AgentKey.load(key_path), host=host, port=port, lifetime=seconds)
    click.echo(f"approval page: {server.login_url}", err=True)
    click.echo(f"agents send requests to: {server.base_url}/api/requests", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()

