"""Discharges and approval requests (specs/SPEC.md §19): the verifier's side of third-party caveats.

A discharge is a macaroon whose identifier is a third-party caveat's id, whose
chain starts from the caveat key, and whose signature is bound to the token it
is presented with (libmacaroons' binding: ``chain.bind``), so it cannot be
presented with another token. ``check_discharge`` verifies one; the approver's
side (opening the sealed key, minting) is in ``capkit.approvals``.

When a call lacks the approval it needs, the decision carries an
``ApprovalRequest``: the exact call, the token and its chain, the agent, and a
ticket per approval needed. An approver shown it can discharge exactly that call.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any, Mapping

import attrs

from . import b64 as _b64
from . import chain
from .caveats import Call, Caveat, Expires, UnknownCaveat
from .caveats.base import Registry
from .caveats.thirdparty import Approved, Once
from .errors import BadDischarge, CapkitError
from .limits import DEFAULT_LIMITS, Limits
from .publickey import PublicKey
from .token import binary
from .token.identifier import location_problem

__all__ = ["DISCHARGE_PREFIX", "MAX_APPROVAL_LIFETIME", "ApprovalRequest", "ApprovalTicket", "Discharge",
           "check_discharge", "token_tail_id"]

DISCHARGE_PREFIX = "capkit_discharge_"
#: The longest an approval's discharge may live (its Expires caveat at most this far after the call).
MAX_APPROVAL_LIFETIME = 3600


def token_tail_id(tail_signature: bytes) -> bytes:
    """16 bytes naming one exact token (its tail signature), which an approval's discharge is for."""
    return hashlib.sha256(b"capkit/v1/approved-token\x00" + tail_signature).digest()[:16]


