"""``Verifier``: the one place where capkit decides whether a call is allowed.

``authorize(token, invocation, proof=None)`` never raises for bad input; it
returns a ``Decision``. The steps (specs/SPEC.md §11 and §16):

1. verify the chain: parse the token within the limits, find the key named by
   its identifier, recompute the HMAC chain from the location's root key and
   compare it with the tail signature in constant time; then walk the chain of
   holders, checking every delegation signature against the holder before it;
2. validate the invocation;
3. holder binding: a bearer token is refused unless the verifier allows
   bearers; a holder-bound token needs a fresh proof by its current holder
   over this exact call;
4. check every caveat and report every one that fails;
5. only if nothing failed, record the proof's nonce (a replay is refused).

A verified chain (step 1, including the Ed25519 checks of its delegations) is
cached by the exact token text (or bytes) together with the keyring's state,
so a repeated token skips parsing, the HMAC chain and the delegation
signatures; delegation signatures are also cached by the signature they
bind, so a token attenuated after a delegation does not re-verify it. Per-call
checks (time, arguments, proof) run every time. Replacing the keyring
(``use_keyring``) invalidates every cached chain.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import attrs

from .caveats import REGISTRY, Caveat, Delegate, Holder, MaxDepth, Registry
from .decision import Code, Decision, Hop, Reason
from .errors import BadDelegation, BadSignature, CapkitError, MalformedToken, UnknownKey
from .holder import MalformedProof, Proof, delegation_message, proof_message
from .invocation import InvocationProblem, invocation_digest, validate
from .keys import Keyring
from .limits import DEFAULT_LIMITS, Limits
from .publickey import PublicKey
from .replay import MemoryReplayCache, ReplayCache
from .token import Token, chain
from .token.binary import decode as decode_binary
from .token.token import decode_fields, decode_text

#: Default freshness window of proofs, in seconds, in both directions (clock skew).
PROOF_WINDOW = 60


@attrs.frozen
class VerifiedChain:
    """A token whose HMAC chain and delegations verified under a keyring: its caveats can be trusted."""

    token_id: str
    key_id: str
    location: str
    caveats: tuple[Caveat, ...]
    #: Delegation hop of each caveat: how many delegations precede it.
    hops: tuple[int, ...]
    #: Fingerprint of the agent that held the token when each caveat was added (None at hop 0).
    agents: tuple[str | None, ...]
    #: The holder at each hop, from the grant to the current holder.
    chain: tuple[Hop, ...]
    #: The current holder; None for a bearer token.
    holder: PublicKey | None
    #: Token-level failures found in the chain (delegation depth beyond a MaxDepth).
    failures: tuple[Reason, ...]
    #: The tail signature, which proofs bind.
    signature: bytes = attrs.field(repr=False)

    @property
    def depth(self) -> int:
        """How many delegations the token has been through."""
        return len(self.chain) - 1


class Verifier:
    """Authorizes tool calls against capkit tokens.

    ``keyring`` holds the keys to verify with (a ``Keyring.for_location``
    keyring for a backend that serves one location). ``clock`` returns Unix
    seconds and is used when an invocation carries no time. Bearer tokens (no
    holder) are refused unless ``allow_bearer`` is true. Proofs must be within
    ``proof_window`` seconds of the call's time, either way; their nonces are
    recorded in ``replay_cache`` (in memory by default; pass a shared one when
    several verifiers serve the same tokens).
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        allow_bearer: bool = False,
        proof_window: int = PROOF_WINDOW,
        replay_cache: ReplayCache | None = None,
        limits: Limits = DEFAULT_LIMITS,
        registry: Registry = REGISTRY,
        clock: Callable[[], float] = time.time,
        cache_size: int = 4096,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise CapkitError("Verifier needs a capkit Keyring")
        if isinstance(proof_window, bool) or not isinstance(proof_window, int) or not 0 < proof_window <= 3600:
            raise CapkitError("proof_window must be 1 to 3600 seconds")
        self._keyring = keyring
        self._allow_bearer = bool(allow_bearer)
        self._proof_window = proof_window
        self._replay = MemoryReplayCache() if replay_cache is None else replay_cache
        self._limits = limits
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[tuple[bytes, object], VerifiedChain] = {}
        self._delegations: dict[bytes, bool] = {}
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
        """Parse ``token``, verify its HMAC chain and its delegations, without any call.

        Raises ``MalformedToken`` (``TokenTooLarge``), ``UnknownKey``,
        ``BadSignature`` or ``BadDelegation``; their ``code`` is the reason code
        ``authorize`` reports.
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
        structural = any(c.structural for c in caveats)
        if structural:
            # Delegations sign the chain's intermediate signatures: keep them all.
            signatures = chain.signatures(k0, identifier_bytes, encoded)
            valid = chain.matches(signatures[-1], signature)
        else:
            signatures = []
            valid = chain.verify(k0, identifier_bytes, encoded, signature)
        if not valid:
            raise BadSignature(
                "the token's signature does not verify: it was altered or not minted with this key",
                token_id=identifier.token_id,
            )
        if not structural:
            return VerifiedChain(identifier.token_id, identifier.key_id, location, caveats, (0,) * len(caveats),
                                 (None,) * len(caveats), (Hop(0, None),), None, (), signature)
        return self._walk_holders(identifier.token_id, identifier.key_id, location, caveats, encoded, signatures,
                                  signature)

    def _walk_holders(self, token_id: str, key_id: str, location: str, caveats: tuple[Caveat, ...],
                      encoded: tuple[bytes, ...], signatures: list[bytes], signature: bytes) -> VerifiedChain:
        holder: PublicKey | None = None
        hop = 0
        hops: list[int] = []
        agents: list[str | None] = []
        links = [Hop(0, None)]
        depth_caveats: list[tuple[int, int, int]] = []
        for index, caveat in enumerate(caveats):
            hops.append(hop)
            agents.append(holder.fingerprint if holder is not None and hop > 0 else None)
            if isinstance(caveat, Holder):
                if holder is not None:
                    raise BadDelegation(
                        f"caveat {index + 1} names another holder; a holder changes only through a signed delegation",
                        token_id=token_id)
                holder = caveat.public_key
                links[0] = Hop(0, holder.fingerprint)
            elif isinstance(caveat, Delegate):
                if holder is None:
                    raise BadDelegation(f"caveat {index + 1} delegates a token that has no holder", token_id=token_id)
                if not self._delegation_signed(holder, caveat, encoded[index], signatures[index], hop + 1):
                    raise BadDelegation(
                        f"caveat {index + 1}: the delegation to agent {caveat.to.fingerprint} is not signed by the "
                        f"token's holder at that point (agent {holder.fingerprint})", token_id=token_id)
                hop += 1
                holder = caveat.to
                links.append(Hop(hop, holder.fingerprint))
            elif isinstance(caveat, MaxDepth):
                depth_caveats.append((index, caveat.n, hop))
        failures = tuple(
            Reason(Code.DEPTH_EXCEEDED,
                   f"the token went through {hop} delegation{'s' if hop != 1 else ''}; at most {limit} allowed",
                   index + 1, caveats[index], at_hop, agents[index])
            for index, limit, at_hop in depth_caveats if hop > limit
        )
        return VerifiedChain(token_id, key_id, location, caveats, tuple(hops), tuple(agents), tuple(links),
                             holder, failures, signature)

    def _delegation_signed(self, holder: PublicKey, caveat: Delegate, encoded: bytes, previous: bytes,
                           hop: int) -> bool:
        memo = holder.raw + previous + encoded
        if self._delegations.get(memo):
            return True
        if not holder.verify(caveat.signature, delegation_message(previous, caveat.to, hop)):
            return False
        with self._lock:
            if len(self._delegations) >= self._cache_size:
                self._delegations.pop(next(iter(self._delegations)))
            self._delegations[memo] = True
        return True

    # -------------------------------------------------------------- decisions

    def authorize(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None" = None) -> Decision:
        """Decide whether ``invocation`` is within the authority of ``token``. Never raises for bad input.

        ``proof`` is required when the token names a holder: a ``Proof`` (or its
        text) made by the current holder for exactly this invocation.
        """
        try:
            return self._authorize(token, invocation, proof)
        except (MalformedToken, UnknownKey, BadSignature, BadDelegation) as exc:
            return Decision.deny(exc.code, exc.message, exc.token_id)
        except Exception:  # fail closed on anything unforeseen; never leak details
            return Decision.deny(Code.INTERNAL_ERROR, "the verifier could not evaluate this call; it is denied")

    def _authorize(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None") -> Decision:
        verified = self.verify_chain(token)
        try:
            call = validate(invocation, self._clock(), self._limits)
        except InvocationProblem as exc:
            return Decision(False, (Reason(Code.BAD_INVOCATION, str(exc)),), verified.token_id, verified.chain)
        reasons = list(verified.failures)
        accepted: Proof | None = None
        holder = verified.holder
        if holder is None:
            if not self._allow_bearer:
                reasons.append(Reason(Code.BEARER_NOT_ALLOWED,
                                      "the token names no holder, and this verifier accepts only holder-bound tokens"))
        elif proof is None:
            reasons.append(Reason(Code.PROOF_MISSING,
                                  f"the token is held by agent {holder.fingerprint}; the call carries no proof of possession"))
        else:
            accepted, failure = self._check_proof(verified, holder, invocation, call.at, proof)  # type: ignore[arg-type]
            if failure is not None:
                reasons.append(failure)
        for index, caveat in enumerate(verified.caveats):
            if caveat.structural:
                continue
            failure = caveat.check(call)
            if failure is not None:
                reasons.append(Reason(failure.code, failure.message, index + 1, caveat, verified.hops[index],
                                      verified.agents[index]))
        if reasons:
            return Decision(False, tuple(reasons), verified.token_id, verified.chain)
        if accepted is not None and not self._replay.add(accepted.nonce, accepted.at + self._proof_window, call.at):
            return Decision(False, (Reason(Code.PROOF_REPLAYED,
                                           "this proof was already used; every call needs a fresh proof"),),
                            verified.token_id, verified.chain)
        return Decision(True, (), verified.token_id, verified.chain)

    def _check_proof(self, verified: VerifiedChain, holder: PublicKey, invocation: object, now: float,
                     proof: "Proof | str") -> "tuple[Proof | None, Reason | None]":
        try:
            parsed = Proof.parse(proof)
        except MalformedProof as exc:
            return None, Reason(Code.BAD_PROOF, f"the proof cannot be read: {exc.message}")
        if parsed.public_key != holder:
            return None, Reason(Code.WRONG_HOLDER,
                                f"the proof is signed by agent {parsed.public_key.fingerprint}, "
                                f"but the token is held by agent {holder.fingerprint}")
        skew = parsed.at - now
        if abs(skew) > self._proof_window:
            when = f"{int(-skew)} s old" if skew < 0 else f"dated {int(skew)} s in the future"
            return None, Reason(Code.PROOF_STALE,
                                f"the proof is {when}; proofs are accepted within {self._proof_window} s")
        message = proof_message(verified.signature, invocation_digest(invocation), parsed.at, parsed.nonce)  # type: ignore[arg-type]
        if not holder.verify(parsed.signature, message):
            return None, Reason(Code.BAD_PROOF,
                                "the proof does not match this call (tool, arguments, audience) or this token")
        return parsed, None
