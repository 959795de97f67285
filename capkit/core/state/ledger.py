"""The ledger algorithm, once, for stores that run it in Python (memory, SQLite).

``apply`` decides a ``StateRequest`` inside one transaction of the store:

1. any hop id revoked: answer ``revoked`` (no writes);
2. the proof nonce already recorded and unexpired: answer ``replayed``;
3. reservations whose lease has run out *lapse*: they are committed, never
   released (the call they allowed may have run: authority is never given
   back on an ambiguous outcome); every one on the call's meters, and up to
   100 others (so abandoned ones never pile up);
4. age out entries older than each rolling window;
5. every meter must fit: ``in use + amount <= cap``; otherwise answer
   ``exceeded`` listing every meter that does not (no reservation is written);
6. record the nonce, the reservation and one entry per meter, and add each
   amount to its meter's total.

``commit`` makes a reservation final. ``release`` is the tool backend saying
explicitly that nothing was spent: it gives back the *refundable* entries
(budgets) and keeps the others (call limits count attempts) as spent.

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
    def live_entries(self, reservation_id: str) -> list[tuple[str, Decimal, bool]]: ...
    def aged_entries(self, meter_key: str, cutoff: float) -> list[tuple[str, Decimal]]: ...
    def retire_entry(self, reservation_id: str, meter_key: str) -> None: ...
    def total(self, meter_key: str) -> Decimal: ...
    def set_total(self, meter_key: str, value: Decimal) -> None: ...
    def reservation_state(self, reservation_id: str) -> str | None: ...
    def set_state(self, reservation_id: str, state: str) -> None: ...
    def insert_reservation(self, reservation_id: str, family: str, at: float, expires_at: float,
                           entries: list[tuple[str, Decimal, bool, bool]]) -> None: ...


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


def release(tx: LedgerTx, reservation_id: str, keep_attempts: bool = True) -> bool:
    """Nothing was spent: give back the refundable room of a reservation still open; True if it was open.

    With ``keep_attempts=False`` (the call was never made at all) call limits are given back too.
    """
    if tx.reservation_state(reservation_id) != "reserved":
        return False
    for meter, amount, refundable in tx.live_entries(reservation_id):
        if refundable or not keep_attempts:
            tx.set_total(meter, EXACT.subtract(tx.total(meter), amount))
            tx.retire_entry(reservation_id, meter)
    tx.set_state(reservation_id, "released")
    return True


def commit(tx: LedgerTx, reservation_id: str) -> bool:
    """Make a reservation a final spend; True if it is committed now (also if it had lapsed), False if released."""
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
            commit(tx, reservation_id)  # the lease ran out: the spend stands
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
    entries = [(m.key, m.amount, m.window is not None, m.refundable) for m in request.meters]
    tx.insert_reservation(reservation_id, request.family, now, now + request.lease, entries)
    for meter in request.meters:
        tx.set_total(meter.key, EXACT.add(tx.total(meter.key), meter.amount))
    return StateResult(reservation=Reservation(reservation_id, request.family, now + request.lease))
