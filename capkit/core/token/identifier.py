"""The token identifier: which key signed the root, and the token's random id.

Encoded as canonical JSON ``{"kid":KEY_ID,"tid":TOKEN_ID,"v":1}`` where
TOKEN_ID is 16 random bytes in unpadded base64url (22 characters).
"""

from __future__ import annotations

import re

import attrs

from .. import b64 as _b64
from ..text import text_problem
from ..errors import MalformedToken

FORMAT_VERSION = 1
TOKEN_ID_BYTES = 16
#: Key ids: what keyrings, identifiers and CLI flags accept.
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{22}", re.ASCII)
MAX_LOCATION_BYTES = 255
_CANONICAL = re.compile(rb'\{"kid":"([A-Za-z0-9_-]{1,64})","tid":"([A-Za-z0-9_-]{22})","v":1\}')


_PLAIN_LOCATION = re.compile(r"[!-~]{1,255}", re.ASCII)  # printable ASCII without spaces


def location_problem(location: object) -> str | None:
    """Why ``location`` is not a valid token location (1-255 UTF-8 bytes of NFC text, no spaces), or None."""
    if type(location) is str and _PLAIN_LOCATION.fullmatch(location):
        return None
    problem = text_problem(location, MAX_LOCATION_BYTES)
    if problem is not None:
        return problem
    assert isinstance(location, str)
    if len(location.encode("utf-8")) > MAX_LOCATION_BYTES or any(ch.isspace() for ch in location):
        return "must be at most 255 bytes without spaces"
    return None


@attrs.frozen
class Identifier:
    """Key id and token id of one token."""

    key_id: str
    token_id: str

    def encode(self) -> bytes:
        """Canonical bytes of the identifier field."""
        # Both ids are restricted to [A-Za-z0-9_-], so no JSON escaping can arise.
        return b'{"kid":"%s","tid":"%s","v":%d}' % (self.key_id.encode(), self.token_id.encode(), FORMAT_VERSION)

    @classmethod
    def new(cls, key_id: str, token_id: bytes) -> "Identifier":
        """An identifier for a fresh token; ``token_id`` must be 16 bytes. Raises ``MalformedToken``."""
        if not isinstance(token_id, bytes) or len(token_id) != TOKEN_ID_BYTES:
            raise MalformedToken("a token id is 16 bytes (leave it out to get a random one)")
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise MalformedToken("a key id is 1-64 characters of A-Z a-z 0-9 _ -")
        return cls(key_id, _b64.encode(token_id))

    @classmethod
    def decode(cls, data: bytes) -> "Identifier":
        """Parse identifier bytes; raise ``MalformedToken``.

        The canonical JSON of this object with its constrained strings has
        exactly one spelling, so one anchored pattern checks form and content.
        """
        match = _CANONICAL.fullmatch(data)
        if match is None:
            raise MalformedToken("token identifier is not the canonical {kid, tid, v:1} object")
        kid, tid = match.group(1).decode("ascii"), match.group(2).decode("ascii")
        # 22 base64url characters carry 132 bits for 128: the last 4 must be zero.
        if _b64.VALUE[tid[-1]] & 0x0F:
            raise MalformedToken("token identifier has an invalid token id")
        return cls(kid, tid)
