"""``PublicKey``: an agent's Ed25519 public key, its text form and fingerprint.

Kept apart from ``holder`` (which signs) so that caveats can name keys
without importing anything that depends on caveats.
"""

from __future__ import annotations

import hashlib

import attrs

from . import b64 as _b64
from . import ed25519
from .errors import MalformedKey

PUBLIC_KEY_PREFIX = "capkit_pk_"


@attrs.frozen
class PublicKey:
    """An agent's Ed25519 public key: ``text`` is ``capkit_pk_`` + base64url; ``fingerprint`` is for display."""

    raw: bytes = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise MalformedKey("an agent public key is 32 bytes")

    @property
    def text(self) -> str:
        return PUBLIC_KEY_PREFIX + _b64.encode(self.raw)

    @property
    def fingerprint(self) -> str:
        """8 hex characters of SHA-256 of the key: short, for people reading denials."""
        return hashlib.sha256(self.raw).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"PublicKey({self.fingerprint})"

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: "str | PublicKey") -> "PublicKey":
        """A public key from its text form (or itself); raise ``MalformedKey``."""
        if isinstance(text, PublicKey):
            return text
        if not isinstance(text, str) or not text.strip().startswith(PUBLIC_KEY_PREFIX):
            raise MalformedKey("an agent public key starts with 'capkit_pk_'")
        try:
            raw = _b64.decode(text.strip()[len(PUBLIC_KEY_PREFIX):])
        except ValueError:
            raise MalformedKey("an agent public key is capkit_pk_ and unpadded base64url") from None
        return cls(raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature over ``message``."""
        return ed25519.verify(self.raw, signature, message)


