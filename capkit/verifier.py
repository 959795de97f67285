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

import re
import threading
import time
from typing import Callable

import attrs

import hashlib
from contextlib import contextmanager
from typing import Iterator

from . import _b64
from .caveats import REGISTRY, Budget, CallLimit, Caveat, Delegate, Holder, MaxDepth, Registry
from .caveats.limits import describe_window, period_of, rolling_seconds
from .caveats.base import Failure
from .decision import Code, Decision, Hop, Reason
from .errors import AuthorizationDenied, BadDelegation, BadSignature, CapkitError, MalformedToken, UnknownKey
from .holder import MalformedProof, Proof, delegation_message, proof_message
from .invocation import InvocationProblem, invocation_digest, validate
from .keys import Keyring
from .limits import DEFAULT_LIMITS, Limits
from .publickey import PublicKey
from .state import MemoryStore, Store, StoreUnavailable
from .state.types import Meter, StateRequest, Usage
from .token import Token, chain
from .token.binary import decode as decode_binary
from .token.token import decode_fields, decode_text

_HOP_ID = re.compile(r"[A-Za-z0-9_-]{22}(?:\.[A-Za-z0-9_-]{8})?", re.ASCII)


def _plain(value: object) -> str:
    from .caveats._fields import show

    return show(value)


#: Default freshness window of proofs, in seconds, in both directions (clock skew).
PROOF_WINDOW = 60
#: Default lease of a reservation: an uncommitted one is released after this many seconds.
RESERVATION_TIMEOUT = 300


def hop_id(token_id: str, delegation_signature: bytes) -> str:
    """The id of the hop a delegation starts: ``TOKENID.SUFFIX`` (8 characters derived from its signature)."""
    return token_id + "." + _b64.encode(hashlib.sha256(b"capkit/v1/hop\x00" + delegation_signature).digest()[:6])



def meter_key(token_id: str, signature_after: bytes) -> str:
    """The id of a budget or call counter: unique to the exact chain prefix that ends with its caveat."""
    return _b64.encode(hashlib.sha256(b"capkit/v1/meter\x00" + token_id.encode() + signature_after).digest()[:18])


@attrs.frozen
class MeteredCaveat:
    """A budget or call limit of a verified chain, with the id of its counter."""

    index: int
    caveat: "Budget | CallLimit"
    key: str


