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
import hmac
import logging
import re
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import attrs

from . import b64 as _b64
from .audit import AuditPolicy, AuditSink, decision_record, new_record_id, settlement_record
from .caveats import DISCHARGE_REGISTRY, REGISTRY, Approval, Approved, Budget, CallLimit, Caveat, Delegate, Once, Registry
from .caveats._fields import TOOL_NAME, show
from .caveats.base import Call, Failure, to_seconds
from .caveats.limits import describe_window, period_of, rolling_seconds
from .codes import Code
from .decision import Decision, Reason
from .discharge import ApprovalRequest, ApprovalTicket, Discharge, approval_terms, check_discharge, token_tail_id
from .errors import (
    AuditError,
    AuthorizationDenied,
    BadDischarge,
    BadDelegation,
    BadSignature,
    CapkitError,
    InvalidCaveat,
    InvalidInvocation,
    MalformedProof,
    MalformedToken,
    NothingSpent,
    StoreUnavailable,
    UnknownKey,
    WrongLocation,
    denial,
)
from .invocation import Invocation, invocation_digest, validate
from .keys import Keyring
from .limits import DEFAULT_LIMITS, Limits
from .messages import mac_key, proof_message
from .proof import Proof
from .publickey import PublicKey
from .state import MemoryStore, Store
from .state.types import Exceeded, Meter, Reservation, StateRequest, StateResult, Usage
from .token.binary import decode as decode_binary
from .token.identifier import location_problem
from .token.decode import decode_header, decode_text
from .token.verify import MeteredCaveat, VerifiedToken, check_delegation, hop_id, meter_key, verify_token

if TYPE_CHECKING:
    from .token.token import Token

__all__ = ["EVERY_LOCATION", "MAX_PROOF_WINDOW", "PROOF_WINDOW", "BudgetStatus", "MeteredCaveat", "Verifier",
           "VerifiedToken", "hop_id", "meter_key"]

