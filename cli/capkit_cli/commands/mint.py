"""``capkit mint`` and ``capkit attenuate``: state a grant, narrow it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from capkit import mint

from ..caveat_options import caveat_options, caveats_from_flags
from ..errors import InputError, reports_errors
from ..home import home_option, load_keyring
from ..io import parse_token, read_token_text
from ..lint import refuse_dead_token
from .agent import load_agent_key

DEFAULT_LOCATION = "default"


@click.command("mint")
@home_option
@click.option("--location", help=f"The service family the token is for (default: the grant file's, else '{DEFAULT_LOCATION}').")
@caveat_options
@reports_errors
def mint_command(home: Path | None, location: str | None, **flags: Any) -> None:
    """Mint a token for one task and print it (and nothing else) on stdout.

    Every flag adds a caveat; the token allows a call only if all hold.

    \b
    Example: pay the December rent, within a day
      TOKEN=$(capkit mint --location bank --tool bank.transfer \\
        --one-of recipient=landlord --max amount=1250 --eq currency=USD --expires 24h)
      capkit mint --from grant.toml
    """
    now = int(time.time())
    if location is not None and not location.strip():
        raise InputError(f"--location must not be empty (leave it out for '{DEFAULT_LOCATION}')")
    file_location, caveats = caveats_from_flags(flags, now=now)
    if location and file_location and location != file_location:
        raise InputError(f"--location {location} differs from the grant file's location {file_location}")
    if not caveats:
        raise InputError("state at least one caveat (for example --tool NAME); a token without caveats grants every tool")
    refuse_dead_token(caveats, now)
    token = mint(load_keyring(home), *caveats, location=location or file_location or DEFAULT_LOCATION)
    click.echo(token.serialize())


@click.command("attenuate")
@click.argument("token")
@caveat_options
@reports_errors
def attenuate_command(token: str, **flags: Any) -> None:
    """Narrow a token (TOKEN, or - for stdin) with more caveats; needs no key.

    The result allows only what the original allows and every new caveat allows.

    \b
    Example: a sub-agent may pay at most 50, for 10 minutes
      capkit attenuate "$TOKEN" --max amount=50 --expires 10m
      capkit mint ... | capkit attenuate - --max amount=50
    """
    parent = parse_token(read_token_text(token))
    now = int(time.time())
    location, caveats = caveats_from_flags(flags, now=now)
    if location is not None and location != parent.location:
        raise InputError(f"the grant file's location {location} differs from the token's location {parent.location}")
    if not caveats:
        raise InputError("state at least one caveat to add")
    refuse_dead_token([*parent.caveats, *caveats], now)
    click.echo(parent.attenuate(*caveats).serialize())


@click.command("delegate")
@click.argument("token")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The current holder's agent key file.")
@click.option("--to", "to", required=True, metavar="PUBKEY", help="The sub-agent's public key (capkit_pk_...).")
@caveat_options
@reports_errors
def delegate_command(token: str, key_path: Path, to: str, **flags: Any) -> None:
    """Hand TOKEN (or - for stdin) to a sub-agent, narrowed by any caveat flags.

    Needs the current holder's key: the new delegation caveat is its signature
    over the token, the sub-agent's key and the hop number. Only the sub-agent
    can then use the result.

    \b
    Example: the planner gives the payer 10 minutes and at most 50
      capkit delegate "$TOKEN" --key planner.key --to "$PAYER" --max amount=50 --expires 10m
    """
    parent = parse_token(read_token_text(token))
    now = int(time.time())
    location, caveats = caveats_from_flags(flags, now=now)
    if location is not None and location != parent.location:
        raise InputError(f"the grant file's location {location} differs from the token's location {parent.location}")
    refuse_dead_token([*parent.caveats, *caveats], now)
    click.echo(parent.delegate(load_agent_key(key_path), to, *caveats).serialize())
