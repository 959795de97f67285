"""``Verifier``: the one place where capkit decides whether a call is allowed.

``authorize(token, invocation, proof=None)`` never raises for bad input; it
returns a ``Decision``. The steps (specs/SPEC.md §11 and §16):

1. verify the chain: parse the token within the limits, refuse a location
   this verifier does not serve, find the key named by its identifier,
   recompute the HMAC chain from the location's root key and compare it with
   the tail signature in constant time; then walk the chain of holders,
   checking every delegation signature against the holder before it;
2. validate the invocation;
3. holder binding: a bearer token is refused unless the verifier allows
   bearers; a holder-bound token needs a fresh proof by its current holder
   over this exact call. If this fails, the decision reports only that: a
   thief holding the token text learns nothing about the grant, and costs the
   verifier no argument checks;
4. check every caveat and report every one that fails (argument checks are
   bounded by ``Limits.max_match_work``);
5. only if nothing failed, in one atomic operation of the store: revocation,
   the proof's nonce (a replay is refused), every budget and call limit.

A verified chain (step 1, including the Ed25519 checks of its delegations) is
cached by the exact token text (or bytes) together with the keyring's state;
each distinct caveat's bytes are decoded once; delegation signatures are cached
by the signature they bind. Per-call checks (time, arguments, proof) run every
time. Replacing the keyring (``use_keyring``) invalidates every cached chain.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

import attrs

from . import b64 as _b64
from .caveats import REGISTRY, Budget, CallLimit, Caveat, Delegate, Holder, MaxDepth, Registry
from .caveats._fields import show
from .caveats.base import Failure
from .caveats.limits import describe_window, period_of, rolling_seconds
from .codes import Code
from .decision import Decision, Hop, Reason
from .errors import (
    BadDelegation,
    BadSignature,
    CapkitError,
    InvalidInvocation,
    MalformedProof,
    MalformedToken,
    NothingSpent,
    StoreUnavailable,
    UnknownKey,
    WrongLocation,
)
from .holder import Proof, delegation_message, proof_message
from .invocation import invocation_digest, validate
from .keys import Keyring
from .limits import DEFAULT_LIMITS, Limits
from .publickey import PublicKey
from .state import MemoryStore, Store
from .state.types import Exceeded, Meter, Reservation, StateRequest, StateResult, Usage
from .token import chain
from .token import Token
from .token.binary import decode as decode_binary
from .token.identifier import location_problem
from .token.token import decode_text

_HOP_ID = re.compile(r"[A-Za-z0-9_-]{22}(?:\.[A-Za-z0-9_-]{8})?", re.ASCII)
_log = logging.getLogger("capkit.verifier")

#: Default freshness window of proofs, in seconds, in both directions (clock skew).
PROOF_WINDOW = 60
#: The widest freshness window any verifier may accept. Stores keep every proof nonce until
#: ``proof time + MAX_PROOF_WINDOW + 1``, so a nonce outlives every window that would accept its
#: proof, whatever the windows of the verifiers sharing the store.
MAX_PROOF_WINDOW = 300
#: Default lease of a reservation: one still open after this many seconds lapses (counts as spent).
RESERVATION_TIMEOUT = 300
#: How often ``complete`` tries a store that fails, and how long it waits between tries (seconds).
COMMIT_ATTEMPTS = 3
COMMIT_BACKOFF = (0.05, 0.25)


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
    cap: Decimal
    committed: Decimal
    reserved: Decimal


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

    def check(self, call: "object", *, listing: bool = False) -> list[Reason]:
        """Every non-structural caveat that ``call`` (a validated ``Call``) fails, in order, without shared state.

        With ``listing`` the caveats about tools and arguments are skipped: what
        is left (time, audience, unreadable caveats) decides whether the token may
        list at all; ``grants_tool`` then decides what the listing shows.
        """
        from .caveats import Tools
        from .caveats.arguments import ScopedCaveat

        reasons = []
        for index, caveat in enumerate(self.caveats):
            if caveat.structural or (listing and isinstance(caveat, (Tools, ScopedCaveat))):
                continue
            failure = caveat.check(call)  # type: ignore[arg-type]
            if failure is not None:
                reasons.append(Reason(failure.code, failure.message, index + 1, caveat, self.hops[index],
                                      self.agents[index]))
        return reasons

    def grants_tool(self, tool: str) -> bool:
        """True if every ``Tools`` caveat of the chain grants ``tool`` (and no caveat is unreadable).

        What a listing (MCP ``tools/list``) may show: a tool no call of this token could reach is hidden.
        """
        from .caveats import Tools, UnknownCaveat

        for caveat in self.caveats:
            if isinstance(caveat, UnknownCaveat) or (isinstance(caveat, Tools) and not caveat.grants(tool)):
                return False
        return True


class _EveryLocation:
    """Marker: a verifier that serves every location of its keyring (administration tools only)."""

    def __repr__(self) -> str:
        return "EVERY_LOCATION"


#: ``Verifier(keyring, location=EVERY_LOCATION)``: accept tokens of any location the keyring can verify.
#: For administration (inspecting, listing budgets, revoking), never for a tool backend.
EVERY_LOCATION: Any = _EveryLocation()


def _served_locations(keyring: Keyring, location: "str | Iterable[str] | None") -> "frozenset[str] | None":
    if location is EVERY_LOCATION:
        return None
    if location is None:
        if keyring.has_master_key:
            raise CapkitError("a keyring with a master key verifies tokens of every location: say which this "
                              "verifier serves, Verifier(keyring, location=\"bank\") (or pass "
                              "keyring.for_location(\"bank\"))")
        served = frozenset(keyring.locations)
    elif isinstance(location, str):
        served = frozenset({location})
    else:
        try:
            served = frozenset(location)
        except TypeError:
            raise CapkitError("location is a location name or a list of them") from None
    if not served:
        raise CapkitError("the verifier must serve at least one location")
    for name in served:
        problem = location_problem(name)
        if problem is not None:
            raise CapkitError(f"served location {problem}")
    return served


class Verifier:
    """Authorizes tool calls against capkit tokens.

    ``keyring`` holds the keys to verify with; ``location`` names the
    location(s) this verifier serves (required with a master keyring; a
    ``Keyring.for_location`` keyring serves its own). A token for another
    location is denied (``wrong_location``). ``clock`` returns Unix seconds
    and is used when an invocation carries no time. Bearer tokens (no holder)
    are refused unless ``allow_bearer`` is true. Proofs must be within
    ``proof_window`` seconds (at most ``MAX_PROOF_WINDOW``) of the call's time,
    either way. ``store`` keeps proof nonces, budgets, call counts and
    revocations (``capkit.state``; in this process's memory by default: pass a
    shared store when several verifiers serve the same tokens). A reservation
    neither committed nor released within ``reservation_timeout`` seconds
    lapses: it counts as spent.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        location: "str | Iterable[str] | None" = None,
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
            raise CapkitError("Verifier needs a capkit Keyring (Keyring.load(path) or Keyring.generate())")
        if isinstance(proof_window, bool) or not isinstance(proof_window, int) or \
                not 0 < proof_window <= MAX_PROOF_WINDOW:
            raise CapkitError(f"proof_window must be 1 to {MAX_PROOF_WINDOW} seconds")
        if isinstance(reservation_timeout, bool) or not isinstance(reservation_timeout, (int, float)) or \
                not 0 < reservation_timeout <= 86400:
            raise CapkitError("reservation_timeout must be between 0 and 86400 seconds")
        if not isinstance(limits, Limits) or not isinstance(registry, Registry) or not callable(clock):
            raise CapkitError("limits must be a capkit Limits, registry a Registry and clock a callable")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise CapkitError("cache_size must be a positive integer")
        self._locations = _served_locations(keyring, location)
        self._keyring = keyring
        self._allow_bearer = bool(allow_bearer)
        self._proof_window = proof_window
        self._store: Store = MemoryStore() if store is None else store
        self._lease = float(reservation_timeout)
        self._limits = limits
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[tuple[bytes, object], VerifiedChain] = {}
        self._delegations: dict[bytes, bool] = {}
        self._caveats: dict[bytes, Caveat] = {}
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        """The keyring tokens are verified with."""
        return self._keyring

    @property
    def locations(self) -> "frozenset[str] | None":
        """The locations this verifier serves (None: every location, ``EVERY_LOCATION``)."""
        return self._locations

    @property
    def store(self) -> Store:
        """The store holding nonces, budgets, call counts and revocations."""
        return self._store

    @property
    def limits(self) -> Limits:
        """The size and work limits applied to tokens and calls."""
        return self._limits

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

        Raises ``MalformedToken`` (``TokenTooLarge``), ``WrongLocation``,
        ``UnknownKey``, ``BadSignature`` or ``BadDelegation``; their ``code`` is
        the reason code ``authorize`` reports.
        """
        keyring = self._keyring
        try:
            cache_key = (keyring.state, token.to_bytes() if isinstance(token, Token) else token)
            return self._cache[cache_key]
        except KeyError:
            pass
        except TypeError:  # unhashable input: not a token
            raise MalformedToken(f"a token must be text or bytes, not {type(token).__name__}") from None
        verified = self._verify_uncached(token, keyring)
        with self._lock:
            if self._keyring is keyring:
                if len(self._cache) >= self._cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[cache_key] = verified
        return verified

    def _decode_caveat(self, raw: bytes) -> Caveat:
        """The caveat of these exact bytes, decoded once per verifier (keyed by the bytes themselves)."""
        found = self._caveats.get(raw)
        if found is None:
            found = self._registry.decode(raw, self._limits)
            with self._lock:
                if len(self._caveats) >= self._cache_size:
                    self._caveats.pop(next(iter(self._caveats)))
                self._caveats[raw] = found
        return found

    def _verify_uncached(self, token: "Token | str | bytes", keyring: Keyring) -> VerifiedChain:
        if isinstance(token, Token):
            location, identifier, caveats = token.location, token.identifier, token.caveats
            identifier_bytes, encoded, signature = identifier.encode(), token.encoded_caveats, token.signature
        else:
            from .token.token import decode_header

            raw = decode_binary(decode_text(token, self._limits), self._limits)
            location, identifier = decode_header(raw)
            caveats = tuple([self._decode_caveat(c) for c in raw.caveats])
            identifier_bytes, encoded, signature = raw.identifier, raw.caveats, raw.signature
        if self._locations is not None and location not in self._locations:
            served = ", ".join(sorted(self._locations))
            raise WrongLocation(f"the token is for location {location!r}; this verifier serves {served}",
                                token_id=identifier.token_id)
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

        ``token`` is a ``Token`` or its text (``token.serialize()``). ``proof`` is
        required when the token names a holder: a ``Proof`` (or its text) made by
        the current holder for exactly this invocation.
        """
        return self._decide(token, invocation, proof, listing=False)

    def authorize_listing(self, token: "Token | str | bytes", invocation: object,
                          proof: "Proof | str | None" = None) -> Decision:
        """Decide whether the holder of ``token`` may list what it grants (tools, resources, prompts).

        The same checks as ``authorize`` except the caveats about tools and
        arguments (the listing shows only what ``VerifiedChain.grants_tool``
        admits): chain, location, holder proof over ``invocation``, time and
        audience caveats, revocation and the proof's nonce. Reserves nothing.
        """
        return self._decide(token, invocation, proof, listing=True)

    def _decide(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None", *,
                listing: bool) -> Decision:
        try:
            return self._authorize(token, invocation, proof, listing)
        except (MalformedToken, WrongLocation, UnknownKey, BadSignature, BadDelegation) as exc:
            return Decision.deny(exc.code, _token_problem(exc, token), exc.token_id)
        except Exception:  # fail closed on anything unforeseen; never leak details
            _log.exception("capkit: the verifier failed unexpectedly; the call is denied")
            return Decision.deny(Code.INTERNAL_ERROR, "the verifier could not evaluate this call; it is denied")

    def _authorize(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None",
                   listing: bool) -> Decision:
        verified = self.verify_chain(token)
        try:
            call = validate(invocation, self._clock(), self._limits)
        except InvalidInvocation as exc:
            return Decision(False, (Reason(Code.BAD_INVOCATION, exc.message),), verified.token_id, verified.chain)
        accepted: Proof | None = None
        holder = verified.holder
        binding: Reason | None = None
        if holder is None:
            if not self._allow_bearer:
                binding = Reason(Code.BEARER_NOT_ALLOWED,
                                 "the token names no holder, and this verifier accepts only holder-bound tokens")
        elif proof is None:
            binding = Reason(Code.PROOF_MISSING,
                             f"the token is held by agent {holder.fingerprint}; the call carries no proof of possession")
        else:
            accepted, binding = self._check_proof(verified, holder, invocation, call.at, proof)  # type: ignore[arg-type]
        if binding is not None:  # only the holder may learn what the grant says, or make the verifier work
            return Decision(False, (binding,), verified.token_id, verified.chain)
        reasons = list(verified.failures) + verified.check(call, listing=listing)
        if reasons:
            return Decision(False, tuple(reasons), verified.token_id, verified.chain)
        return self._decide_with_state(verified, call, accepted, listing)

    def _decide_with_state(self, verified: VerifiedChain, call: "object", accepted: Proof | None,
                           listing: bool = False) -> Decision:
        """Step 5: revocation, nonce and every budget and counter, atomically in the store."""
        meters: list[Meter] = []
        by_key: dict[str, MeteredCaveat] = {}
        request = verified.revocation_check
        for item in () if listing else verified.metered:
            if not item.caveat.applies_to(call.tool):  # type: ignore[attr-defined]
                continue
            amount = item.caveat.amount(call)  # type: ignore[arg-type]
            if isinstance(amount, Failure):  # checked with the other caveats; never reached
                raise CapkitError("a metered caveat has no amount")
            period = period_of(item.caveat.window, call.at)  # type: ignore[attr-defined]
            key = item.key + (":" + period if period else "")
            by_key[key] = item
            meters.append(Meter(key, item.caveat.cap, amount, rolling_seconds(item.caveat.window),
                                item.caveat.refundable))
        if meters or accepted is not None:
            request = StateRequest(
                verified.token_id, verified.hop_ids, None if accepted is None else accepted.nonce,
                0.0 if accepted is None else float(accepted.at + MAX_PROOF_WINDOW + 1), tuple(meters), self._lease)
        deny = lambda *reasons: Decision(False, tuple(reasons), verified.token_id, verified.chain)  # noqa: E731
        try:
            result = self._store.apply(request, call.at)  # type: ignore[attr-defined]
            problem = _answer_problem(result, request, by_key)
        except StoreUnavailable as exc:
            return deny(Reason(Code.STATE_UNAVAILABLE, f"shared state is unavailable ({exc.message}); "
                                                       "the call is denied"))
        except Exception as exc:  # a store that fails in any other way never allows
            return deny(Reason(Code.STATE_UNAVAILABLE, f"shared state failed ({type(exc).__name__}); "
                                                       "the call is denied"))
        if problem is not None:
            return deny(Reason(Code.STATE_UNAVAILABLE, f"the store answered something unusable ({problem}); "
                                                       "the call is denied"))
        if result.revoked is not None:
            revoked_id, why = result.revoked
            hop = verified.hop_ids.index(revoked_id) if revoked_id in verified.hop_ids else 0
            return deny(Reason(Code.REVOKED, f"hop {hop} of this token (id {revoked_id}) was revoked"
                                             + (f": {show(why)[1:-1]}" if why else "")))
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
                    left = max(caveat.cap - exceeded.used, Decimal(0))
                    code = Code.BUDGET_EXCEEDED
                    text = (f"{caveat.arg} {show(exceeded.amount)} exceeds the budget: {show(left)} of "
                            f"{show(caveat.cap)} left {window}")
                reasons.append(Reason(code, text, item.index + 1, caveat, verified.hops[item.index],
                                      verified.agents[item.index]))
            return deny(*reasons)
        return Decision(True, (), verified.token_id, verified.chain, result.reservation)

    # ------------------------------------------------------- after the tool ran

    def complete(self, decision: Decision, *, spent: bool = True) -> bool:
        """Settle an allowed call's reservation: commit it, or, only with ``spent=False``, give back its budgets.

        ``spent=False`` is the tool backend saying explicitly that the call spent
        nothing (the payment was declined before any money moved): budget room
        is given back; call limits still count the attempt. Anything else (the
        tool ran, failed, raised, or its outcome is unknown) commits.

        A store that fails is tried ``COMMIT_ATTEMPTS`` times; if it still fails,
        ``StoreUnavailable`` is raised and the reservation stays open, which the
        store settles as spent when its lease runs out (never given back).
        Returns False if the store refused: a release after the lease ran out
        (the spend stands), or a commit of a released reservation.
        """
        return self._settle(decision, "commit" if spent else "release")

    def cancel(self, decision: Decision) -> bool:
        """The allowed call was not made at all (the tool never ran): give back everything it reserved,
        call limits included. Only for the verifier's caller, which knows the tool was never invoked;
        when that is not certain, use ``complete``."""
        return self._settle(decision, "cancel")

    def _settle(self, decision: Decision, how: str) -> bool:
        if not isinstance(decision, Decision):
            raise CapkitError("settling a call needs the Decision that authorize returned")
        reservation = decision.reservation
        if reservation is None:
            return True
        store = self._store
        action = {"commit": store.commit, "release": store.release,
                  "cancel": lambda r, now: store.release(r, now, keep_attempts=False)}[how]
        spent = how == "commit"
        failure: StoreUnavailable | None = None
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                done = action(reservation, self._clock())
            except StoreUnavailable as exc:
                failure = exc
            except Exception as exc:
                failure = StoreUnavailable(f"the store failed to {how}: {type(exc).__name__}")
            else:
                if done is not True and done is not False:
                    failure = StoreUnavailable(f"the store answered something unusable to a {how}")
                else:
                    if not done:
                        _log.warning("capkit: the store refused to %s reservation %s (%s)", how, reservation.id,
                                     "it was released" if spent else "its lease ran out: the spend stands")
                    return done
            if attempt + 1 < COMMIT_ATTEMPTS:
                time.sleep(COMMIT_BACKOFF[min(attempt, len(COMMIT_BACKOFF) - 1)])
        assert failure is not None
        _log.warning("capkit: could not %s reservation %s: %s; it stays counted and lapses as spent",
                     how, reservation.id, failure.message)
        raise failure

    @contextmanager
    def authorized(self, token: "Token | str | bytes", invocation: object,
                   proof: "Proof | str | None" = None) -> Iterator[Decision]:
        """Authorize, run the body, then commit what it reserved.

        Raises ``AuthorizationDenied`` (carrying the decision) when the call is
        denied; the body does not run. A body that raises ``NothingSpent`` gives
        its budget room back; any other exception commits (the outcome is not known).
        """
        from .errors import AuthorizationDenied

        decision = self.authorize(token, invocation, proof)
        if not decision.allowed:
            raise AuthorizationDenied(decision)
        try:
            yield decision
        except NothingSpent:
            self.complete(decision, spent=False)
            raise
        except BaseException:
            self.complete(decision, spent=True)
            raise
        self.complete(decision, spent=True)

    # ------------------------------------------------------------ administration

    def revoke(self, hop_id: str, reason: str | None = None) -> None:
        """Deny the token whose hop has this id, and every token derived from it, in every verifier
        sharing this store. Hop ids are shown by ``Decision.chain`` and ``capkit inspect``."""
        if not isinstance(hop_id, str) or not _HOP_ID.fullmatch(hop_id):
            raise CapkitError("a hop id is a 22-character token id, optionally followed by . and 8 characters "
                              "(see capkit inspect TOKEN, or Decision.chain); not a whole token")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise CapkitError("a revocation reason is text of at most 500 characters")
        self._store.revoke(hop_id, reason, self._clock())

    def budgets(self, token: "Token | str | bytes", at: "float | None" = None) -> tuple[BudgetStatus, ...]:
        """Committed and reserved amounts of every budget and call limit of ``token`` (current period)."""
        from .caveats.base import to_seconds

        verified = self.verify_chain(token)
        now = self._clock() if at is None else float(to_seconds(at, "at"))
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


