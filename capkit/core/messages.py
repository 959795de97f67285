"""What agents sign: the delegation and proof messages, byte by byte (specs/SPEC.md §16).

Kept apart so that the token (which delegates), the holder's key (which
proves) and the verifier (which checks both) share one definition::

    delegation = "capkit/v1/delegate" 0x00 || previous tail signature (32)
                 || new holder public key (32) || hop number (uint32 big-endian)
    proof      = "capkit/v1/proof" 0x00 || token tail signature (32)
                 || invocation digest (32) || time (int64 big-endian Unix seconds)
                 || nonce (16)
"""

from __future__ import annotations

from .publickey import PublicKey

DELEGATION_DOMAIN = b"capkit/v1/delegate\x00"
PROOF_DOMAIN = b"capkit/v1/proof\x00"


def delegation_message(previous_signature: bytes, to: PublicKey, hop: int) -> bytes:
    """What the current holder signs to hand the token to ``to`` as the holder of ``hop``."""
    return DELEGATION_DOMAIN + previous_signature + to.raw + hop.to_bytes(4, "big")


def proof_message(token_signature: bytes, digest: bytes, at: int, nonce: bytes) -> bytes:
    """What the holder signs for one call."""
    return PROOF_DOMAIN + token_signature + digest + at.to_bytes(8, "big", signed=True) + nonce
