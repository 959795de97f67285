"""The replay cache: each proof nonce is accepted at most once while it is fresh.

``ReplayCache`` is the interface the verifier needs; ``MemoryReplayCache`` is
the in-process implementation (the shared stores implement the same method).
"""

from __future__ import annotations

import threading
from typing import Protocol


class ReplayCache(Protocol):
    """Remembers proof nonces until they expire."""

    def add(self, nonce: bytes, expires_at: float, now: float) -> bool:
        """Record ``nonce`` until ``expires_at``; False if it is already recorded (a replay)."""


class MemoryReplayCache:
    """A thread-safe in-memory replay cache that forgets nonces once they expire.

    Expired entries are swept when the cache has doubled since the last sweep
    or ``sweep_every`` seconds have passed, so memory stays bounded by the
    nonces of about one freshness window.
    """

    def __init__(self, sweep_every: float = 60.0) -> None:
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._sweep_at = 1024
        self._sweep_every = sweep_every
        self._next_sweep = float("-inf")

    def add(self, nonce: bytes, expires_at: float, now: float) -> bool:
        with self._lock:
            seen = self._seen.get(nonce)
            if seen is not None and seen > now:
                return False
            self._seen[nonce] = expires_at
            if len(self._seen) >= self._sweep_at or now >= self._next_sweep:
                self._seen = {n: t for n, t in self._seen.items() if t > now}
                self._sweep_at = max(1024, 2 * len(self._seen))
                self._next_sweep = now + self._sweep_every
            return True

    def __len__(self) -> int:
        return len(self._seen)
