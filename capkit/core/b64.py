"""Strict unpadded base64url, the alphabet of every capkit text form."""

from __future__ import annotations

import base64
import binascii
import re
import sys

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


_TO_URL = bytes.maketrans(b"+/", b"-_")


def encode(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


# URL-safe to standard alphabet; the standard alphabet's own '+', '/' and '=' become '!', which strict
# decoding refuses, so one translation both converts and rejects them.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_STRICT = sys.version_info >= (3, 11)  # binascii's strict_mode


def decode(text: str) -> bytes:
    """Decode unpadded base64url; raise ``ValueError`` unless ``text`` is its canonical form.

    Padding, characters outside the URL-safe alphabet, impossible lengths and
    non-zero trailing bits are all refused, so one byte string has one text.
    """
    if len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    if _STRICT:
        # Strict decoding refuses anything outside the standard alphabet (see _TO_STANDARD).
        try:
            raw = text.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raise ValueError("not unpadded base64url") from None
        try:
            data = binascii.a2b_base64(raw.translate(_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True)
        except binascii.Error:
            raise ValueError("not unpadded base64url") from None
    else:  # pragma: no cover - Python 3.10
        if not _ALPHABET.fullmatch(text):
            raise ValueError("not unpadded base64url")
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # The unused low bits of the last character must be zero (RFC 4648 3.5),
    # or two texts would decode to the same bytes.
    tail = len(text) % 4
    if tail and VALUE[text[-1]] & (0x0F if tail == 2 else 0x03):
        raise ValueError("base64url text has non-zero trailing bits")
    return data
