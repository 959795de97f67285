"""What agents sign: the delegation and proof messages, byte by byte (specs/SPEC.md §16).

Kept apart so that the token (which delegates), the holder's key (which
proves) and the verifier (which checks both) share one definition::

    delegation = "capkit/v1/delegate" 0x00 || previous tail signature (32)
                 || new holder public key (32) || hop number (uint32 big-endian)
    proof      = "capkit/v1/proof" 0x00 || token tail signature (32)
                 || invocation digest (32) || time (int64 big-endian Unix seconds)
                 || nonce (16)
    MAC key    = HKDF-SHA256(IKM = X25519(agent, verifier), salt = "capkit/v1/mac-proof",
                             info = agent public key (32) || verifier public key (32))

A proof is the agent's Ed25519 signature of the proof message, or (designated-verifier
mode, §16.6) HMAC-SHA256 of it under the MAC key both sides derive from their keys.
"""

from __future__ import annotations

import hashlib
import hmac

from nacl.bindings import crypto_scalarmult, crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import CryptoError

from .publickey import PublicKey

DELEGATION_DOMAIN = b"capkit/v1/delegate\x00"
PROOF_DOMAIN = b"capkit/v1/proof\x00"


def delegation_message(previous_signature: bytes, to: PublicKey, hop: int) -> bytes:
    """What the current holder signs to hand the token to ``to`` as the holder of ``hop``."""
    return DELEGATION_DOMAIN + previous_signature + to.raw + hop.to_bytes(4, "big")


def proof_message(token_signature: bytes, digest: bytes, at: int, nonce: bytes) -> bytes:
    """What the holder signs for one call."""
    return PROOF_DOMAIN + token_signature + digest + at.to_bytes(8, "big", signed=True) + nonce


MAC_SALT = b"capkit/v1/mac-proof"


def mac_key(x25519_private: bytes, own: PublicKey, peer: PublicKey, *, agent_first: bool) -> bytes | None:
    """The MAC key of a proof between an agent and a verifier, from one side's X25519 private key and both
    Ed25519 public keys (``agent_first``: ``own`` is the agent's). None if the peer key has no X25519 form."""
    try:
        shared = crypto_scalarmult(x25519_private, crypto_sign_ed25519_pk_to_curve25519(peer.raw))
    except (CryptoError, ValueError, TypeError):
        return None
    if shared == bytes(32):  # a low-order point: no secret is shared
        return None
    agent, verifier = (own, peer) if agent_first else (peer, own)
    prk = hmac.new(MAC_SALT, shared, hashlib.sha256).digest()  # HKDF-Extract
    return hmac.new(prk, agent.raw + verifier.raw + b"\x01", hashlib.sha256).digest()  # HKDF-Expand, one block