_HOP_ID = re.compile(r"[A-Za-z0-9_-]{22}(?:\.[A-Za-z0-9_-]{8})?", re.ASCII)
_ONE = Decimal(1)
#: The most discharges one call may carry.
MAX_DISCHARGES = 16
_VERIFIER_ID = re.compile(r"[!-~]{1,200}", re.ASCII)
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
        audit: "AuditSink | Iterable[AuditSink] | None" = None,
        audit_policy: AuditPolicy = AuditPolicy(),
        verifier_id: str | None = None,
        proof_modes: "Iterable[str]" = ("signature",),
        proof_key: "Any" = None,
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
        modes = frozenset([proof_modes] if isinstance(proof_modes, str) else proof_modes)
        if not modes or not modes <= {"signature", "mac"}:
            raise CapkitError('proof_modes is a set of "signature" and "mac"')
        if "mac" in modes and not callable(getattr(proof_key, "x25519_private", None)):
            raise CapkitError("accepting MAC proofs needs proof_key: the verifier's AgentKey, whose public key the "
                              "agents derive their MAC key with")
        self._proof_modes = modes
        self._proof_key = proof_key
        self._proof_x25519 = proof_key.x25519_private() if "mac" in modes else None
        self._mac_keys: dict[bytes, bytes] = {}
        self._audit = _audit_sinks(audit)
        if not isinstance(audit_policy, AuditPolicy):
            raise CapkitError("audit_policy must be a capkit AuditPolicy")
        self._audit_policy = audit_policy
        if verifier_id is None:
            verifier_id = "*" if self._locations is None else ",".join(sorted(self._locations))
        if not isinstance(verifier_id, str) or not _VERIFIER_ID.fullmatch(verifier_id):
            raise CapkitError("verifier_id is 1-200 printable ASCII characters without spaces")
        self._verifier_id = verifier_id
        self._keyring = keyring
        self._allow_bearer = bool(allow_bearer)
        self._proof_window = proof_window
        self._store: Store = MemoryStore() if store is None else store
        self._lease = float(reservation_timeout)
        self._limits = limits
        self._registry = registry
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[tuple[bytes, object], VerifiedToken] = {}
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

    @property
    def proof_public_key(self) -> "PublicKey | None":
        """The key agents derive MAC proofs for this verifier with (publish it), when it accepts them."""
        return None if self._proof_x25519 is None else self._proof_key.public_key  # type: ignore[union-attr]

    def verify_chain(self, token: "Token | str | bytes") -> VerifiedToken:
        """Parse ``token``, verify its HMAC chain and its delegations, without any call.

        Raises ``MalformedToken`` (``TokenTooLarge``), ``WrongLocation``,
        ``UnknownKey``, ``BadSignature`` or ``BadDelegation``; their ``code`` is
        the reason code ``authorize`` reports.
        """
        keyring = self._keyring
        data = token if isinstance(token, (str, bytes)) else _token_bytes(token)
        cache_key = (keyring.state, data)
        found = self._cache.get(cache_key)
        if found is not None:
            return found
        verified = self._verify_uncached(data, keyring)
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

    def _verify_uncached(self, data: "str | bytes", keyring: Keyring) -> VerifiedToken:
        raw = decode_binary(decode_text(data, self._limits), self._limits)
        location, identifier = decode_header(raw)
        caveats = tuple([self._decode_caveat(c) for c in raw.caveats])
        return verify_token(location, identifier, raw.identifier, caveats, raw.caveats, raw.signature, keyring,
                            self._locations, self._delegation_signed)

    def _delegation_signed(self, holder: PublicKey, caveat: Delegate, encoded: bytes, previous: bytes,
                           hop: int) -> bool:
        memo = holder.raw + previous + encoded
        if self._delegations.get(memo):
            return True
        if not check_delegation(holder, caveat, previous, hop):
            return False
        with self._lock:
            if len(self._delegations) >= self._cache_size:
                self._delegations.pop(next(iter(self._delegations)))
            self._delegations[memo] = True
        return True

    # -------------------------------------------------------------- decisions

    def authorize(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None" = None,
                  discharges: "Iterable[Discharge | str]" = ()) -> Decision:
        """Decide whether ``invocation`` is within the authority of ``token``. Never raises for bad input.

        ``token`` is a ``Token`` or its text (``token.serialize()``). ``proof`` is
        required when the token names a holder: a ``Proof`` (or its text) made by
        the current holder for exactly this invocation. ``discharges`` satisfy the
        token's third-party caveats (approvals), each bound to the token
        (``Discharge.bind``). A call that lacks an approval is denied with
        ``approval_required`` and ``Decision.approval`` says what to ask for.
        """
        return self._decide(token, invocation, proof, listing=False, discharges=discharges)

    def authorize_listing(self, token: "Token | str | bytes", invocation: object,
                          proof: "Proof | str | None" = None) -> Decision:
        """Decide whether the holder of ``token`` may list what it grants (tools, resources, prompts).

        The same checks as ``authorize`` except the caveats about tools and
        arguments (the listing shows only what ``VerifiedToken.grants_tool``
        admits): chain, location, holder proof over ``invocation``, time and
        audience caveats, revocation and the proof's nonce. Reserves nothing.
        """
        return self._decide(token, invocation, proof, listing=True)

    def _decide(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None", *,
                listing: bool, discharges: "Iterable[Discharge | str]" = ()) -> Decision:
        trace = _Trace()
        try:
            decision = self._authorize(token, invocation, proof, listing, trace, discharges)
        except (MalformedToken, WrongLocation, UnknownKey, BadSignature, BadDelegation) as exc:
            decision = Decision.deny(exc.code, _token_problem(exc, token), exc.token_id)
        except Exception:  # fail closed on anything unforeseen; never leak details
            _log.exception("capkit: the verifier failed unexpectedly; the call is denied")
            decision = Decision.deny(Code.INTERNAL_ERROR, "the verifier could not evaluate this call; it is denied")
        if not self._audit:
            return decision
        return self._record_decision(decision, invocation, trace, listing)

    def _record_decision(self, decision: Decision, invocation: object, trace: "_Trace", listing: bool) -> Decision:
        """Write the decision's audit record to every sink; deny (giving back what was reserved) if one fails."""
        record_id = new_record_id()
        try:
            call = trace.call
            digest = trace.digest
            if call is not None and digest is None:
                digest = invocation_digest(invocation)  # type: ignore[arg-type]
            tool = call.tool if call is not None else _claimed_tool(invocation)
            record = decision_record(
                record_id=record_id, at=self._clock() if call is None else call.at, verifier=self._verifier_id,
                event="listing" if listing else "decision", decision=decision, tool=tool,
                audience=None if call is None else call.audience, args=None if call is None else call.args,
                digest=digest, proof=trace.proof, reserved=trace.reserved, policy=self._audit_policy,
                approvals=trace.approvals)
            for sink in self._audit:
                sink.write(record)
        except Exception as exc:
            problem = exc.message if isinstance(exc, AuditError) else type(exc).__name__
            _log.warning("capkit: the audit record of a call could not be written (%s); the call is denied", problem)
            if decision.reservation is not None:
                try:
                    self._settle(decision, "cancel", record=False)
                except StoreUnavailable:
                    pass  # the reservation lapses as spent: never given back on an unknown outcome
            return Decision.deny(Code.AUDIT_UNAVAILABLE, f"the audit record of this call could not be written "
                                                         f"({problem}); the call is denied", decision.token_id)
        return Decision(decision.allowed, decision.reasons, decision.token_id, decision.chain, decision.reservation,
                        record_id, decision.approval)

    def _authorize(self, token: "Token | str | bytes", invocation: object, proof: "Proof | str | None",
                   listing: bool, trace: "_Trace", discharges: "Iterable[Discharge | str]" = ()) -> Decision:
        verified = self.verify_chain(token)
        try:
            call = validate(invocation, self._clock(), self._limits)
        except InvalidInvocation as exc:
            return Decision(False, (Reason(Code.BAD_INVOCATION, exc.message),), verified.token_id, verified.chain)
        trace.call = call
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
            accepted, binding = self._check_proof(verified, holder, invocation, call.at, proof, trace)  # type: ignore[arg-type]
        if binding is not None:  # only the holder may learn what the grant says, or make the verifier work
            return Decision(False, (binding,), verified.token_id, verified.chain)
        trace.proof = accepted
        reasons = list(verified.failures) + verified.check(call, listing=listing)
        once: list[tuple[int, bytes]] = []
        approval = None
        if verified.third_party and not listing:
            more, once, approval = self._check_discharges(verified, call, invocation, discharges, trace)
            reasons += more
        if reasons:
            asks = approval if all(r.code == Code.APPROVAL_REQUIRED for r in reasons) else None
            return Decision(False, tuple(reasons), verified.token_id, verified.chain, approval=asks)
        return self._decide_with_state(verified, call, accepted, listing, trace, once)

    def _check_discharges(self, verified: VerifiedToken, call: Call, invocation: object,
                          discharges: "Iterable[Discharge | str]", trace: "_Trace") \
            -> "tuple[list[Reason], list[tuple[int, bytes]], ApprovalRequest | None]":
        """Specs/SPEC.md §19.3: every third-party caveat that applies to ``call`` needs a discharge bound to
        this token; an approval's discharge must approve exactly this call, unexpired, once."""
        pending = [p for p in verified.third_party if p.caveat.needed_for(call)]  # type: ignore[attr-defined]
        if not pending:
            return [], [], None
        reasons: list[Reason] = []
        by_cid: dict[bytes, Discharge] = {}
        items = list(discharges) if not isinstance(discharges, (str, bytes)) else [discharges]
        if len(items) > MAX_DISCHARGES:
            return [Reason(Code.BAD_DISCHARGE, f"a call may carry at most {MAX_DISCHARGES} discharges")], [], None
        for item in items:
            try:
                discharge = Discharge.parse(item, self._limits)
            except BadDischarge as exc:
                return [Reason(Code.BAD_DISCHARGE, exc.message)], [], None
            if discharge.cid in by_cid:
                return [Reason(Code.BAD_DISCHARGE, "two discharges of the same caveat")], [], None
            by_cid[discharge.cid] = discharge
        digest = trace.digest
        if digest is None:
            digest = trace.digest = invocation_digest(invocation)  # type: ignore[arg-type]
        tail_id = token_tail_id(verified.signature)
        tickets: list[ApprovalTicket] = []
        once: list[tuple[int, bytes]] = []
        for pending_item in pending:
            index, caveat = pending_item.index, pending_item.caveat
            def place(code: str, message: str, index: int = index) -> Reason:
                return verified.reason(code, message, index)
            discharge = by_cid.get(caveat.cid)  # type: ignore[attr-defined]
            if discharge is None:
                if isinstance(caveat, Approval):
                    tickets.append(ApprovalTicket(caveat.approver, caveat.location, caveat.cid, index + 1))
                    reasons.append(place(Code.APPROVAL_REQUIRED, f"this call needs the approval of approver "
                                         f"{caveat.approver.fingerprint}; it has been requested"))
                else:
                    at = f" at {caveat.location}" if caveat.location else ""  # type: ignore[attr-defined]
                    reasons.append(place(Code.BAD_DISCHARGE, f"this call needs a discharge from the third party{at}"))
                continue
            problem = None
            result: "tuple[Caveat, ...] | str" = ""
            if pending_item.key is None:
                problem = "the caveat's verification id does not open: it was not added to this token as made"
            else:
                result = check_discharge(discharge, pending_item.key, verified.signature, DISCHARGE_REGISTRY,
                                         self._limits)
                if isinstance(result, str):
                    problem = result
            if problem is None:
                failed = [f.message for c in result if not isinstance(c, (Approved, Once))  # type: ignore[union-attr]
                          and (f := c.check(call)) is not None]
                if failed:
                    problem = "the discharge's own caveats are not met: " + "; ".join(failed)
                elif isinstance(caveat, Approval):
                    terms, problem = approval_terms(result, call, digest, tail_id)  # type: ignore[arg-type]
                    if terms is not None:
                        once.append((index, terms.nonce))
                        trace.approvals.append({"caveat": index + 1, "approver": caveat.approver.fingerprint,
                                                "nonce": _b64.encode(terms.nonce)})
            if problem is not None:
                reasons.append(place(Code.BAD_DISCHARGE, problem))
        approval = None
        if tickets:
            approval = ApprovalRequest(call.tool, call.args, call.audience, verified.token_id, verified.hop_ids,
                                       verified.holder.fingerprint if verified.holder is not None else None,
                                       _b64.encode(tail_id), tuple(tickets))
        return reasons, once, approval

    def _decide_with_state(self, verified: VerifiedToken, call: "object", accepted: Proof | None,
                           listing: bool = False, trace: "_Trace | None" = None,
                           once: "list[tuple[int, bytes]] | None" = None) -> Decision:
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
        for index, nonce in once or ():  # an approval is used once: a call limit of 1 on its nonce
            key = meter_key(verified.token_id, b"once\x00" + nonce)
            by_key[key] = MeteredCaveat(index, verified.caveats[index], key)
            meters.append(Meter(key, _ONE, _ONE, None, False))
        if trace is not None:
            trace.reserved = [(by_key[m.key].index, m.amount) for m in meters]
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
                if isinstance(caveat, Approval):
                    code, text = Code.BAD_DISCHARGE, "this approval was already used; each approved call needs its own"
                    reasons.append(verified.reason(code, text, item.index))
                    continue
                window = describe_window(caveat.window)
                if isinstance(caveat, CallLimit):
                    calls = "1 call" if caveat.n == 1 else f"{caveat.n} calls"
                    code, text = Code.CALLS_EXCEEDED, f"the limit of {calls} {window} is used up"
                else:
                    left = max(caveat.cap - exceeded.used, Decimal(0))
                    code = Code.BUDGET_EXCEEDED
                    text = (f"{caveat.arg} {show(exceeded.amount)} exceeds the budget: {show(left)} of "
                            f"{show(caveat.cap)} left {window}")
                reasons.append(verified.reason(code, text, item.index))
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

    def _settle(self, decision: Decision, how: str, *, record: bool = True) -> bool:
        if not isinstance(decision, Decision):
            raise CapkitError("settling a call needs the Decision that authorize returned")
        if not (record and self._audit and decision.allowed):
            return self._settle_in_store(decision, how)
        try:
            done = self._settle_in_store(decision, how)
        except StoreUnavailable:
            try:
                self._record_settlement(decision, how, None)
            except AuditError as exc:
                _log.warning("capkit: %s", exc.message)
            raise
        self._record_settlement(decision, how, done)
        return done

    def _record_settlement(self, decision: Decision, how: str, done: "bool | None") -> None:
        """Write the settlement's record; ``AuditError`` if a sink fails (what the store did stands)."""
        record = settlement_record(record_id=new_record_id(), at=self._clock(), verifier=self._verifier_id,
                                   decision=decision, outcome=how, done=done)
        for sink in self._audit:
            try:
                sink.write(record)
            except Exception as exc:
                problem = exc.message if isinstance(exc, AuditError) else type(exc).__name__
                raise AuditError(f"the {how} stands, but its audit record could not be written ({problem})") from None

    def _settle_in_store(self, decision: Decision, how: str) -> bool:
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
        decision = self.authorize(token, invocation, proof)
        if not decision.allowed:
            raise denial(decision)
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
        """Committed and reserved amounts of every budget and call limit of ``token`` (current period).

        ``at`` is Unix seconds or an aware datetime (default: the verifier's clock).
        """
        verified = self.verify_chain(token)
        try:
            now = self._clock() if at is None else float(to_seconds(at, "at"))
        except InvalidCaveat as exc:
            raise CapkitError(f"budgets(at=...): {exc.message}") from None
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
        """Close the store and every audit sink (a file log writes its final checkpoint)."""
        try:
            for sink in self._audit:
                sink.close()
        finally:
            self._store.close()

    def _check_proof(self, verified: VerifiedToken, holder: PublicKey, invocation: object, now: float,
                     proof: "Proof | str", trace: "_Trace") -> "tuple[Proof | None, Reason | None]":
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
        if parsed.mode not in self._proof_modes:
            accepted = " and ".join(sorted(self._proof_modes))
            return None, Reason(Code.PROOF_MODE_NOT_ACCEPTED,
                                f"this verifier accepts {accepted} proofs, not a {parsed.mode} proof")
        trace.digest = digest = invocation_digest(invocation)  # type: ignore[arg-type]
        message = proof_message(verified.signature, digest, parsed.at, parsed.nonce)
        if parsed.mode == "mac":
            key = self._mac_key(holder)
            valid = key is not None and hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(),
                                                            parsed.signature)
        else:
            valid = holder.verify(parsed.signature, message)
        if not valid:
            return None, Reason(Code.BAD_PROOF,
                                "the proof does not match this call (tool, arguments, audience) or this token")
        return parsed, None

    def _mac_key(self, agent: PublicKey) -> bytes | None:
        """The MAC key shared with ``agent`` (derived once per agent key, then cached)."""
        key = self._mac_keys.get(agent.raw)
        if key is None and self._proof_x25519 is not None:
            key = mac_key(self._proof_x25519, self._proof_key.public_key, agent,  # type: ignore[union-attr]
                          agent_first=False)
            if key is not None:
                with self._lock:
                    if len(self._mac_keys) >= self._cache_size:
                        self._mac_keys.pop(next(iter(self._mac_keys)))
                    self._mac_keys[agent.raw] = key
        return key


