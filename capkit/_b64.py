"""Strict unpadded base64url, the alphabet of every capkit text form."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def encode(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """Decode unpadded base64url; raise ``ValueError`` unless ``text`` is its canonical form.

    Padding, characters outside the URL-safe alphabet, impossible lengths and
    non-zero trailing bits are all refused, so one byte string has one text.
    """
    if not _ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet checked above
        raise ValueError("not unpadded base64url") from exc
    # The unused low bits of the last character must be zero (RFC 4648 3.5),
    # or two texts would decode to the same bytes.
    tail = len(text) % 4
    if tail and _VALUE[text[-1]] & (0x0F if tail == 2 else 0x03):
        raise ValueError("base64url text has non-zero trailing bits")
    return data