@attrs.frozen
class BudgetStatus:
    """What ``Verifier.budgets`` reports for one budget or call limit of a token."""

    caveat_index: int
    caveat: "Budget | CallLimit"
    hop: int
    agent: str | None
    period: str
    cap: "object"
    committed: "object"
    reserved: "object"


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
    #: Budgets and call limits, with their counters' ids.
    metered: tuple[MeteredCaveat, ...] = ()
    _revocation_check: "StateRequest | None" = attrs.field(default=None, init=False, repr=False, eq=False)

    @property
    def hop_ids(self) -> tuple[str, ...]:
        """The id of every hop, from the grant's token id to the current holder's."""
        return self.revocation_check.revocation_ids

    @property
    def revocation_check(self) -> StateRequest:
        """The store request of a call that reserves nothing and carries no proof: the revocation check only."""
        request = self._revocation_check
        if request is None:  # built on first use, then kept with the cached chain
            request = StateRequest(self.token_id, tuple(h.id for h in self.chain), None, 0.0, (), 0.0)
            object.__setattr__(self, "_revocation_check", request)
        return request

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
    ``proof_window`` seconds of the call's time, either way. ``store`` keeps
    proof nonces, budgets, call counts and revocations (``capkit.state``; in
    this process's memory by default: pass a shared store when several
    verifiers serve the same tokens). A reservation not committed or released
    within ``reservation_timeout`` seconds is released.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        allow_bearer: bool = False,
        proof_window: int = PROOF_WINDOW,
        store: Store | None = None,
        reservation_timeout: float = RESERVATION_TIMEOUT,
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
        if not 0 < reservation_timeout <= 86400:
            raise CapkitError("reservation_timeout must be between 0 and 86400 seconds")
        self._store: Store = MemoryStore() if store is None else store
        self._lease = float(reservation_timeout)
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

    @property
    def store(self) -> Store:
        """The store holding nonces, budgets, call counts and revocations."""
        return self._store

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
        structural = any(c.structural or c.metered for c in caveats)
        if structural:
            # Delegations and counters use the chain's intermediate signatures: keep them all.
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
                                 (None,) * len(caveats), (Hop(0, None, identifier.token_id),), None, (), signature)
        return self._walk_holders(identifier.token_id, identifier.key_id, location, caveats, encoded, signatures,
                                  signature)

    def _walk_holders(self, token_id: str, key_id: str, location: str, caveats: tuple[Caveat, ...],
                      encoded: tuple[bytes, ...], signatures: list[bytes], signature: bytes) -> VerifiedChain:
        holder: PublicKey | None = None
        hop = 0
        hops: list[int] = []
        agents: list[str | None] = []
        links = [Hop(0, None, token_id)]
        depth_caveats: list[tuple[int, int, int]] = []
        metered: list[MeteredCaveat] = []
        for index, caveat in enumerate(caveats):
            hops.append(hop)
            agents.append(holder.fingerprint if holder is not None and hop > 0 else None)
            if isinstance(caveat, Holder):
                if holder is not None:
                    raise BadDelegation(
                        f"caveat {index + 1} names another holder; a holder changes only through a signed delegation",
                        token_id=token_id)
                holder = caveat.public_key
                links[0] = Hop(0, holder.fingerprint, token_id)
            elif isinstance(caveat, Delegate):
                if holder is None:
                    raise BadDelegation(f"caveat {index + 1} delegates a token that has no holder", token_id=token_id)
                if not self._delegation_signed(holder, caveat, encoded[index], signatures[index], hop + 1):
                    raise BadDelegation(
                        f"caveat {index + 1}: the delegation to agent {caveat.to.fingerprint} is not signed by the "
                        f"token's holder at that point (agent {holder.fingerprint})", token_id=token_id)
                hop += 1
                holder = caveat.to
                links.append(Hop(hop, holder.fingerprint, hop_id(token_id, caveat.signature)))
            elif isinstance(caveat, MaxDepth):
                depth_caveats.append((index, caveat.n, hop))
            elif caveat.metered:
                metered.append(MeteredCaveat(index, caveat, meter_key(token_id, signatures[index + 1])))  # type: ignore[arg-type]
        failures = tuple(
            Reason(Code.DEPTH_EXCEEDED,
                   f"the token went through {hop} delegation{'s' if hop != 1 else ''}; at most {limit} allowed",
                   index + 1, caveats[index], at_hop, agents[index])
            for index, limit, at_hop in depth_caveats if hop > limit
        )
        return VerifiedChain(token_id, key_id, location, caveats, tuple(hops), tuple(agents), tuple(links),
                             holder, failures, signature, tuple(metered))

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
        return self._decide_with_state(verified, call, accepted)

    def _decide_with_state(self, verified: VerifiedChain, call: "object", accepted: Proof | None) -> Decision:
        """Steps 10-11: revocation, nonce and every budget and counter, atomically in the store."""
        meters: list[Meter] = []
        by_key: dict[str, MeteredCaveat] = {}
        if accepted is None:
            request = verified.revocation_check
        for item in verified.metered:
            if not item.caveat.applies_to(call.tool):  # type: ignore[attr-defined]
                continue
            amount = item.caveat.amount(call)  # type: ignore[arg-type]
            assert not isinstance(amount, Failure)  # checked with the other caveats
            period = period_of(item.caveat.window, call.at)  # type: ignore[attr-defined]
            key = item.key + (":" + period if period else "")
            by_key[key] = item
            meters.append(Meter(key, item.caveat.cap, amount, rolling_seconds(item.caveat.window)))
        if meters or accepted is not None:
            request = StateRequest(
                verified.token_id, verified.hop_ids, None if accepted is None else accepted.nonce,
                0.0 if accepted is None else accepted.at + self._proof_window, tuple(meters), self._lease)
        try:
            result = self._store.apply(request, call.at)  # type: ignore[attr-defined]
        except Exception as exc:  # an unreachable, slow or confused store never allows
            detail = exc.message if isinstance(exc, StoreUnavailable) else type(exc).__name__
            return Decision(False, (Reason(Code.STATE_UNAVAILABLE,
                                           f"shared state is unavailable ({detail}); the call is denied"),),
                            verified.token_id, verified.chain)
        deny = lambda *reasons: Decision(False, tuple(reasons), verified.token_id, verified.chain)  # noqa: E731
        if result.revoked is not None:
            revoked_id, why = result.revoked
            hop = verified.hop_ids.index(revoked_id) if revoked_id in verified.hop_ids else 0
            return deny(Reason(Code.REVOKED, f"hop {hop} of this token (id {revoked_id}) was revoked"
                                             + (f": {why}" if why else "")))
        if result.replayed:
            return deny(Reason(Code.PROOF_REPLAYED, "this proof was already used; every call needs a fresh proof"))
        if result.exceeded:
            reasons = []
            for exceeded in result.exceeded:
                item = by_key[exceeded.key]
                caveat = item.caveat
                window = describe_window(caveat.window)
                if isinstance(caveat, CallLimit):
                    calls = "1 call" if caveat.n == 1 else f"{caveat.n} calls"
                    code, text = Code.CALLS_EXCEEDED, f"the limit of {calls} {window} is used up"
                else:
                    left = max(caveat.cap - exceeded.used, 0)
                    code = Code.BUDGET_EXCEEDED
                    text = (f"{caveat.arg} {_plain(exceeded.amount)} exceeds the budget: {_plain(left)} of "
                            f"{_plain(caveat.cap)} left {window}")
                reasons.append(Reason(code, text, item.index + 1, caveat, verified.hops[item.index],
                                      verified.agents[item.index]))
            return deny(*reasons)
        return Decision(True, (), verified.token_id, verified.chain, result.reservation)

    # ------------------------------------------------------- after the tool ran

    def complete(self, decision: Decision, ok: bool) -> bool:
        """Commit an allowed call's reservation if the tool succeeded (``ok``), else release it.

        Returns False when a commit came too late (the lease ran out and the room
        was released). Raises ``StoreUnavailable`` if the store cannot be reached:
        the caller should retry, since an uncommitted spend is released at the
        end of its lease. Decisions without a reservation need nothing.
        """
        reservation = decision.reservation
        if reservation is None:
            return True
        try:
            if ok:
                return self._store.commit(reservation, self._clock())
            return self._store.release(reservation, self._clock())
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"the store failed to {'commit' if ok else 'release'}: {type(exc).__name__}") from None

    @contextmanager
    def authorized(self, token: "Token | str | bytes", invocation: object,
                   proof: "Proof | str | None" = None) -> Iterator[Decision]:
        """Authorize, run the body, then commit (it returned) or release (it raised).

        Raises ``AuthorizationDenied`` (carrying the decision) when the call is
        denied; the body does not run.
        """
        decision = self.authorize(token, invocation, proof)
        if not decision.allowed:
            raise AuthorizationDenied(decision)
        try:
            yield decision
        except BaseException:
            self.complete(decision, ok=False)
            raise
        self.complete(decision, ok=True)

    # ------------------------------------------------------------ administration

    def revoke(self, hop_id: str, reason: str | None = None) -> None:
        """Deny the token whose hop has this id, and every token derived from it, in every verifier
        sharing this store. Hop ids are shown by ``Decision.chain`` and ``capkit inspect``."""
        if not isinstance(hop_id, str) or not _HOP_ID.fullmatch(hop_id):
            raise CapkitError("a hop id is a 22-character token id, optionally followed by . and 8 characters")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise CapkitError("a revocation reason is text of at most 500 characters")
        self._store.revoke(hop_id, reason, self._clock())

    def budgets(self, token: "Token | str | bytes", at: float | None = None) -> tuple[BudgetStatus, ...]:
        """Committed and reserved amounts of every budget and call limit of ``token`` (current period)."""
        verified = self.verify_chain(token)
        now = self._clock() if at is None else at
        keys = []
        for item in verified.metered:
            period = period_of(item.caveat.window, now)
            keys.append((item.key + (":" + period if period else ""), rolling_seconds(item.caveat.window)))
        usages: list[Usage] = self._store.usage(verified.token_id, keys, now) if keys else []
        return tuple(
            BudgetStatus(item.index + 1, item.caveat, verified.hops[item.index], verified.agents[item.index],
                         period_of(item.caveat.window, now), item.caveat.cap, usage.committed, usage.reserved)
            for item, usage in zip(verified.metered, usages)
        )

    def close(self) -> None:
        """Close the store."""
        self._store.close()

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
