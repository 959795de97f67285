"""``capkit audit``: verify, show and keep the head of tamper-evident audit logs (specs/AUDIT.md)."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Iterable

import click
from rich.table import Table

from capkit.audit import AuditReport, log_lines, parse_checkpoint, verify_log, vkey
from capkit.core.errors import MalformedKey
from capkit.core.publickey import PublicKey

from ..errors import EXIT_DENIED, InputError, reports_errors
from ..home import audit_key, home_option
from ..io import console, escape, print_json

log_name_option = click.option("--log", "log_name", metavar="NAME",
                               help="The log's name, when LOG is a postgresql:// URL (the verifier's log).")
key_option = click.option("--key", "key_text", metavar="capkit_pk_...",
                          help="The audit public key checkpoints must be signed with (default: this home's).")


@click.group("audit")
def audit_group() -> None:
    """Audit logs: every decision and settlement, hash-chained, with signed checkpoints.

    Exit codes: 0 intact, 1 tampered, 2 usage or input error.

    \b
    Example:
      capkit check "$TOKEN" --key payer.key --tool bank.transfer --arg amount=50 --audit audit.jsonl
      capkit audit verify audit.jsonl
      capkit audit head audit.jsonl > head.txt     # keep it elsewhere: truncation is then detectable
      capkit audit verify audit.jsonl --head head.txt
      capkit audit show audit.jsonl --denied
    """


def _public_key(key_text: str | None, home: Path | None) -> PublicKey:
    if key_text is None:
        return audit_key(home, create=False).public_key
    try:
        return PublicKey.parse(key_text)
    except MalformedKey as exc:
        raise InputError(f"--key: {exc.message}") from None


def _lines(log: str, log_name: str | None) -> Iterable[bytes]:
    if log != "-":
        return log_lines(log, log=log_name)
    return iter(sys.stdin.buffer)


def _verify(log: str, log_name: str | None, key_text: str | None, home: Path | None,
            head: str | None = None) -> AuditReport:
    kept = None
    if head is not None:
        try:
            kept = parse_checkpoint(sys.stdin.read() if head == "-" else Path(head).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read the head {head}: {exc.strerror}") from None
    return verify_log(_lines(log, log_name), _public_key(key_text, home), head=kept)


@audit_group.command("verify")
@click.argument("log")
@click.option("--head", metavar="FILE", help="A checkpoint kept elsewhere (capkit audit head): the log must reach it.")
@key_option
@log_name_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@home_option
@reports_errors
def verify_command(log: str, head: str | None, key_text: str | None, log_name: str | None, as_json: bool,
                   home: Path | None) -> None:
    """Check that LOG (a file, - for stdin, or a postgresql:// URL with --log) was not tampered with.

    Every line must hold the hash of the line before it and every checkpoint
    must be signed by the audit key. Exit 0 if intact (torn lines, left by a
    writer that died mid-line, are reported but are not tampering), 1 naming
    the first bad line and why (edited, deleted, reordered, inserted, forged
    checkpoint, truncated against --head).

    \b
    Example:
      capkit audit verify audit.jsonl --head head.txt
      capkit audit verify postgresql://db/prod --log bank-1 --key capkit_pk_...
    """
    report = _verify(log, log_name, key_text, home, head)
    if as_json:
        print_json({"intact": report.intact, "lines": report.lines, "records": report.records,
                    "checkpoints": report.checkpoints, "torn": list(report.torn), "bad_line": report.bad_line,
                    "problem": report.problem, "unsigned": report.unsigned, "summary": report.summary()})
    else:
        click.echo(escape(report.summary()))
    if not report.intact:
        raise SystemExit(EXIT_DENIED)


@audit_group.command("head")
@click.argument("log")
@key_option
@log_name_option
@home_option
@reports_errors
def head_command(log: str, key_text: str | None, log_name: str | None, home: Path | None) -> None:
    """Print the latest signed checkpoint of LOG, after verifying the whole log.

    Keep its output somewhere the log's writers cannot reach (another machine,
    a ticket, a transparency log); ``capkit audit verify LOG --head FILE``
    then detects a log cut short or rewritten since.
    """
    report = _verify(log, log_name, key_text, home)
    if not report.intact:
        click.echo(escape(report.summary()), err=True)
        raise SystemExit(EXIT_DENIED)
    if report.head is None:
        raise InputError("the log has no checkpoint yet (a writer adds one every 1000 lines and when it closes)")
    click.echo(report.head, nl=False)


@audit_group.command("key")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@home_option
@reports_errors
def key_command(as_json: bool, home: Path | None) -> None:
    """Print this home's audit public key (created on first use), and its signed-note verifier key."""
    key = audit_key(home, create=True)
    origin = f"capkit/{key.public_key.fingerprint}"
    if as_json:
        print_json({"public_key": key.public_key.text, "origin": origin, "vkey": vkey(origin, key.public_key)})
    else:
        click.echo(key.public_key.text)
        click.echo(vkey(origin, key.public_key), err=True)


def _when(at_ms: Any) -> str:
    try:
        return _dt.datetime.fromtimestamp(int(at_ms) / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


@audit_group.command("show")
@click.argument("log")
@click.option("--token", "token_id", metavar="ID", help="Only records of this token (or hop) id.")
@click.option("--agent", metavar="FINGERPRINT", help="Only calls by this agent (the holder's fingerprint).")
@click.option("--denied", is_flag=True, help="Only denied calls.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many records (the last ones).")
@log_name_option
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
@reports_errors
def show_command(log: str, token_id: str | None, agent: str | None, denied: bool, limit: int | None,
                 log_name: str | None, as_json: bool) -> None:
    """List the records of LOG as a table (this reads; capkit audit verify checks).

    \b
    Example:
      capkit audit show audit.jsonl --denied
      capkit audit show audit.jsonl --agent 3f2a9c01 --json | jq .tool
    """
    rows = []
    for line in _lines(log, log_name):
        if not line.startswith(b'{"h"'):
            continue
        try:
            record = json.loads(line)["r"]
        except (ValueError, KeyError, TypeError):
            continue  # a torn line
        if token_id and token_id != record.get("token") and token_id not in (record.get("hops") or []):
            continue
        if agent and record.get("holder") != agent:
            continue
        if denied and record.get("allowed") is not False:
            continue
        rows.append(record)
    if limit is not None:
        rows = rows[-limit:]
    if as_json:
        for record in rows:
            click.echo(json.dumps(record, ensure_ascii=False, sort_keys=True))
        return
    table = Table(title=f"{len(rows)} record(s) of {escape(log)}")
    for column in ("time (UTC)", "event", "verdict", "tool", "agent", "token", "why"):
        table.add_column(column)
    for record in rows:
        if record.get("event") == "settle":
            verdict = f"{record.get('outcome')}" + ("" if record.get("done") else " (refused)"
                                                   if record.get("done") is False else " (store failed)")
            why = ""
        else:
            verdict = "allowed" if record.get("allowed") else "[red]denied[/red]"
            why = "; ".join(
                f"{r.get('code')}" + (f" (caveat {r['caveat']}, hop {r.get('hop')}"
                                      + (f" by {r['agent']}" if r.get("agent") else "") + ")"
                                      if r.get("caveat") is not None else "")
                + (f": {r['message']}" if r.get("message") else "")
                for r in record.get("reasons") or [])
        table.add_row(_when(record.get("at_ms")), escape(record.get("event", "?")), verdict,
                      escape(record.get("tool") or ""), escape(record.get("holder") or ""),
                      escape(record.get("token") or ""), escape(why))
    console(min_width=120).print(table)

