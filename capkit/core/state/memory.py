"""``MemoryStore``: the ledger in this process's memory (``memory://``).

The default when a Verifier is built without a store: right for one process
and for tests. Nothing survives the process, and nothing is shared with
other processes; use SQLite, PostgreSQL or Redis for that. Memory stays
bounded by live state: released reservations are forgotten, committed spends
are folded into per-meter totals (rolling-window entries once they age out),
and expired nonces are swept.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict
from decimal import Decimal

import attrs

from . import ledger
from .types import EXACT, ZERO, Reservation, StateRequest, StateResult, Usage


_NOTHING_TO_RESERVE = StateResult()
#: Settled reservations whose final state is remembered after their records are folded away.
SETTLED_MEMORY = 100_000


@attrs.define
class _Entry:
    amount: Decimal
    windowed: bool
    refundable: bool = True
    live: bool = True


@attrs.define
class _Record:
    state: str
    at: float
    expires_at: float
    entries: dict[str, _Entry]


class MemoryStore:
    """A thread-safe in-memory ledger."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: dict[str, str | None] = {}
        self._nonces: dict[tuple[str, bytes], float] = {}
        self._nonce_heap: list[tuple[float, str, bytes]] = []
        self._totals: dict[str, Decimal] = {}  # everything in use per meter (reserved + committed, live)
        self._committed: dict[str, Decimal] = {}  # committed spends folded out of their records
        self._records: dict[str, _Record] = {}
        self._pending: dict[str, set[str]] = {}  # meter -> ids of reservations still only reserved
        self._leases: list[tuple[float, str]] = []  # heap of (lease expiry, reservation id)
        self._window: dict[str, list[tuple[float, str]]] = {}  # rolling meter -> heap of (at, reservation id)
        self._settled: "OrderedDict[str, str]" = OrderedDict()  # final states of forgotten reservations

    # ------------------------------------------------------------ the Store API

    def apply(self, request: StateRequest, now: float) -> StateResult:
        if not request.meters and request.nonce is None:
            # Only the revocation check: one read of a dict, which needs no lock.
            revoked = self._revoked
            for hop_id in request.revocation_ids:
                if hop_id in revoked:
                    return StateResult(revoked=(hop_id, revoked.get(hop_id)))
            return _NOTHING_TO_RESERVE
        with self._lock:
            self._sweep_nonces(now)
            return ledger.apply(self, request, now)

    def commit(self, reservation: Reservation, now: float) -> bool:
        with self._lock:
            done = ledger.commit(self, reservation.id)
            self._forget_if_done(reservation.id)
            return done

    def release(self, reservation: Reservation, now: float, *, keep_attempts: bool = True) -> bool:
        with self._lock:
            done = ledger.release(self, reservation.id, keep_attempts)
            self._forget_if_done(reservation.id)
            return done

    def revoke(self, hop_id: str, reason: str | None, now: float) -> None:
        with self._lock:
            self._revoked.setdefault(hop_id, reason)

    def usage(self, family: str, meters: list[tuple[str, int | None]], now: float) -> list[Usage]:
        with self._lock:
            out = []
            for key, window in meters:
                committed = self._committed.get(key, ZERO)
                reserved = ZERO
                for record in self._records.values():
                    entry = record.entries.get(key)
                    if entry is None or not entry.live or (window is not None and record.at <= now - window):
                        continue
                    if record.state == "reserved" and record.expires_at > now:
                        reserved += entry.amount
                    else:  # committed, released (what was not refunded), or lapsed
                        committed += entry.amount
                out.append(Usage(key, committed, reserved))
            return out

    def close(self) -> None:
        pass

    # ------------------------------------------------- ledger primitives (locked)

    def _sweep_nonces(self, now: float) -> None:
        heap = self._nonce_heap
        while heap and heap[0][0] <= now:
            expires_at, family, nonce = heapq.heappop(heap)
            if self._nonces.get((family, nonce)) == expires_at:
                del self._nonces[(family, nonce)]

    def _forget_if_done(self, reservation_id: str) -> None:
        record = self._records.get(reservation_id)
        if record is not None and record.state != "reserved" and not any(e.live for e in record.entries.values()):
            del self._records[reservation_id]
            self._settled[reservation_id] = record.state  # a late commit still learns the outcome
            if len(self._settled) > SETTLED_MEMORY:
                self._settled.popitem(last=False)

    def revocation(self, hop_id: str) -> "tuple[bool, str | None]":
        if hop_id in self._revoked:
            return True, self._revoked[hop_id]
        return False, None

    def nonce_live(self, family: str, nonce: bytes, now: float) -> bool:
        expires_at = self._nonces.get((family, nonce))
        return expires_at is not None and expires_at > now

    def put_nonce(self, family: str, nonce: bytes, expires_at: float, now: float) -> None:
        self._nonces[(family, nonce)] = expires_at
        heapq.heappush(self._nonce_heap, (expires_at, family, nonce))

    def stale_reservations(self, meter_keys: list[str], now: float) -> list[str]:
        stale = {rid for key in meter_keys for rid in self._pending.get(key, ())
                 if self._records[rid].expires_at <= now}
        swept = 0
        while self._leases and self._leases[0][0] <= now and swept < 100:  # abandoned elsewhere
            _, rid = heapq.heappop(self._leases)
            record = self._records.get(rid)
            if record is not None and record.state == "reserved":
                stale.add(rid)
                swept += 1
        return sorted(stale)

    def live_entries(self, reservation_id: str) -> list[tuple[str, Decimal, bool]]:
        return [(m, e.amount, e.refundable) for m, e in self._records[reservation_id].entries.items() if e.live]

    def aged_entries(self, meter_key: str, cutoff: float) -> list[tuple[str, Decimal]]:
        heap = self._window.get(meter_key, [])
        aged = []
        while heap and heap[0][0] <= cutoff:
            _, reservation_id = heapq.heappop(heap)
            record = self._records.get(reservation_id)
            if record is not None and record.entries[meter_key].live:
                aged.append((reservation_id, record.entries[meter_key].amount))
        return aged

    def retire_entry(self, reservation_id: str, meter_key: str) -> None:
        self._records[reservation_id].entries[meter_key].live = False
        if self._records[reservation_id].state != "reserved":
            self._forget_if_done(reservation_id)

    def total(self, meter_key: str) -> Decimal:
        return self._totals.get(meter_key, ZERO)

    def set_total(self, meter_key: str, value: Decimal) -> None:
        self._totals[meter_key] = value

    def reservation_state(self, reservation_id: str) -> str | None:
        record = self._records.get(reservation_id)
        return self._settled.get(reservation_id) if record is None else record.state

    def set_state(self, reservation_id: str, state: str) -> None:
        record = self._records[reservation_id]
        if record.state == "reserved" and state != "reserved":
            for meter, entry in record.entries.items():
                self._pending.get(meter, set()).discard(reservation_id)
                if entry.live and not entry.windowed:  # a final spend that never ages out: fold it
                    self._committed[meter] = EXACT.add(self._committed.get(meter, ZERO), entry.amount)
                    entry.live = False  # still counted in the meter's total
        record.state = state
        self._forget_if_done(reservation_id)

    def insert_reservation(self, reservation_id: str, family: str, at: float, expires_at: float,
                           entries: list[tuple[str, Decimal, bool, bool]]) -> None:
        self._records[reservation_id] = _Record("reserved", at, expires_at, {
            m: _Entry(amount, windowed, refundable) for m, amount, windowed, refundable in entries})
        heapq.heappush(self._leases, (expires_at, reservation_id))
        for meter, _, windowed, _ in entries:
            self._pending.setdefault(meter, set()).add(reservation_id)
            if windowed:
                heapq.heappush(self._window.setdefault(meter, []), (at, reservation_id))
