"""The ledger algorithm, once, for stores that run it in Python (memory, SQLite).

``apply`` decides a ``StateRequest`` inside one transaction of the store:

1. any hop id revoked: answer ``revoked`` (no writes);
2. the proof nonce already recorded and unexpired: answer ``replayed``;
3. release reservations whose lease has run out: every one on the call's
   meters, and up to 100 others (so abandoned ones never pile up);
4. age out entries older than each rolling window;
5. every meter must fit: ``in use + amount <= cap``; otherwise answer
   ``exceeded`` listing every meter that does not (no reservation is written);
6. record the nonce, the reservation and one entry per meter, and add each
   amount to its meter's total.

The store provides the primitives (``LedgerTx``) and the transaction.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Iterable, Protocol

from .types import EXACT, Exceeded, Reservation, StateRequest, StateResult, StoreUnavailable


class LedgerTx(Protocol):
    """Primitive reads and writes inside one store transaction."""

    def revocation(self, hop_id: str) -> "tuple[bool, str | None]": ...
    def nonce_live(self, family: str, nonce: bytes, now: float) -> bool: ...
    def put_nonce(self, family: str, nonce: bytes, expires_at: float, now: float) -> None: ...
    def stale_reservations(self, meter_keys: list[str], now: float) -> list[str]: ...
    def live_entries(self, reservation_id: str) -> list[tuple[str, Decimal]]: ...
    def retire_entries(self, reservation_id: str) -> None: ...
    def aged_entries(self, meter_key: str, cutoff: float) -> list[tuple[str, Decimal]]: ...
    def retire_entry(self, reservation_id: str, meter_key: str) -> None: ...
    def total(self, meter_key: str) -> Decimal: ...
    def set_total(self, meter_key: str, value: Decimal) -> None: ...
    def reservation_state(self, reservation_id: str) -> str | None: ...
    def set_state(self, reservation_id: str, state: str) -> None: ...
    def insert_reservation(self, reservation_id: str, family: str, at: float, expires_at: float,
                           entries: list[tuple[str, Decimal, bool]]) -> None: ...


def migration_steps(found: int, known: int, store: str) -> range:
    """The schema migrations to run on a ``store`` at version ``found`` to reach ``known``.

    Raises ``StoreUnavailable`` for a schema newer than this capkit knows: it refuses to guess.
    """
    if found > known:
        raise StoreUnavailable(f"the {store} store has schema version {found}; this capkit knows {known} "
                               "(upgrade capkit)")
    return range(found + 1, known + 1)


def new_reservation_id() -> str:
    return secrets.token_hex(12)


def _subtract(tx: LedgerTx, entries: Iterable[tuple[str, Decimal]]) -> None:
    for meter, amount in entries:
        tx.set_total(meter, EXACT.subtract(tx.total(meter), amount))


def release(tx: LedgerTx, reservation_id: str) -> bool:
    """Give back a reservation's room if it is still only reserved; True if it was."""
    if tx.reservation_state(reservation_id) != "reserved":
        return False
    _subtract(tx, tx.live_entries(reservation_id))
    tx.retire_entries(reservation_id)
    tx.set_state(reservation_id, "released")
    return True


def commit(tx: LedgerTx, reservation_id: str) -> bool:
    """Turn a reservation into a committed spend; False if it was released (or never existed)."""
    state = tx.reservation_state(reservation_id)
    if state == "committed":
        return True
    if state != "reserved":
        return False
    tx.set_state(reservation_id, "committed")
    return True


def apply(tx: LedgerTx, request: StateRequest, now: float) -> StateResult:
    """Decide ``request`` at time ``now`` (see the module docstring)."""
    for hop_id in request.revocation_ids:
        found, reason = tx.revocation(hop_id)
        if found:
            return StateResult(revoked=(hop_id, reason))
    if request.nonce is not None and tx.nonce_live(request.family, request.nonce, now):
        return StateResult(replayed=True)
    keys = [m.key for m in request.meters]
    if keys:
        for reservation_id in tx.stale_reservations(keys, now):
            release(tx, reservation_id)
        for meter in request.meters:
            if meter.window is not None:
                aged = tx.aged_entries(meter.key, now - meter.window)
                for reservation_id, _ in aged:
                    tx.retire_entry(reservation_id, meter.key)
                _subtract(tx, ((meter.key, amount) for _, amount in aged))
        exceeded = []
        for meter in request.meters:
            used = tx.total(meter.key)
            if EXACT.add(used, meter.amount) > meter.cap:
                exceeded.append(Exceeded(meter.key, used, meter.cap, meter.amount))
        if exceeded:
            return StateResult(exceeded=tuple(exceeded))
    if request.nonce is not None:
        tx.put_nonce(request.family, request.nonce, request.nonce_expires_at, now)
    if not keys:
        return StateResult()
    reservation_id = new_reservation_id()
    entries = [(m.key, m.amount, m.window is not None) for m in request.meters]
    tx.insert_reservation(reservation_id, request.family, now, now + request.lease, entries)
    for meter in request.meters:
        tx.set_total(meter.key, EXACT.add(tx.total(meter.key), meter.amount))
    return StateResult(reservation=Reservation(reservation_id, request.family, now + request.lease))
