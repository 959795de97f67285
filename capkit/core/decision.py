"""``Decision`` and ``Reason``: what the verifier says, in codes and in sentences.

A denial lists every failed check, each with a stable code, the caveat it
came from (1-based position in the token), the delegation hop that added it,
and one sentence for a person. ``str(reason)`` reads like::

    amount 500 exceeds max 50 (caveat 3, added at hop 2 by agent 3f2a9c)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .caveats import Caveat
from .codes import ALL_CODES, Code
from .errors import CapkitError
from .state.types import Reservation

if TYPE_CHECKING:
    from .discharge import ApprovalRequest

__all__ = ["ALL_CODES", "Code", "Decision", "Hop", "Reason"]


@attrs.frozen
class Reason:
    """One failed check."""

    code: str
    message: str
    #: 1-based position of the caveat in the token, or None for token-level failures.
    caveat_index: int | None = None
    caveat: Caveat | None = attrs.field(default=None, eq=False)
    #: Number of delegations before the caveat (0: added by the minter or the first holder).
    hop: int | None = None
    #: Short fingerprint of the agent that added the caveat, when known.
    agent: str | None = None
    #: For a caveat added before the first delegation: the agent whose delegation signature covers it (the
    #: first holder vouched for it when delegating; the grant's minter or that holder added it).
    vouched_by: str | None = None

    def where(self) -> str:
        """Where the failed check came from, e.g. 'caveat 3, added at hop 2 by agent 3f2a9c'."""
        if self.caveat_index is None:
            return ""
        text = f"caveat {self.caveat_index}"
        if self.hop is not None:
            text += f", added at hop {self.hop}"
            if self.agent is not None:
                text += f" by agent {self.agent}"
            elif self.vouched_by is not None:
                text += f" before agent {self.vouched_by} delegated"
        return text

    def __str__(self) -> str:
        where = self.where()
        return f"{self.message} ({where})" if where else self.message

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (never contains secrets)."""
        return {
            "code": self.code,
            "message": self.message,
            "caveat": self.caveat_index,
            "kind": None if self.caveat is None else self.caveat.kind,
            "hop": self.hop,
            "agent": self.agent,
            "vouched_by": self.vouched_by,
            "text": str(self),
        }


@attrs.frozen
class Hop:
    """One link of a token's chain of holders: hop 0 is the grant as minted."""

    hop: int
    #: Fingerprint of the agent holding the token at this hop; None for a bearer token.
    holder: str | None
    #: The hop's id, for revocation: the token id at hop 0, ``TOKENID.SUFFIX`` after a delegation.
    id: str = ""

    def __str__(self) -> str:
        return f"hop {self.hop}: " + (f"agent {self.holder}" if self.holder else "bearer (no holder)")


@attrs.frozen
class Decision:
    """The verdict on one call. Truthy exactly when allowed, so ``if decision:`` is safe."""

    allowed: bool
    reasons: tuple[Reason, ...] = ()
    #: Id of the token, when it could be parsed (even if its signature failed).
    token_id: str | None = None
    #: Who held the token at each hop (from the grant to the current holder), when its chain verified.
    chain: tuple[Hop, ...] = ()
    #: Room reserved in the store for an allowed call with budgets or call limits: pass the
    #: decision to ``Verifier.complete`` to commit it (the tool ran) or release it (it failed).
    reservation: Reservation | None = None
    #: Id of the decision's audit record, when the verifier writes an audit log.
    record_id: str | None = attrs.field(default=None, eq=False)
    #: When the call was denied only for lack of approval: what to ask the approver(s) for.
    approval: "ApprovalRequest | None" = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.allowed == bool(self.reasons):
            raise CapkitError("an allowed decision has no reasons and a denied one has at least one")

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes, in order."""
        return tuple(r.code for r in self.reasons)

    def explain(self) -> str:
        """'allowed', or 'denied: ' and every reason, joined by '; '."""
        if self.allowed:
            return "allowed"
        return "denied: " + "; ".join(str(r) for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (never contains secrets)."""
        return {
            "allowed": self.allowed,
            "token_id": self.token_id,
            "chain": [{"hop": h.hop, "holder": h.holder, "id": h.id} for h in self.chain],
            "reservation": None if self.reservation is None else {
                "id": self.reservation.id, "expires_at": self.reservation.expires_at},
            "reasons": [r.to_json() for r in self.reasons],
            "explanation": self.explain(),
            **({"approval_request": self.approval.to_json()} if self.approval is not None else {}),
        }

    @classmethod
    def deny(cls, code: str, message: str, token_id: str | None = None) -> "Decision":
        """A denial with one token-level reason."""
        return cls(False, (Reason(code, message),), token_id)
