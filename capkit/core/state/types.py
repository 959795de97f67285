"""What the verifier asks of a store, and what a store answers."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, Rounded

import attrs

from ..errors import StoreUnavailable, UnsafeStore

__all__ = ["EXACT", "ZERO", "Exceeded", "Meter", "Reservation", "StateRequest", "StateResult", "StoreUnavailable",
           "UnsafeStore", "Usage", "family_of"]

#: Exact decimal arithmetic for totals: any rounding raises instead of losing a cent.
EXACT = Context(prec=120, traps=[Inexact, Rounded])
ZERO = Decimal(0)


@attrs.frozen
class Meter:
    """One budget or call counter a call touches: what it adds and how much may be in use at once."""

    #: Opaque id of the counter (per budget caveat, and per period for calendar windows).
    key: str
    cap: Decimal
    amount: Decimal
    #: Rolling window in seconds: entries older than this stop counting. None: no rolling window.
    window: int | None
    #: True if an explicit "nothing was spent" gives this amount back (budgets); False for call limits,
    #: which count every allowed call whatever its outcome.
    refundable: bool = True


@attrs.frozen
class StateRequest:
    """Everything one call needs from shared state, decided atomically."""

    #: The root token id: every hop id and meter of the call belongs to it (one partition, one hash slot).
    family: str
    #: Ids of every hop of the token; the call is denied if any is revoked.
    revocation_ids: tuple[str, ...]
    #: The proof's nonce, recorded once until ``nonce_expires_at``; None without a proof.
    nonce: bytes | None
    nonce_expires_at: float
    meters: tuple[Meter, ...]
    #: Seconds an uncommitted reservation holds its room before it is released.
    lease: float


@attrs.frozen
class Reservation:
    """Room reserved for one allowed call, until committed or released.

    A reservation still open when its lease runs out *lapses*: it counts as
    spent (the call may have run), never given back.
    """

    id: str
    family: str
    expires_at: float


@attrs.frozen
class Exceeded:
    """A meter the call would push over its cap."""

    key: str
    used: Decimal
    cap: Decimal
    amount: Decimal


@attrs.frozen
class StateResult:
    """The store's answer: either a reservation (possibly none needed), or why not."""

    revoked: "tuple[str, str | None] | None" = None
    replayed: bool = False
    exceeded: tuple[Exceeded, ...] = ()
    reservation: Reservation | None = None

    @property
    def ok(self) -> bool:
        return self.revoked is None and not self.replayed and not self.exceeded


@attrs.frozen
class Usage:
    """What a meter has in use: committed spends and reservations not yet committed."""

    key: str
    committed: Decimal
    reserved: Decimal


def family_of(token_or_hop_id: str) -> str:
    """The root token id of a hop id (``TOKENID`` or ``TOKENID.SUFFIX``)."""
    return token_or_hop_id.split(".", 1)[0]
