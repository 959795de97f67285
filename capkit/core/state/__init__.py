"""The ledger the verifier trusts: what it asks a store (``Store``), the algorithm, the memory store.

The SQLite, PostgreSQL and Redis backends (``capkit.state``) run the same
algorithm in their own terms; they are outside the core.
"""

from __future__ import annotations

from typing import Protocol

from .memory import MemoryStore
from .types import Reservation, StateRequest, StateResult, Usage

#: Seconds a store call may take before it fails (and the call is denied).
DEFAULT_TIMEOUT = 5.0

__all__ = ["DEFAULT_TIMEOUT", "MemoryStore", "Store"]


class Store(Protocol):
    """What the verifier needs from shared state. Every method raises ``StoreUnavailable`` on failure."""

    url: str

    def apply(self, request: StateRequest, now: float) -> StateResult:
        """Atomically: refuse revoked hops and replayed nonces, then reserve every meter or none."""

    def commit(self, reservation: Reservation, now: float) -> bool:
        """Make a reservation a final spend (also one whose lease ran out); False if it was released."""

    def release(self, reservation: Reservation, now: float, *, keep_attempts: bool = True) -> bool:
        """Nothing was spent: give back the refundable room (budgets, not call limits); False if not still open.

        With ``keep_attempts=False`` the call was never made: call limits are given back too."""

    def revoke(self, hop_id: str, reason: str | None, now: float) -> None:
        """Deny the token with this hop id, and every token derived from it, from now on."""

    def usage(self, family: str, meters: list[tuple[str, int | None]], now: float) -> list[Usage]:
        """Committed and reserved amounts of each (meter key, rolling window) of a token family."""

    def close(self) -> None:
        """Release connections."""
