"""``AgentKey``: an agent's Ed25519 key pair, which signs its proofs (``Proof.create``) and delegations.

A token may name a *holder*: the public key of the agent allowed to use it;
each call then carries a ``Proof`` (``capkit.core.proof``) signed with this
key, and handing the token to a sub-agent (``Token.delegate``) needs it too.
Private keys live in the agent runtime and its key file (mode 0600), never in
a model's context; ``repr`` never shows them. A verifier never loads this module.
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

from nacl.bindings import crypto_sign_ed25519_sk_to_curve25519, crypto_sign_seed_keypair
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey as BoxPrivateKey
from nacl.public import SealedBox

from . import b64 as _b64
from . import ed25519
from .errors import BadDelegation, KeyringError, MalformedKey, MalformedProof, MalformedToken
from .invocation import Invocation, invocation_digest
from .messages import DELEGATION_DOMAIN, PROOF_DOMAIN, delegation_message, mac_key, proof_message
from .publickey import PublicKey
from .secretfile import read_json, write_json
from .token.token import tail_signature

AGENT_KEY_FORMAT = "capkit-agent-key"


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

    def x25519_private(self) -> bytes:
        """This key's X25519 form (for sealed boxes and designated-verifier proofs); a secret."""
        _, secret = crypto_sign_seed_keypair(self._seed())
        return crypto_sign_ed25519_sk_to_curve25519(secret)

    def mac_key(self, peer: PublicKey, *, agent: bool) -> bytes:
        """The MAC key of proofs between this key and ``peer`` (``agent``: this key is the agent's);
        ``MalformedKey`` if ``peer`` has no X25519 form."""
        key = mac_key(self.x25519_private(), self.public_key, peer, agent_first=agent)
        if key is None:
            raise MalformedKey("the verifier's proof key has no X25519 form")
        return key

    def unseal(self, sealed: bytes) -> bytes:
        """Open a NaCl sealed box made for this key's X25519 form (an approval caveat's key, sealed to its
        approver); ``MalformedKey`` if it was not sealed to this key or was altered."""
        try:
            box = SealedBox(BoxPrivateKey(self.x25519_private()))
            return bytes(box.decrypt(sealed))
        except (CryptoError, ValueError, TypeError):
            raise MalformedKey("this was not sealed to this key (or it was altered)") from None

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
