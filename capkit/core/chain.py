"""The HMAC-SHA256 chain of a macaroon, byte-compatible with libmacaroons and pymacaroons.

    k0    = HMAC-SHA256(key=b"macaroons-key-generator", msg=root_key)
    sig0  = HMAC-SHA256(key=k0, msg=identifier)
    sig_i = HMAC-SHA256(key=sig_{i-1}, msg=caveat_i)                first party
    sig_i = HMAC-SHA256(key=sig_{i-1},                              third party
                        msg=HMAC(sig_{i-1}, vid_i) || HMAC(sig_{i-1}, cid_i))

The tail signature of a token is sig_n. Anyone holding a token can extend the
chain (attenuate); only the holder of ``root_key`` can start it.
"""

from __future__ import annotations

import hmac
from typing import Any, Iterable

try:  # CPython's one-shot OpenSSL HMAC: what hmac.digest calls, without the wrapper
    from _hashlib import hmac_digest as _hmac
except ImportError:  # pragma: no cover - other Pythons
    _hmac = hmac.digest

_GENERATOR = b"macaroons-key-generator"


def generator_key(root_key: bytes) -> bytes:
    """k0: the key that signs the identifier, derived from the root key as libmacaroons does."""
    return _hmac(_GENERATOR, root_key, "sha256")


def root_signature(root_key: bytes, identifier: bytes) -> bytes:
    """sig0 for a token minted under ``root_key``."""
    return _hmac(generator_key(root_key), identifier, "sha256")


def link(signature: bytes, caveat: "bytes | Any") -> bytes:
    """The next signature of a chain ending in ``signature``: a first-party caveat's bytes, or a
    third-party caveat (anything with ``vid`` and ``cid``) as libmacaroons' ``hmac_concat`` signs it."""
    if type(caveat) is bytes:
        return _hmac(signature, caveat, "sha256")
    return _hmac(signature, _hmac(signature, caveat.vid, "sha256") + _hmac(signature, caveat.cid, "sha256"), "sha256")


def extend(signature: bytes, caveats: Iterable[Any]) -> bytes:
    """The signature after appending ``caveats`` to a chain ending in ``signature``."""
    for caveat in caveats:
        signature = _hmac(signature, caveat, "sha256") if type(caveat) is bytes else link(signature, caveat)
    return signature


def signatures(k0: bytes, identifier: bytes, caveats: Iterable[Any]) -> list[bytes]:
    """Every intermediate signature [sig0, sig1, ..., sig_n] of the chain started by ``k0``."""
    sig = _hmac(k0, identifier, "sha256")
    out = [sig]
    for caveat in caveats:
        sig = link(sig, caveat)
        out.append(sig)
    return out


#: The key of libmacaroons' binding of a discharge to the macaroon it is for (32 zero bytes).
_BINDING_KEY = bytes(32)


def bind(token_signature: bytes, discharge_signature: bytes) -> bytes:
    """A discharge's signature bound to the token it is presented with (pymacaroons' ``prepare_for_request``)."""
    return _hmac(_BINDING_KEY, _hmac(_BINDING_KEY, token_signature, "sha256")
                 + _hmac(_BINDING_KEY, discharge_signature, "sha256"), "sha256")


def verify(k0: bytes, identifier: bytes, caveats: Iterable[Any], signature: bytes) -> bool:
    """True if ``signature`` is the tail of the chain started by ``k0`` (``generator_key``).

    The comparison is constant-time (``hmac.compare_digest``).
    """
    expected = extend(_hmac(k0, identifier, "sha256"), caveats)
    return hmac.compare_digest(expected, signature)


def matches(expected: bytes, signature: bytes) -> bool:
    """Constant-time comparison of a recomputed tail with a token's signature."""
    return hmac.compare_digest(expected, signature)
