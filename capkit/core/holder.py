"""Agent keys, proofs of possession, and delegation signatures (Ed25519).

A token may name a *holder*: the public key of the agent allowed to use it.
Each call then carries a ``Proof``: the holder's Ed25519 signature over a
domain-separated message binding the token's tail signature, the digest of
the exact invocation, the time and a one-time nonce. Delegating to a
sub-agent appends a ``Delegate`` caveat signed by the current holder, so a
thief holding the token text cannot re-delegate it to itself.

Signed messages (specs/SPEC.md §16, byte by byte)::

    delegation = "capkit/v1/delegate" 0x00 || previous tail signature (32)
                 || new holder public key (32) || hop number (uint32 big-endian)
    proof      = "capkit/v1/proof" 0x00 || token tail signature (32)
                 || invocation digest (32) || time (int64 big-endian Unix seconds)
                 || nonce (16)

Private keys live in the agent runtime and its key file (mode 0600), never in
a model's context; ``repr`` never shows them.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import secrets
import time
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import b64 as _b64
from . import ed25519
from .errors import BadDelegation, KeyringError, MalformedKey, MalformedProof, MalformedToken
from .invocation import Invocation, invocation_digest
from .messages import DELEGATION_DOMAIN, PROOF_DOMAIN, delegation_message, proof_message
from .publickey import PublicKey
from .secretfile import read_json, write_json
from .token.token import tail_signature

PROOF_PREFIX = "capkit_proof_"
PROOF_VERSION = 1
NONCE_BYTES = 16
_PROOF_BYTES = 1 + 32 + 8 + NONCE_BYTES + 64
AGENT_KEY_FORMAT = "capkit-agent-key"


#: A delegation cannot be made (wrong key, bearer token, depth limit): the same error as a bad delegation.
DelegationError = BadDelegation


class AgentKey:
    """An agent's Ed25519 key pair. Generate, save (0600), load; sign delegations and proofs."""

    __slots__ = ("_private", "_signer", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = PublicKey(private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        self._signer = ed25519.Signer(self._seed())

    @classmethod
    def generate(cls) -> "AgentKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "AgentKey":
        """A key from its 32-byte seed (for test vectors and secret managers)."""
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise MalformedKey("an agent key seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self._signer.sign(message)

    def __repr__(self) -> str:
        return f"AgentKey({self.public_key.fingerprint})"

    def _seed(self) -> bytes:
        return self._private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())

    def save(self, path: "str | os.PathLike[str]", *, overwrite: bool = False) -> None:
        """Write the key to ``path`` with mode 0600 (atomically; refuses to overwrite unless asked)."""
        write_json(path, {"format": AGENT_KEY_FORMAT, "version": 1, "private_key": _b64.encode(self._seed()),
                          "public_key": self.public_key.text}, overwrite=overwrite)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "AgentKey":
        """Read an agent key file; refuse one that group or others may access."""
        doc = read_json(path)
        try:
            if doc.get("format") != AGENT_KEY_FORMAT or doc.get("version") != 1:
                raise ValueError
            key = cls.from_seed(_b64.decode(doc["private_key"]))
            if key.public_key.text != doc["public_key"]:
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError, MalformedKey):
            raise KeyringError(f"{path} is not a valid capkit agent key file") from None
        return key


# ------------------------------------------------------------------ proofs


def _whole_seconds(at: Any) -> int:
    """Unix seconds (int, float or aware datetime) rounded down to the second; ``MalformedProof`` otherwise."""
    if isinstance(at, _dt.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise MalformedProof("a proof time is Unix seconds or an aware datetime")
        at = at.timestamp()
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or abs(at) > 2 ** 62:
        raise MalformedProof("a proof time is Unix seconds or an aware datetime")
    return math.floor(at)



@attrs.frozen(repr=False)
class Proof:
    """A proof of possession for one call: the signer's public key, time, nonce and signature."""

    public_key: PublicKey
    at: int
    nonce: bytes
    signature: bytes

    @classmethod
    def create(cls, agent_key: AgentKey, token: Any, invocation: Invocation, *, at: "float | Any | None" = None,
               nonce: bytes | None = None) -> "Proof":
        """Sign ``invocation`` (tool, arguments, audience) for ``token`` with the holder's key.

        ``token`` is a ``Token`` or its text; only its tail signature is read. ``at`` (Unix
        seconds or an aware datetime, rounded down to the second) defaults to now; ``nonce``
        to 16 random bytes. Raises ``MalformedProof``, ``MalformedToken`` or ``InvalidInvocation``.
        """
        if not isinstance(agent_key, AgentKey):
            raise MalformedProof("a proof is made with the holder's AgentKey")
        seconds = int(time.time()) if at is None else _whole_seconds(at)
        nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise MalformedProof("a proof nonce is 16 bytes")
        message = proof_message(tail_signature(token), invocation_digest(invocation), seconds, nonce)
        return cls(agent_key.public_key, seconds, nonce, agent_key.sign(message))

    def serialize(self) -> str:
        """``capkit_proof_`` + base64url(version, public key, time, nonce, signature): 175 characters."""
        return PROOF_PREFIX + _b64.encode(
            bytes((PROOF_VERSION,)) + self.public_key.raw + self.at.to_bytes(8, "big", signed=True)
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
        if len(raw) != _PROOF_BYTES or raw[0] != PROOF_VERSION:
            raise MalformedProof("a proof has the wrong length or version")
        return cls(PublicKey(raw[1:33]), int.from_bytes(raw[33:41], "big", signed=True), raw[41:57], raw[57:])

    def __repr__(self) -> str:
        return f"Proof(by={self.public_key.fingerprint}, at={self.at})"
