"""``Verifier``: the one place where capkit decides whether a call is allowed.

``authorize(token, invocation)`` never raises for bad input; it returns a
``Decision``. The steps (specs/SPEC.md, "Verification") are: parse the token
within the limits; find the key named by its identifier; recompute the HMAC
chain from the location's root key and compare it with the tail signature in
constant time; validate the invocation; then check every caveat and report
every one that fails. A token whose chain does not verify has no trusted
caveats, so only the chain failure is reported.

A verified chain is cached by the exact token text (or bytes) together with
the keyring's state, so a repeated token skips parsing and the HMAC chain;
per-call checks (time, arguments) run every time. Replacing the keyring
(``use_keyring``) changes the state and so invalidates every cached entry.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import attrs

from .caveats import REGISTRY, Caveat, Registry
from .decision import Code, Decision, Reason
from .errors import BadSignature, CapkitError, MalformedToken, UnknownKey
from .invocation import InvocationProblem, validate
from .keys import Keyring
from .limits import DEFAULT_LIMITS, Limits
from .token import Token, chain
from .token.binary import decode as decode_binary
from .token.token import decode_fields, decode_text


@attrs.frozen
class VerifiedChain:
    """A token whose HMAC chain verified under a keyring: its caveats can be trusted."""

    token_id: str
    key_id: str
    location: str
    caveats: tuple[Caveat, ...]
    #: Delegation hop of each caveat (all 0 until delegation exists in the token).
    hops: tuple[int, ...]


class Verifier:
    """Authorizes tool calls against capkit tokens.

    ``keyring`` holds the keys to verify with (a ``Keyring.for_location``
    keyring for a backend that serves one location). ``clock`` returns Unix
    seconds and is used when an invocation carries no time.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        limits: Limits = DEFAULT_LIMITS,
        registry: Registry = REGISTRY,
        clock: Callable[[], float] = time.time,
        cache_size: int = 4096,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise CapkitError("Verifier needs a capkit Keyring")
        self._keyring = keyring
        self._limits = limits
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[tuple[bytes, object], VerifiedChain] = {}
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        """The keyring tokens are verified with."""
        return self._keyring

    def use_keyring(self, keyring: Keyring) -> None:
        """Verify with ``keyring`` from now on (rotation, removal); cached chains of the old one no longer apply."""
        if not isinstance(keyring, Keyring):
            raise CapkitError("use_keyring needs a capkit Keyring")
        with self._lock:
            self._keyring = keyring
            self._cache.clear()

    # ------------------------------------------------------------------ chain

    def verify_chain(self, token: "Token | str | bytes") -> VerifiedChain:
        """Parse ``token`` and verify its HMAC chain (steps 1-5 of SPEC.md §11), without any call.

        Raises ``MalformedToken`` (``TokenTooLarge``), ``UnknownKey`` or
        ``BadSignature``; their ``code`` is the reason code ``authorize`` reports.
        """
        keyring = self._keyring
        cache_key = (keyring.state, token.to_bytes() if isinstance(token, Token) else token)
        try:
            return self._cache[cache_key]
        except KeyError:
            pass
        except TypeError:  # unhashable input: not a token
            raise MalformedToken("a token must be text or bytes") from None
        verified = self._verify_uncached(token, keyring)
        with self._lock:
            if self._keyring is keyring:
                if len(self._cache) >= self._cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[cache_key] = verified
        return verified

    def _verify_uncached(self, token: "Token | str | bytes", keyring: Keyring) -> VerifiedChain:
        if isinstance(token, Token):
            location, identifier, caveats = token.location, token.identifier, token.caveats
            identifier_bytes, encoded, signature = identifier.encode(), token.encoded_caveats, token.signature
        else:
            raw = decode_binary(decode_text(token, self._limits), self._limits)
            location, identifier, caveats = decode_fields(raw, self._limits, self._registry)
            identifier_bytes, encoded, signature = raw.identifier, raw.caveats, raw.signature
        try:
            k0 = keyring.chain_key(identifier.key_id, location)
        except UnknownKey as exc:
            raise UnknownKey(exc.message, token_id=identifier.token_id) from None
        if not chain.verify(k0, identifier_bytes, encoded, signature):
            raise BadSignature(
                "the token's signature does not verify: it was altered or not minted with this key",
                token_id=identifier.token_id,
            )
        return VerifiedChain(identifier.token_id, identifier.key_id, location, caveats, (0,) * len(caveats))

    # -------------------------------------------------------------- decisions

    def authorize(self, token: "Token | str | bytes", invocation: object) -> Decision:
        """Decide whether ``invocation`` is within the authority of ``token``. Never raises for bad input."""
        try:
            return self._authorize(token, invocation)
        except (MalformedToken, UnknownKey, BadSignature) as exc:
            return Decision.deny(exc.code, exc.message, exc.token_id)
        except Exception:  # fail closed on anything unforeseen; never leak details
            return Decision.deny(Code.INTERNAL_ERROR, "the verifier could not evaluate this call; it is denied")

    def _authorize(self, token: "Token | str | bytes", invocation: object) -> Decision:
        verified = self.verify_chain(token)
        try:
            call = validate(invocation, self._clock(), self._limits)
        except InvocationProblem as exc:
            return Decision.deny(Code.BAD_INVOCATION, str(exc), verified.token_id)
        reasons = []
        for index, caveat in enumerate(verified.caveats):
            failure = caveat.check(call)
            if failure is not None:
                reasons.append(Reason(failure.code, failure.message, index + 1, caveat, verified.hops[index]))
        if reasons:
            return Decision(False, tuple(reasons), verified.token_id)
        return Decision(True, (), verified.token_id)
