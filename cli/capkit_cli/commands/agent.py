"""``capkit agent``: an agent's key pair, kept in the agent's runtime (never in a model's context)."""

from __future__ import annotations

from pathlib import Path

import click

from capkit.core.holder import AgentKey

from ..errors import InputError, reports_errors
from ..home import home_option, resolve_home
from ..io import print_json

AGENT_KEY_FILE = "agent.key"


def load_agent_key(path: Path) -> AgentKey:
    """The agent key at ``path`` (refused if group/world-accessible)."""
    return AgentKey.load(path)


@click.group("agent")
def agent_group() -> None:
    """Agent key pairs: the key a token is bound to, and that signs each call's proof.

    \b
    Example:
      capkit agent keygen --out payer.key      # prints the public key capkit_pk_...
      capkit mint --holder "$(capkit agent show --key planner.key)" --tool bank.transfer
    """


@agent_group.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (mode 0600). Default: agent.key in the capkit home.")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@home_option
@reports_errors
def agent_keygen(out: Path | None, force: bool, home: Path | None) -> None:
    """Generate an Ed25519 agent key; write it (0600) and print its public key.

    \b
    Example:
      PAYER=$(capkit agent keygen --out payer.key)
    """
    path = out if out is not None else resolve_home(home) / AGENT_KEY_FILE
    if path.exists() and not force:
        raise InputError(f"{path} already exists; use --force to replace it")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = AgentKey.generate()
    key.save(path, overwrite=force)
    click.echo(f"wrote agent key {path} (agent {key.public_key.fingerprint})", err=True)
    click.echo(key.public_key.text)


@agent_group.command("show")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The agent key file (or give it as FILE).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def agent_show(file: Path | None, key_path: Path | None, as_json: bool) -> None:
    """Print the public key (and, with --json, the fingerprint) of the agent key FILE.

    \b
    Example:
      capkit agent show payer.key
    """
    if (file is None) == (key_path is None):
        raise InputError("give the agent key file, as FILE or --key FILE (one of them)")
    key = load_agent_key(file or key_path)  # type: ignore[arg-type]
    if as_json:
        print_json({"public_key": key.public_key.text, "fingerprint": key.public_key.fingerprint})
    else:
        click.echo(key.public_key.text)