class _Trace:
    """What one decision learned on its way, for its audit record."""

    __slots__ = ("approvals", "call", "digest", "proof", "reserved")

    def __init__(self) -> None:
        self.approvals: list[dict[str, Any]] = []
        self.call: "Call | None" = None
        self.digest: bytes | None = None
        self.proof: Proof | None = None
        self.reserved: list[tuple[int, Decimal]] = []


def _audit_sinks(audit: object) -> "tuple[AuditSink, ...]":
    sinks = () if audit is None else (audit,) if isinstance(audit, AuditSink) else audit
    try:
        sinks = tuple(sinks)  # type: ignore[arg-type]
    except TypeError:
        raise CapkitError("audit is an AuditSink (write, close) or a list of them") from None
    if not all(isinstance(sink, AuditSink) for sink in sinks):
        raise CapkitError("audit is an AuditSink (write, close) or a list of them")
    return sinks


def _claimed_tool(invocation: object) -> str | None:
    """The tool an invalid invocation names, if it is a plausible tool name (else nothing is quoted)."""
    tool = getattr(invocation, "tool", None) if isinstance(invocation, Invocation) else None
    return tool if isinstance(tool, str) and TOOL_NAME.fullmatch(tool) else None


def _token_bytes(token: object) -> bytes:
    """The V2 bytes of a ``Token`` (or any bytes-like token); ``MalformedToken`` for anything else."""
    if isinstance(token, (bytearray, memoryview)):
        return bytes(token)
    to_bytes = getattr(token, "to_bytes", None)
    if callable(to_bytes) and not isinstance(token, int):  # a Token
        data = to_bytes()
        if isinstance(data, bytes):
            return data
    raise MalformedToken(f"a token must be a Token, its text or its bytes, not a {type(token).__name__}")


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
