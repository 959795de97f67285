"""``capkit budget show`` and ``capkit revoke``: the shared state behind budgets and revocation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from capkit.core.verifier import EVERY_LOCATION
from rich.table import Table

from capkit import Verifier
from capkit.caveats import Budget
from capkit.core.caveats._fields import show
from capkit.core.caveats.limits import describe_window
from capkit.core.timefmt import parse_instant

from ..errors import reports_errors
from ..home import home_option, load_keyring, open_cli_store, store_option
from ..io import console, parse_token, print_json, read_token_text


@click.group("budget")
def budget_group() -> None:
    """Budgets and call limits in the shared store.

    \b
    Example:
      capkit budget show "$TOKEN"
    """


@budget_group.command("show")
@click.argument("token")
@click.option("--at", "at", metavar="WHEN", help="Show the period containing WHEN (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@home_option
@store_option
@reports_errors
def budget_show(token: str, at: str | None, as_json: bool, home: Path | None, store_url: str | None) -> None:
    """Spent (committed), reserved and cap of every budget and call limit of TOKEN, per hop.

    \b
    Example:
      capkit budget show "$SUB" --json
    """
    text = read_token_text(token)
    parse_token(text)
    now = int(time.time())
    moment = now if at is None else parse_instant(at, now=now)
    verifier = Verifier(load_keyring(home), location=EVERY_LOCATION, store=open_cli_store(home, store_url))
    try:
        rows: list[dict[str, Any]] = []
        for status in verifier.budgets(text, at=moment):
            caveat = status.caveat
            rows.append({
                "caveat": status.caveat_index,
                "hop": status.hop,
                "agent": status.agent,
                "kind": caveat.kind,
                "arg": caveat.arg if isinstance(caveat, Budget) else None,
                "window": describe_window(caveat.window),
                "period": status.period or None,
                "cap": show(status.cap),
                "committed": show(status.committed),
                "reserved": show(status.reserved),
                "left": show(max(status.cap - status.committed - status.reserved, 0)),  # type: ignore[operator]
            })
    finally:
        verifier.close()
    if as_json:
        print_json({"budgets": rows})
        return
    if not rows:
        click.echo("the token has no budgets or call limits")
        return
    table = Table(title="budgets and call limits (every one must have room)")
    for column in ("caveat", "hop", "what", "window", "committed", "reserved", "cap", "left"):
        table.add_column(column)
    for row in rows:
        what = f"{row['arg']} budget" if row["arg"] else "calls"
        hop = str(row["hop"]) + (f" ({row['agent']})" if row["agent"] else "")
        window = row["window"] + (f" [{row['period']}]" if row["period"] else "")
        table.add_row(str(row["caveat"]), hop, what, window, row["committed"], row["reserved"], row["cap"],
                      row["left"])
    console(min_width=110).print(table)


@click.command("revoke")
@click.argument("hop_id")
@click.option("--reason", help="Why, shown in every denial that follows.")
@home_option
@store_option
@reports_errors
def revoke_command(hop_id: str, reason: str | None, home: Path | None, store_url: str | None) -> None:
    """Revoke HOP_ID: the token of that hop and every token derived from it are denied from now on.

    A token id (shown by inspect) revokes the whole grant; a hop id such as
    TOKENID.a1B2c3D4 revokes one delegation and everything below it. Every
    verifier sharing the store sees it at once. (An id from another
    implementation that starts with '-' goes after '--'.)

    \b
    Example:
      capkit revoke "$(capkit inspect "$SUB" --json | jq -r '.chain[1].id')" --reason "agent compromised"
    """
    verifier = Verifier(load_keyring(home), location=EVERY_LOCATION, store=open_cli_store(home, store_url))
    try:
        verifier.revoke(hop_id, reason)
    finally:
        verifier.close()
    click.echo(f"revoked {hop_id}", err=True)
