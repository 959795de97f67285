"""``capkit keys``: create, list and rotate the keyring that mints and verifies tokens."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from capkit import Keyring

from ..errors import InputError, reports_errors
from ..home import home_option, keyring_path, load_keyring, save_keyring
from ..io import console, print_json
from capkit.core.timefmt import format_instant


@click.group("keys")
def keys_group() -> None:
    """Create, list and rotate the keyring.

    \b
    Example:
      capkit keys init                # a new keyring in ~/.config/capkit
      capkit keys list
      capkit keys rotate              # new active key; old tokens still verify
    """


@keys_group.command("init")
@home_option
@click.option("--force", is_flag=True, help="Replace an existing keyring (every token it signed stops verifying).")
@reports_errors
def keys_init(home: Path | None, force: bool) -> None:
    """Create a keyring with one fresh key (file mode 0600).

    \b
    Example:
      capkit keys init --home ./capkit-home
    """
    path = keyring_path(home)
    if path.exists() and not force:
        raise InputError(f"a keyring already exists at {path}; use --force to replace it")
    keyring = Keyring.generate(now=time.time())
    save_keyring(keyring, home, overwrite=force)
    click.echo(f"created keyring {path} with key {keyring.active_key_id}", err=True)


@keys_group.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def keys_list(home: Path | None, as_json: bool) -> None:
    """List the keys (ids, which is active, creation time); never the secrets.

    \b
    Example:
      capkit keys list --json
    """
    keyring = load_keyring(home)
    rows = [
        {"key_id": k.key_id, "active": k.active, "location": k.location,
         "created": None if k.created is None else format_instant(k.created)}
        for k in keyring.keys
    ]
    if as_json:
        print_json({"keyring": str(keyring_path(home)), "keys": rows})
        return
    table = Table(title=escape(f"keys in {keyring_path(home)}"))
    for column in ("key id", "active", "scope", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["key_id"], "yes" if row["active"] else "", escape(row["location"] or "all locations"),
                      row["created"] or "")
    console().print(table)


@keys_group.command("rotate")
@home_option
@reports_errors
def keys_rotate(home: Path | None) -> None:
    """Add a new active key; tokens signed by older keys keep verifying until removed.

    \b
    Example:
      capkit keys rotate && capkit keys list
    """
    keyring = load_keyring(home).rotate(now=time.time())
    save_keyring(keyring, home, overwrite=True)
    click.echo(f"rotated: new active key {keyring.active_key_id}", err=True)


@keys_group.command("remove")
@home_option
@click.argument("key_id")
@reports_errors
def keys_remove(home: Path | None, key_id: str) -> None:
    """Remove a key; every token it signed stops verifying. The active key cannot be removed.

    \b
    Example:
      capkit keys remove 3f2a9c1b0d4e
    """
    keyring = load_keyring(home).remove(key_id)
    save_keyring(keyring, home, overwrite=True)
    click.echo(f"removed key {key_id}", err=True)
