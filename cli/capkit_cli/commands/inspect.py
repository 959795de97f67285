"""``capkit inspect``: what a token grants, in plain words, and whether its signature verifies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from capkit.core.verifier import EVERY_LOCATION
from ..io import escape
from rich.table import Table

from capkit import BadDelegation, BadSignature, MalformedToken, Token, Verifier

from capkit.errors import UnknownKey

from capkit.core.token.verify import VerifiedToken, hop_id
from capkit.caveats import Delegate, Expires, Holder, NotBefore, UnknownCaveat
from capkit.core.caveats.delegation import stated_hops
from capkit.core.timefmt import format_instant

from ..errors import EXIT_DENIED, reports_errors
from ..home import home_option, keyring_path, load_keyring
from ..io import console, parse_token, print_json, read_token_text


def _signature(token: Token, home: Path | None) -> tuple[dict[str, Any], VerifiedToken | None]:
    path = keyring_path(home)
    if not path.exists():
        return {"checked": False, "valid": None, "code": None,
                "message": f"signature not checked: no keyring at {path}"}, None
    try:
        verified = Verifier(load_keyring(home), location=EVERY_LOCATION).verify_chain(token)
    except (MalformedToken, UnknownKey, BadSignature, BadDelegation) as exc:
        return {"checked": True, "valid": False, "code": exc.code,
                "message": f"signature does NOT verify: {exc.message}"}, None
    return {"checked": True, "valid": True, "code": None,
            "message": f"signature and delegations verify with the keyring at {path}"}, verified


def describe_token(token: Token, home: Path | None) -> dict[str, Any]:
    """Everything inspect shows, as JSON-ready data (never the signature or a key)."""
    expiries = [c.at for c in token.caveats if isinstance(c, Expires)]
    starts = [c.at for c in token.caveats if isinstance(c, NotBefore)]
    signature, verified = _signature(token, home)
    if verified is not None:
        hops = list(verified.hops)
        chain = [{"hop": h.hop, "holder": h.holder, "id": h.id} for h in verified.chain]
    else:  # what the token states (not verified): the same ids, computed from the delegation signatures
        hops = [hop for hop, _ in stated_hops(token.caveats)]
        holders = [c.public_key.fingerprint for c in token.caveats if isinstance(c, Holder)][:1] or [None]
        chain = [{"hop": 0, "holder": holders[0], "id": token.id}] + [
            {"hop": i, "holder": c.to.fingerprint, "id": hop_id(token.id, c.signature)}
            for i, c in enumerate((c for c in token.caveats if isinstance(c, Delegate)), start=1)
        ]
    return {
        "token_id": token.id,
        "key_id": token.key_id,
        "location": token.location,
        "expires": format_instant(min(expiries)) if expiries else None,
        "not_before": format_instant(max(starts)) if starts else None,
        "signature": signature,
        "chain": chain,
        "holder": chain[-1]["holder"],
        "caveats": [
            {
                "index": i,
                "hop": hops[i - 1],
                "kind": caveat.kind if not isinstance(caveat, UnknownCaveat) else None,
                "caveat": None if isinstance(caveat, UnknownCaveat) else caveat.to_json(),
                "text": caveat.describe(),
            }
            for i, caveat in enumerate(token.caveats, start=1)
        ],
    }


@click.command("inspect")
@click.argument("token")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def inspect_command(token: str, home: Path | None, as_json: bool) -> None:
    """Show what TOKEN (or - for stdin) grants, caveat by caveat.

    With a keyring in the home the signature is verified (exit 1 if it does
    not verify); without one the output says it was not checked.

    \b
    Example:
      capkit inspect "$TOKEN"
      capkit mint --tool x | capkit inspect - --json
    """
    parsed = parse_token(read_token_text(token))
    info = describe_token(parsed, home)
    if as_json:
        print_json(info)
    else:
        out = console(min_width=120)  # token contents are data, never markup: everything from the token is escaped
        out.print(f"token     {escape(info['token_id'])}")
        out.print(f"key       {info['key_id']}")
        out.print(f"location  {escape(info['location'])}")
        out.print(f"expires   {info['expires'] or 'never (no expiry caveat)'}")
        if info["not_before"]:
            out.print(f"from      {info['not_before']}")
        out.print("holders   " + " -> ".join(
            f"hop {h['hop']}: " + (f"agent {h['holder']}" if h["holder"] else "bearer (no holder)")
            for h in info["chain"]))
        out.print("hop ids   " + ", ".join(f"hop {h['hop']}: {h['id']}" for h in info["chain"])
                  + "   (capkit revoke ID revokes that hop and everything delegated from it)")
        out.print(escape(info["signature"]["message"]))
        table = Table(title="caveats (every one must hold)")
        for column in ("#", "hop", "kind", "grants"):
            table.add_column(column)
        for row in info["caveats"]:
            table.add_row(str(row["index"]), str(row["hop"]), escape(row["kind"] or "unknown"), escape(row["text"]))
        out.print(table)
    if info["signature"]["checked"] and not info["signature"]["valid"]:
        raise SystemExit(EXIT_DENIED)
