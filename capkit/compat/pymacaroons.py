"""Interoperation with pymacaroons, the reference implementation of the macaroon V2 format.

A capkit token *is* a V2 macaroon whose root key is the location key of the
keyring (``root_key``), whose identifier and caveats are capkit's canonical
JSON. These helpers convert in both directions and give pymacaroons a general
satisfier that judges capkit caveats with capkit's own checks, so a service
that already verifies macaroons with pymacaroons can accept capkit tokens.
The conversion is lossless: ``from_macaroon(to_macaroon(t)).serialize() == t.serialize()``.
"""

from __future__ import annotations

import time
from typing import Callable

from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException
from pymacaroons.serializers import BinarySerializer

from ..core.caveats import REGISTRY, Registry
from ..core.invocation import InvalidInvocation, validate
from ..core.keys import Keyring
from ..core.limits import DEFAULT_LIMITS, Limits
from ..core.token.token import Token

__all__ = ["from_macaroon", "root_key", "satisfier", "to_macaroon", "verify"]


def root_key(keyring: Keyring, token: Token) -> bytes:
    """The macaroon root key of ``token``: the keyring's key for the token's key id and location."""
    return keyring.root_key(token.key_id, token.location)


def to_macaroon(token: Token) -> Macaroon:
    """The pymacaroons ``Macaroon`` with exactly the bytes of ``token``."""
    return BinarySerializer().deserialize_raw(token.to_bytes())


def from_macaroon(macaroon: Macaroon, *, limits: Limits = DEFAULT_LIMITS, registry: Registry = REGISTRY) -> Token:
    """The capkit ``Token`` of a pymacaroons V2 macaroon (raises ``MalformedToken`` if it is not one)."""
    return Token.parse(BinarySerializer().serialize_raw(macaroon), limits=limits, registry=registry)


def satisfier(invocation: object, *, now: float | None = None, registry: Registry = REGISTRY,
              limits: Limits = DEFAULT_LIMITS) -> Callable[[str], bool]:
    """A pymacaroons general satisfier that accepts a caveat iff capkit's check of it passes for ``invocation``."""
    try:
        call = validate(invocation, time.time() if now is None else now, limits)
    except InvalidInvocation:
        return lambda predicate: False

    def satisfied(predicate: str) -> bool:
        caveat = registry.decode(predicate.encode("utf-8"), limits)
        return caveat.check(call) is None

    return satisfied


def verify(token: Token, keyring: Keyring, invocation: object, *, now: float | None = None) -> bool:
    """Verify ``token`` with pymacaroons' own verifier and capkit's satisfier. False on any failure."""
    verifier = Verifier()
    verifier.satisfy_general(satisfier(invocation, now=now))
    try:
        return bool(verifier.verify(to_macaroon(token), root_key(keyring, token)))
    except MacaroonException:
        return False


def new_macaroon(keyring: Keyring, token_location: str, identifier: bytes) -> Macaroon:
    """A pymacaroons V2 macaroon rooted in the keyring's active key for ``token_location``."""
    key_id = keyring.active_key_id
    assert key_id is not None
    return Macaroon(location=token_location, identifier=identifier,
                    key=keyring.root_key(key_id, token_location), version=MACAROON_V2)
