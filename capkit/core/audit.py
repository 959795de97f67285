"""Audit records: what the verifier says about every decision and settlement (specs/AUDIT.md §2).

A ``Verifier`` given sinks builds one record per ``authorize`` or
``authorize_listing`` and one per ``complete``/``cancel``, and hands it to every
sink before it returns. A sink that raises denies the call (``audit_unavailable``)
after giving back whatever it reserved: no call is allowed without its record.
Chaining and signing the records is the sinks' job (``capkit.audit``).

A record never holds the token text, a root key or a private key. Argument
values follow the ``AuditPolicy``: kept (the default), hashed (HMAC-SHA256 under
the policy's key, so only the operator can test a guess), or dropped, per
argument name. When any argument is hashed or dropped the denial sentences are
left out too, since they quote argument values.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Mapping, Protocol, runtime_checkable

import attrs

from . import b64 as _b64
from .decision import Decision
from .errors import AuditError
from .invocation import canonical_text
from .proof import Proof

__all__ = ["AuditPolicy", "AuditSink", "RECORD_VERSION", "decision_record", "new_record_id", "settlement_record"]

#: Version of the record layout (``"v"``).
RECORD_VERSION = 1
_TREATMENTS = frozenset({"keep", "hash", "drop"})


@runtime_checkable
class AuditSink(Protocol):
    """Where records go. ``write`` must have stored the record (or raise) when it returns."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def _treatments(value: object) -> "dict[str, str]":
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v in _TREATMENTS
                                                 for k, v in value.items()):
        raise AuditError('AuditPolicy.args maps argument names to "keep", "hash" or "drop"')
    return dict(value)


@attrs.frozen
class AuditPolicy:
    """What an audit record keeps of each argument value: ``keep``, ``hash`` or ``drop``, by argument name."""

    args: Mapping[str, str] = attrs.field(factory=dict, converter=_treatments)
    #: The treatment of an argument not named in ``args``.
    default: str = "keep"
    #: HMAC key of ``hash`` (at least 16 bytes); required when anything is hashed.
    hash_key: bytes | None = attrs.field(default=None, repr=False)
    #: True if every argument value is written as it is.
    keeps_everything: bool = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.default, str) or self.default not in _TREATMENTS:
            raise AuditError('AuditPolicy.default is "keep", "hash" or "drop"')
        hashes = self.default == "hash" or "hash" in self.args.values()
        if hashes and (not isinstance(self.hash_key, bytes) or len(self.hash_key) < 16):
            raise AuditError("an AuditPolicy that hashes arguments needs hash_key of at least 16 bytes")
        object.__setattr__(self, "keeps_everything",
                           self.default == "keep" and all(t == "keep" for t in self.args.values()))

    def hash_value(self, value: Any) -> str:
        """The HMAC-SHA256 (base64url) of a value's canonical text, as a record holds a hashed argument."""
        if self.hash_key is None:
            raise AuditError("this AuditPolicy has no hash_key")
        return _b64.encode(hmac.new(self.hash_key, canonical_text(value).encode("utf-8"), hashlib.sha256).digest())

    def apply(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The record's argument fields: ``args`` (kept), ``args_hashed`` and ``args_dropped`` when not empty."""
        if self.keeps_everything:
            return {"args": args}  # sinks write a record before they return: no copy needed
        kept: dict[str, Any] = {}
        hashed: dict[str, str] = {}
        dropped: list[str] = []
        for name, value in args.items():
            how = self.args.get(name, self.default)
            if how == "keep":
                kept[name] = value
            elif how == "hash":
                hashed[name] = self.hash_value(value)
            else:
                dropped.append(name)
        out: dict[str, Any] = {"args": kept}
        if hashed:
            out["args_hashed"] = hashed
        if dropped:
            out["args_dropped"] = sorted(dropped)
        return out


def new_record_id() -> str:
    """A random record id (16 bytes, base64url)."""
    return _b64.encode(secrets.token_bytes(16))


def decision_record(*, record_id: str, at: float, verifier: str, event: str, decision: Decision,
                    tool: "str | None", audience: "str | None", args: "Mapping[str, Any] | None",
                    digest: "bytes | None", proof: "Proof | None", reserved: "list[tuple[int, Any]]",
                    policy: AuditPolicy, approvals: "list[dict[str, Any]] | None" = None) -> dict[str, Any]:
    """The record of one decision (``event`` ``decision`` or ``listing``); see specs/AUDIT.md §2.

    ``args`` is None when the call was not a valid invocation (nothing is quoted from it);
    ``reserved`` lists (caveat index, amount) of each budget or call limit the call reserved.
    """
    sentences = policy.keeps_everything
    record: dict[str, Any] = {
        "v": RECORD_VERSION,
        "id": record_id,
        "event": event,
        "at_ms": int(at * 1000),
        "verifier": verifier,
        "allowed": decision.allowed,
        "reasons": [
            {"code": r.code, "caveat": r.caveat_index, "hop": r.hop, "agent": r.agent,
             **({"message": r.message} if sentences else {})}
            for r in decision.reasons
        ],
        "token": decision.token_id,
        "hops": [h.id for h in decision.chain],
        "holder": decision.chain[-1].holder if decision.chain else None,
        "tool": tool,
        "audience": audience,
        "digest": None if digest is None else _b64.encode(digest),
        "proof": None if proof is None else {
            "key": proof.public_key.text, "at": proof.at, "nonce": _b64.encode(proof.nonce),
            **({"sig": _b64.encode(proof.signature)} if proof.mode == "signature" else {"mode": "mac"})},
        "reserved": None if decision.reservation is None else {
            "reservation": decision.reservation.id,
            "expires_at_ms": int(decision.reservation.expires_at * 1000),
            "meters": [{"caveat": index + 1, "amount": canonical_text(amount)} for index, amount in reserved]},
    }
    if approvals:  # the approvals the call was allowed with: approver, caveat, the discharge's nonce
        record["approvals"] = approvals
    if args is None:
        record["args"] = None
    else:
        record.update(policy.apply(args))
    return record


def settlement_record(*, record_id: str, at: float, verifier: str, decision: Decision, outcome: str,
                      done: "bool | None") -> dict[str, Any]:
    """The record of ``complete``/``cancel`` on an allowed decision (specs/AUDIT.md §2).

    ``outcome`` is ``commit``, ``release`` or ``cancel``; ``done`` is the store's answer
    (False: refused, e.g. a release after the lease ran out), None if the store failed.
    """
    return {
        "v": RECORD_VERSION,
        "id": record_id,
        "event": "settle",
        "at_ms": int(at * 1000),
        "verifier": verifier,
        "decision": decision.record_id,
        "token": decision.token_id,
        "outcome": outcome,
        "done": done,
        "reservation": None if decision.reservation is None else decision.reservation.id,
    }
