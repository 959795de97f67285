"""Reading tokens from arguments or stdin, and printing for people or machines."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from capkit import Token

from .errors import InputError


def read_token_text(token: str) -> str:
    """The token text from an argument, or from stdin when it is ``-``."""
    if token == "-":
        text = sys.stdin.read(1 << 16).strip()
        if not text:
            raise InputError("no token on stdin")
        return text
    return token.strip()


def parse_token(text: str) -> Token:
    """Parse token text for the CLI; the error never repeats the token."""
    return Token.parse(text)


def console(min_width: int = 0) -> Console:
    """A console on stdout; plain text when stdout is not a terminal (then at least ``min_width`` wide)."""
    out = Console(soft_wrap=False, highlight=False)
    if not out.is_terminal and min_width:
        out = Console(soft_wrap=False, highlight=False, width=max(out.width, min_width))
    return out


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def escape(text: object) -> str:
    """Text from a token, trace or store, safe to print: rich markup escaped, bidirectional and other
    control characters shown as escapes (so it cannot restyle the terminal or read in another order)."""
    from rich.markup import escape as markup_escape

    from capkit.core.text import escape_bidi

    return markup_escape(escape_bidi(str(text)))