@attrs.frozen(repr=False)
class Discharge:
    """A discharge macaroon: ``cid`` names the caveat it discharges. Bound or not (see ``bind``)."""

    raw: binary.RawMacaroon

    @property
    def cid(self) -> bytes:
        return self.raw.identifier

    @property
    def signature(self) -> bytes:
        return self.raw.signature

    @classmethod
    def parse(cls, data: "str | bytes | Discharge", limits: Limits = DEFAULT_LIMITS) -> "Discharge":
        """A discharge from its text (``capkit_discharge_`` + base64url V2) or V2 bytes; ``BadDischarge`` otherwise."""
        if isinstance(data, Discharge):
            return data
        if isinstance(data, str):
            text = data.strip(" \t\r\n")
            if len(text) > limits.max_token_text + 16 or not text.startswith(DISCHARGE_PREFIX):
                raise BadDischarge("a discharge is text starting with 'capkit_discharge_'")
            try:
                data = _b64.decode(text[len(DISCHARGE_PREFIX):])
            except ValueError:
                raise BadDischarge("a discharge's text is not unpadded base64url") from None
        if not isinstance(data, bytes):
            raise BadDischarge("a discharge is its text or its V2 bytes")
        try:
            raw = binary.decode(data, limits)
        except CapkitError as exc:
            raise BadDischarge(f"the discharge cannot be read: {exc.message}") from None
        if raw.location is not None:  # a hint no signature covers (as in every macaroon), but text, never junk
            try:
                problem = location_problem(raw.location.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "is not UTF-8"
            if problem is not None:
                raise BadDischarge(f"the discharge's location {problem}")
        return cls(raw)

    def serialize(self) -> str:
        return DISCHARGE_PREFIX + _b64.encode(binary.encode(self.raw))

    def bind(self, token_signature: bytes) -> "Discharge":
        """This discharge bound to the token whose tail signature is ``token_signature`` (what the agent presents)."""
        raw = self.raw
        return Discharge(binary.RawMacaroon(raw.location, raw.identifier, raw.caveats,
                                            chain.bind(token_signature, raw.signature)))

    def __repr__(self) -> str:
        return f"Discharge(caveats={len(self.raw.caveats)})"


def check_discharge(discharge: Discharge, caveat_key: bytes, token_signature: bytes, registry: Registry,
                    limits: Limits = DEFAULT_LIMITS) -> "tuple[Caveat, ...] | str":
    """The caveats of ``discharge`` if its chain starts from ``caveat_key`` and it is bound to the token whose
    tail is ``token_signature``; otherwise the sentence saying why not. Constant-time comparison."""
    raw = discharge.raw
    if any(type(c) is not bytes for c in raw.caveats):
        return "the discharge has third-party caveats of its own, which capkit does not accept"
    tail = chain.extend(hmac.new(caveat_key, raw.identifier, hashlib.sha256).digest(), raw.caveats)
    if not chain.matches(chain.bind(token_signature, tail), raw.signature):
        return ("the discharge is not for this token (it is bound to another, was not bound with "
                "the token, or was altered)")
    caveats = tuple(registry.decode(c, limits) for c in raw.caveats)
    for caveat in caveats:
        if isinstance(caveat, UnknownCaveat):
            return f"the discharge has a caveat that cannot be checked ({caveat.problem})"
        if caveat.structural or caveat.metered or caveat.third_party:
            return f"a {caveat.kind} caveat is not accepted in a discharge"
    return caveats


def approval_terms(caveats: "tuple[Caveat, ...]", call: Call, digest: bytes, tail_id: bytes) \
        -> "tuple[Once | None, str | None]":
    """Whether a discharge's caveats approve exactly ``call`` on this token: (its Once caveat, None), or
    (None, why not). An approval's discharge names the call, expires soon after it and is single-use."""
    approved = [c for c in caveats if isinstance(c, Approved)]
    once = [c for c in caveats if isinstance(c, Once)]
    expiries = [c for c in caveats if isinstance(c, Expires)]
    if len(approved) != 1 or len(once) != 1 or not expiries:
        return None, "an approval's discharge must name the call, carry one nonce and expire"
    if not hmac.compare_digest(approved[0].digest, digest):
        return None, "the approval is for another call (tool, arguments or audience differ)"
    if not hmac.compare_digest(approved[0].token, tail_id):
        return None, "the approval is for another token"
    if min(c.at for c in expiries) > call.at + MAX_APPROVAL_LIFETIME:
        return None, f"an approval's discharge may live at most {MAX_APPROVAL_LIFETIME} s"
    return once[0], None


def _json_numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_numbers(v) for v in value]
    return value


@attrs.frozen
class ApprovalTicket:
    """One approval a call needs: who must approve, where to ask, and the caveat id the approver discharges."""

    approver: PublicKey
    location: str | None
    cid: bytes = attrs.field(repr=False)
    caveat_index: int

    def to_json(self) -> dict[str, Any]:
        return {"approver": self.approver.text, "location": self.location, "cid": _b64.encode(self.cid),
                "caveat": self.caveat_index}


@attrs.frozen
class ApprovalRequest:
    """What an approver is shown: the exact call, the token and its chain, the agent, and the tickets."""

    tool: str
    args: Mapping[str, Any]
    audience: str | None
    token_id: str
    hops: tuple[str, ...]
    #: Fingerprint of the agent making the call (the token's current holder), None for a bearer token.
    agent: str | None
    #: ``token_tail_id`` of the exact token presented (base64url): the discharge is for that token only.
    token: str
    tickets: tuple[ApprovalTicket, ...]

    def to_json(self) -> dict[str, Any]:
        """The request as JSON (what ``capkit approve`` reads): no secret, the call as it will run.

        Decimal arguments become JSON numbers (an int, or a float that is exactly the same decimal);
        one that no JSON number holds exactly stays text, and an approval of it will not match the call.
        """
        return {"type": "capkit-approval-request", "v": 1,
                "call": {"tool": self.tool, "args": _json_numbers(dict(self.args)), "audience": self.audience},
                "token_id": self.token_id, "hops": list(self.hops), "agent": self.agent, "token": self.token,
                "tickets": [t.to_json() for t in self.tickets]}