def _token_problem(exc: CapkitError, token: object) -> str:
    """The sentence of a token-level failure, with a hint when the caller passed ``str(token)``."""
    if isinstance(exc, MalformedToken) and isinstance(token, str) and token.startswith("Token(id="):
        return (f"{exc.message}: this is the repr of a Token, not its text; pass the Token itself or "
                "token.serialize()")
    return exc.message


def _answer_problem(result: object, request: StateRequest, by_key: dict) -> str | None:
    """Why a store's answer cannot be acted on, or None: anything but a well-formed StateResult is refused."""
    if not isinstance(result, StateResult):
        return f"a {type(result).__name__} instead of a result"
    outcomes = [result.revoked is not None, bool(result.replayed), bool(result.exceeded)]
    if sum(outcomes) > 1 or not isinstance(result.replayed, bool):
        return "contradictory outcomes"
    if result.revoked is not None:
        if not (isinstance(result.revoked, tuple) and len(result.revoked) == 2
                and isinstance(result.revoked[0], str) and result.revoked[0] in request.revocation_ids
                and (result.revoked[1] is None or isinstance(result.revoked[1], str))):
            return "a revocation of a hop this token does not have"
        return None
    if result.replayed:
        return None if request.nonce is not None else "a replay of a call without a proof"
    if result.exceeded:
        if not isinstance(result.exceeded, tuple) or not all(
                isinstance(e, Exceeded) and e.key in by_key and isinstance(e.used, Decimal) for e in result.exceeded):
            return "an exceeded meter this call does not touch"
        return None
    reservation = result.reservation
    if request.meters:
        if not isinstance(reservation, Reservation) or not isinstance(reservation.id, str) or not reservation.id:
            return "no reservation for a call with budgets or call limits"
    elif reservation is not None:
        return "a reservation for a call that reserves nothing"
    return None
