"""``RedisStore``: fast shared nonces, rates and budgets (``redis://host:6379/0``, redis-py).

Each decision is one Lua script (``capkit.state.redis_lua``), atomic inside
Redis; all keys of one token family share a hash tag, so they land in one
Redis Cluster slot. Amounts are exact (fixed-point integers in Lua). Redis
keeps state in memory and on disk only as its own persistence settings say:
prefer PostgreSQL for budgets that must survive a Redis restart.

Connecting and every command are bounded by ``timeout`` and are not retried;
any failure or unexpected answer raises ``StoreUnavailable``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.caveats.amounts import format_amount
from ..core.state import ledger
from .redis_lua import APPLY, COMMIT, RELEASE, USAGE
from ..core.state.types import EXACT, Exceeded, Reservation, StateRequest, StateResult, StoreUnavailable, Usage, family_of
from .urls import describe_error, redacted

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


def to_units(amount: Decimal) -> str:
    """A non-negative amount as an integer count of 10**-18 units (exact)."""
    units = amount.scaleb(18, EXACT)
    if units < 0 or units != units.to_integral_value():
        raise StoreUnavailable("an amount has more than 18 decimal places or is negative")
    return str(int(units))


def from_units(text: object) -> Decimal:
    """The amount of an integer count of 10**-18 units (exact)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    if not isinstance(text, str) or not text.isdigit() or len(text) > 80:
        raise StoreUnavailable("Redis answered a malformed amount")
    return Decimal(format_amount(Decimal(int(text)).scaleb(-18, EXACT)))


def _split_prefix(url: str) -> tuple[str, str]:
    """The connection URL without capkit's own ``prefix`` option, and the key prefix (default ``capkit``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [v for k, v in query if k == "prefix"]
    if len(prefixes) > 1 or (prefixes and not _PREFIX.fullmatch(prefixes[0])):
        raise StoreUnavailable("the Redis store's prefix option is 1-64 characters of A-Z a-z 0-9 _ . -")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), (prefixes or ["capkit"])[0]


class RedisStore:
    """A ledger in Redis, shared by every verifier that connects to it.

    ``?prefix=NAME`` in the URL names the keys ``NAME:{family}:...`` instead of
    ``capkit:{family}:...`` (separate ledgers in one database, such as a test suite's).
    """

    def _keys(self, family: str) -> list[str]:
        tag = self.prefix + ":{" + family + "}"
        return [tag + ":s", tag + ":p", tag + ":w", tag + ":z", tag + ":t"]

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - the [redis] extra
            raise StoreUnavailable("the Redis store needs redis-py: pip install 'capkit[redis]'") from None
        self._errors = (redis.RedisError, OSError)
        self.url = url
        connect_url, self.prefix = _split_prefix(url)
        try:
            self._client = redis.Redis.from_url(
                connect_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False, health_check_interval=0)
            self._apply = self._client.register_script(APPLY)
            self._commit = self._client.register_script(COMMIT)
            self._release = self._client.register_script(RELEASE)
            self._usage = self._client.register_script(USAGE)
            self._client.ping()
        except (*self._errors, ValueError) as exc:
            raise StoreUnavailable(f"cannot connect to the Redis store at {redacted(url)}: "
                                   f"{describe_error(exc)}") from exc

    def _call(self, script, keys: list[str], args: list):  # type: ignore[no-untyped-def]
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise StoreUnavailable(f"the Redis store at {redacted(self.url)} failed: {describe_error(exc)}") from exc

    def apply(self, request: StateRequest, now: float) -> StateResult:
        rid = ledger.new_reservation_id()
        args: list = [repr(float(now)), repr(float(request.lease)), rid,
                      "" if request.nonce is None else request.nonce.hex(), repr(float(request.nonce_expires_at)),
                      len(request.revocation_ids), *request.revocation_ids, len(request.meters)]
        for meter in request.meters:
            args += [meter.key, to_units(meter.cap), to_units(meter.amount),
                     "" if meter.window is None else str(meter.window), "1" if meter.refundable else "0"]
        answer = self._call(self._apply, self._keys(request.family), args)
        try:
            outcome = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
            if outcome == "ok":
                if not request.meters:
                    return StateResult()
                return StateResult(reservation=Reservation(rid, request.family, now + request.lease))
            if outcome == "revoked":
                return StateResult(revoked=(answer[1].decode(), answer[2].decode() or None))
            if outcome == "replayed":
                return StateResult(replayed=True)
            if outcome == "exceeded":
                by_key = {m.key: m for m in request.meters}
                return StateResult(exceeded=tuple(
                    Exceeded(key.decode(), from_units(used), by_key[key.decode()].cap, by_key[key.decode()].amount)
                    for key, used in zip(answer[1::2], answer[2::2])))
        except (IndexError, KeyError, AttributeError, TypeError, UnicodeDecodeError):
            pass
        raise StoreUnavailable("Redis answered something capkit does not understand")

    def commit(self, reservation: Reservation, now: float) -> bool:
        return self._call(self._commit, self._keys(reservation.family), [reservation.id]) == 1

    def release(self, reservation: Reservation, now: float, *, keep_attempts: bool = True) -> bool:
        return self._call(self._release, self._keys(reservation.family),
                          [reservation.id, "0" if keep_attempts else "1"]) == 1

    def revoke(self, hop_id: str, reason: str | None, now: float) -> None:
        try:
            self._client.hsetnx(self._keys(family_of(hop_id))[0], "x:" + hop_id, reason or "")
        except self._errors as exc:
            raise StoreUnavailable(f"the Redis store at {redacted(self.url)} failed: {describe_error(exc)}") from exc

    def usage(self, family: str, meters: list[tuple[str, int | None]], now: float) -> list[Usage]:
        args: list = [repr(float(now))]
        for key, window in meters:
            args += [key, "" if window is None else str(window)]
        answer = self._call(self._usage, self._keys(family), args)
        return [Usage(key, from_units(answer[2 * i]), from_units(answer[2 * i + 1]))
                for i, (key, _) in enumerate(meters)]

    def close(self) -> None:
        try:
            self._client.close()
        except self._errors:
            pass
