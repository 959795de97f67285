"""``Proof``: a holder's proof of possession for one exact call (specs/SPEC.md §16.4).

The holder's Ed25519 signature over a domain-separated message binding the
token's tail signature, the digest of the exact invocation, the time and a
one-time nonce (``capkit.core.messages``). Its text form is ``capkit_proof_``
and 121 bytes of base64url (175 characters).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import math
import secrets
import time
from typing import Any

import attrs

from . import b64 as _b64
from .errors import MalformedKey, MalformedProof
from .invocation import Invocation, invocation_digest
from .messages import proof_message
from .publickey import PublicKey
from .token.decode import tail_signature
from .timefmt import unix_seconds

PROOF_PREFIX = "capkit_proof_"
#: Version byte of a proof signed with Ed25519, and of a designated-verifier (MAC) proof (§16.6).
PROOF_VERSION = 1
MAC_PROOF_VERSION = 2
NONCE_BYTES = 16
_PROOF_BYTES = {PROOF_VERSION: 1 + 32 + 8 + NONCE_BYTES + 64, MAC_PROOF_VERSION: 1 + 32 + 8 + NONCE_BYTES + 32}

__all__ = ["MAC_PROOF_VERSION", "NONCE_BYTES", "PROOF_PREFIX", "PROOF_VERSION", "Proof"]




def _whole_seconds(at: Any) -> int:
    """Unix seconds (int, float or aware datetime) rounded down to the second; ``MalformedProof`` otherwise."""
    return math.floor(unix_seconds(at, "a proof time", MalformedProof))


@attrs.frozen(repr=False)
class Proof:
    """A proof of possession for one call: the signer's public key, time, nonce and signature."""

    public_key: PublicKey
    at: int
    nonce: bytes
    #: The Ed25519 signature (64 bytes), or for a MAC proof the HMAC-SHA256 (32 bytes).
    signature: bytes
    version: int = PROOF_VERSION

    @property
    def mode(self) -> str:
        """``signature`` (evidence anyone can check) or ``mac`` (convinces only its verifier)."""
        return "mac" if self.version == MAC_PROOF_VERSION else "signature"

    @classmethod
    def create(cls, agent_key: Any, token: Any, invocation: Invocation, *, at: "float | Any | None" = None,
               nonce: bytes | None = None, mac_key: bytes | None = None) -> "Proof":
        """Sign ``invocation`` (tool, arguments, audience) for ``token`` with the holder's key.

        ``token`` is a ``Token`` or its text; only its tail signature is read. ``at`` (Unix
        seconds or an aware datetime, rounded down to the second) defaults to now; ``nonce``
        to 16 random bytes. With ``mac_key`` (``agent_key.mac_key(verifier_key, agent=True)``,
        derived once per verifier) the proof is a designated-verifier MAC instead of a
        signature (§16.6). Raises ``MalformedProof``, ``MalformedToken`` or ``InvalidInvocation``.
        """
        public_key = getattr(agent_key, "public_key", None)
        if not isinstance(public_key, PublicKey) or not callable(getattr(agent_key, "sign", None)):
            raise MalformedProof("a proof is made with the holder's AgentKey")
        seconds = int(time.time()) if at is None else _whole_seconds(at)
        nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise MalformedProof("a proof nonce is 16 bytes")
        message = proof_message(tail_signature(token), invocation_digest(invocation), seconds, nonce)
        if mac_key is None:
            return cls(public_key, seconds, nonce, agent_key.sign(message))
        if not isinstance(mac_key, bytes) or len(mac_key) != 32:
            raise MalformedProof("a MAC proof's key is 32 bytes (AgentKey.mac_key)")
        return cls(public_key, seconds, nonce, hmac.new(mac_key, message, hashlib.sha256).digest(), MAC_PROOF_VERSION)

    def serialize(self) -> str:
        """``capkit_proof_`` + base64url(version, public key, time, nonce, signature or MAC)."""
        return PROOF_PREFIX + _b64.encode(
            bytes((self.version,)) + self.public_key.raw + self.at.to_bytes(8, "big", signed=True)
            + self.nonce + self.signature)

    @classmethod
    def parse(cls, data: "str | Proof") -> "Proof":
        """A proof from its text form; raise ``MalformedProof``."""
        if isinstance(data, Proof):
            return data
        if not isinstance(data, str) or len(data) > 256 or not data.startswith(PROOF_PREFIX):
            raise MalformedProof("a proof is text starting with 'capkit_proof_'")
        try:
            raw = _b64.decode(data[len(PROOF_PREFIX):])
        except ValueError:
            raise MalformedProof("a proof is capkit_proof_ and unpadded base64url") from None
        if not raw or _PROOF_BYTES.get(raw[0]) != len(raw):
            raise MalformedProof("a proof has the wrong length or version")
        return cls(PublicKey(raw[1:33]), int.from_bytes(raw[33:41], "big", signed=True), raw[41:57], raw[57:],
                   raw[0])

    def __repr__(self) -> str:
        return f"Proof(by={self.public_key.fingerprint}, at={self.at})"
