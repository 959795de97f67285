"""The libsodium fast path signs and verifies exactly as the cryptography (OpenSSL) implementation does."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from capkit.core import ed25519


def test_the_fast_backend_is_in_use():
    # PyNaCl is a declared dependency; without it the slower path would be used silently.
    assert ed25519.BACKEND == "libsodium"


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_signatures_equal_openssl_and_verify_both_ways(seed, message):
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = ed25519.Signer(seed).sign(message)
    assert signature == private.sign(message)  # RFC 8032 signatures are deterministic
    assert ed25519.verify(public, signature, message)
    private.public_key().verify(signature, message)  # raises if OpenSSL disagreed


@pytest.mark.parametrize("damage", ["flip_signature", "flip_message", "other_key", "short_sig", "long_sig", "short_key"])
def test_verification_fails_closed(damage):
    seed = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    message = b"capkit proof"
    signature = ed25519.Signer(seed).sign(message)
    if damage == "flip_signature":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif damage == "flip_message":
        message = b"capkit proog"
    elif damage == "other_key":
        public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    elif damage == "short_sig":
        signature = signature[:63]
    elif damage == "long_sig":
        signature = signature + b"\0"
    elif damage == "short_key":
        public = public[:31]
    assert ed25519.verify(public, signature, message) is False


def test_small_order_public_key_is_refused():
    # The identity point (y = 1) has small order; with it a "signature" R=identity, S=0 verifies
    # under lax implementations for every message. libsodium refuses such keys.
    identity = bytes([1]) + bytes(31)
    forged = identity + bytes(32)
    assert ed25519.verify(identity, forged, b"anything") is False
