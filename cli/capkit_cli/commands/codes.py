"""``capkit codes``: every reason code a denial can carry, with what it means."""

from __future__ import annotations

import click
from rich.table import Table

from capkit.core.codes import MEANINGS

from ..io import console, print_json


@click.command("codes")
@click.option("--json", "as_json", is_flag=True, help="Print the codes as a JSON object (code: meaning).")
def codes_command(as_json: bool) -> None:
    """List every reason code a denial can carry, and what it means (specs/SPEC.md §12).

    Codes are stable: a code never changes meaning; new codes may be added.

    \b
    Example:
      capkit codes
      capkit check "$TOKEN" --tool x --json | jq -r '.reasons[].code'
    """
    if as_json:
        print_json(dict(MEANINGS))
        return
    table = Table(title="reason codes")
    table.add_column("code")
    table.add_column("meaning")
    for code, meaning in MEANINGS.items():
        table.add_row(code, meaning)
    console(min_width=110).print(table)
