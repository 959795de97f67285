"""The Store protocol: the same ledger semantics on memory, SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import random
import secrets
import threading
from decimal import Decimal

import pytest

from capkit.state import Meter, StateRequest, StoreUnavailable, open_store
from capkit.state.redis import from_units, to_units

from .backends import BACKENDS, family, open_backend, require_server

D = Decimal


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    opened = open_backend(request.param, tmp_path)
    yield opened
    opened.close()


def req(fam, *meters, nonce=None, nonce_expires=0.0, ids=None, lease=60.0):
    return StateRequest(fam, ids or (fam,), nonce, nonce_expires, tuple(meters), lease)


def meter(key, cap, amount, window=None):
    return Meter(key, D(cap), D(amount), window)


def test_reserve_commit_and_usage(store):
    fam = family()
    result = store.apply(req(fam, meter(fam + "a", "100", "12.50")), now=10)
    assert result.ok and result.reservation is not None and result.reservation.expires_at == 70
    [usage] = store.usage(fam, [(fam + "a", None)], now=11)
    assert (usage.committed, usage.reserved) == (D(0), D("12.5"))
    assert store.commit(result.reservation, now=12)
    [usage] = store.usage(fam, [(fam + "a", None)], now=13)
    assert (usage.committed, usage.reserved) == (D("12.5"), D(0))


def test_exceeding_reports_what_is_used_and_writes_nothing(store):
    fam = family()
    first = store.apply(req(fam, meter(fam + "a", "10", "7")), now=0)
    assert first.ok
    denied = store.apply(req(fam, meter(fam + "a", "10", "4"), nonce=b"n" * 16, nonce_expires=100), now=1)
    assert not denied.ok and denied.reservation is None
    (exceeded,) = denied.exceeded
    assert (exceeded.key, exceeded.used, exceeded.cap, exceeded.amount) == (fam + "a", D(7), D(10), D(4))
    # The denied call's nonce was not recorded, and the room is intact.
    assert store.apply(req(fam, meter(fam + "a", "10", "3"), nonce=b"n" * 16, nonce_expires=100), now=2).ok


def test_all_meters_or_none(store):
    fam = family()
    store.apply(req(fam, meter(fam + "b", "5", "5")), now=0)
    denied = store.apply(req(fam, meter(fam + "a", "100", "1"), meter(fam + "b", "5", "1")), now=1)
    assert [e.key for e in denied.exceeded] == [fam + "b"]
    [usage] = store.usage(fam, [(fam + "a", None)], now=2)
    assert usage.reserved == 0 and usage.committed == 0
    both = store.apply(req(fam, meter(fam + "a", "100", "1"), meter(fam + "c", "5", "5")), now=3)
    assert both.ok


def test_every_exceeded_meter_is_listed(store):
    fam = family()
    denied = store.apply(req(fam, meter(fam + "a", "1", "2"), meter(fam + "b", "1", "3")), now=0)
    assert sorted(e.key for e in denied.exceeded) == [fam + "a", fam + "b"]


def test_release_refunds_exactly(store):
    fam = family()
    key = fam + "a"
    held = [store.apply(req(fam, meter(key, "1", "0.1")), now=0).reservation for _ in range(10)]
    assert all(held)  # ten times 0.1 is exactly 1
    assert not store.apply(req(fam, meter(key, "1", "0.000000000000000001")), now=0).ok
    assert store.release(held[3], now=1)
    assert store.apply(req(fam, meter(key, "1", "0.1")), now=1).ok
    assert not store.apply(req(fam, meter(key, "1", "0.000000000000000001")), now=1).ok


def test_commit_and_release_are_final(store):
    fam = family()
    a = store.apply(req(fam, meter(fam + "a", "10", "1")), now=0).reservation
    assert store.commit(a, now=1) and store.commit(a, now=1) in (True, False)
    assert not store.release(a, now=1)
    b = store.apply(req(fam, meter(fam + "a", "10", "1")), now=0).reservation
    assert store.release(b, now=1)
    assert not store.release(b, now=1) and not store.commit(b, now=1)


def test_a_lease_that_runs_out_lapses_into_a_spend_never_a_refund(store):
    # Finding 12 of the boundary review: the next call released the expired reservation and reused its room,
    # so a slow tool spent the budget twice. An open reservation may belong to a call that ran: it counts.
    fam = family()
    key = fam + "a"
    stale = store.apply(req(fam, meter(key, "10", "10"), lease=30), now=0).reservation
    assert not store.apply(req(fam, meter(key, "10", "1")), now=29).ok
    assert not store.apply(req(fam, meter(key, "10", "10")), now=30).ok  # the lease ran out: still spent
    assert not store.apply(req(fam, meter(key, "10", "1")), now=10_000).ok
    assert store.commit(stale, now=10_001)  # the slow tool's late commit succeeds: nothing was double-spent
    assert not store.release(stale, now=10_002)  # and it can no longer be given back
    [usage] = store.usage(fam, [(key, None)], now=10_003)
    assert (usage.committed, usage.reserved) == (D(10), D(0))


def test_abandoned_reservations_on_other_meters_are_settled_as_spent(store):
    fam = family()
    abandoned = store.apply(req(fam, meter(fam + "old", "10", "4"), lease=30), now=0).reservation
    assert abandoned is not None
    assert store.apply(req(fam, meter(fam + "new", "10", "1")), now=100).ok  # a call on another meter
    [usage] = store.usage(fam, [(fam + "old", None)], now=101)
    assert (usage.committed, usage.reserved) == (D(4), D(0))
    assert store.commit(abandoned, now=102)  # it lapsed into a committed spend


def test_release_keeps_call_limits_and_cancel_gives_everything_back(store):
    fam = family()
    budget, calls = meter(fam + "b", "10", "10"), Meter(fam + "c", D(1), D(1), None, False)
    held = store.apply(req(fam, budget, calls), now=0).reservation
    assert store.release(held, now=1)  # nothing was spent: the budget is back, the attempt still counts
    [b, c] = store.usage(fam, [(fam + "b", None), (fam + "c", None)], now=2)
    assert (b.committed, b.reserved, c.committed) == (D(0), D(0), D(1))
    denied = store.apply(req(fam, budget, calls), now=3)
    assert [e.key for e in denied.exceeded] == [fam + "c"]
    other = family()
    held = store.apply(req(other, meter(other + "b", "10", "10"), Meter(other + "c", D(1), D(1), None, False)),
                       now=0).reservation
    assert store.release(held, now=1, keep_attempts=False)  # the call was never made
    assert store.apply(req(other, meter(other + "b", "10", "10"), Meter(other + "c", D(1), D(1), None, False)),
                       now=2).ok


def test_rolling_window_ages_out_entries(store):
    fam = family()
    key = fam + "w"
    first = store.apply(req(fam, meter(key, "10", "6", 3600)), now=0).reservation
    store.commit(first, now=1)
    assert not store.apply(req(fam, meter(key, "10", "6", 3600)), now=3599).ok
    later = store.apply(req(fam, meter(key, "10", "6", 3600)), now=3600)
    assert later.ok
    store.commit(later.reservation, now=3601)
    [usage] = store.usage(fam, [(key, 3600)], now=3602)
    assert usage.committed == 6


def test_nonce_is_accepted_once_until_it_expires(store):
    fam = family()
    nonce = b"\x01" * 16
    assert store.apply(req(fam, nonce=nonce, nonce_expires=60), now=0).ok
    assert store.apply(req(fam, nonce=nonce, nonce_expires=60), now=59).replayed
    assert store.apply(req(fam, nonce=b"\x02" * 16, nonce_expires=60), now=59).ok
    assert store.apply(req(fam, nonce=nonce, nonce_expires=200), now=61).ok  # expired: the proof is stale anyway
    other = family()
    assert store.apply(req(other, nonce=b"\x02" * 16, nonce_expires=60), now=1).ok  # nonces are per family


def test_revocation_of_a_hop_and_its_descendants(store):
    fam = family()
    hop1 = fam + ".abcdefgh"
    store.revoke(hop1, "sub-agent compromised", now=5)
    result = store.apply(req(fam, ids=(fam, hop1)), now=6)
    assert result.revoked == (hop1, "sub-agent compromised")
    assert store.apply(req(fam, ids=(fam,)), now=6).ok  # the parent's own token still works
    store.revoke(fam, None, now=7)
    assert store.apply(req(fam, ids=(fam,)), now=8).revoked == (fam, None)
    assert store.apply(req(family()), now=8).ok


def test_large_exact_amounts(store):
    fam = family()
    cap = "123456789012345678901234567890.123456789012345678"
    key = fam + "big"
    assert store.apply(req(fam, meter(key, cap, "123456789012345678901234567890.123456789012345677")), now=0).ok
    assert store.apply(req(fam, meter(key, cap, "0.000000000000000001")), now=0).ok
    assert not store.apply(req(fam, meter(key, cap, "0.000000000000000001")), now=0).ok


def test_threads_never_overspend(store):
    fam = family()
    key = fam + "t"
    cap = D("50")
    rng = random.Random(7)
    amounts = [D(rng.randint(1, 500)) / 100 for _ in range(200)]
    granted: list[Decimal] = []
    lock = threading.Lock()

    def worker(chunk):
        for amount in chunk:
            result = store.apply(req(fam, meter(key, cap, amount)), now=0)
            if result.ok:
                store.commit(result.reservation, now=0)
                with lock:
                    granted.append(amount)

    threads = [threading.Thread(target=worker, args=(amounts[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [usage] = store.usage(fam, [(key, None)], now=1)
    assert usage.committed == sum(granted) <= cap
    assert usage.reserved == 0
    assert 0 < len(granted) < len(amounts)  # the cap was reached, and only then were calls refused


def test_unknown_scheme_and_bad_urls():
    for url in ("ftp://x", "sqlite://relative.db", "nonsense", 5):
        with pytest.raises(StoreUnavailable):
            open_store(url)  # type: ignore[arg-type]


def test_redis_units_are_exact():
    for text in ("0", "1", "0.000000000000000001", "123456789012345678901234567890.123456789012345678", "12.5"):
        assert from_units(to_units(D(text))) == D(text)
    with pytest.raises(StoreUnavailable):
        to_units(D("0.0000000000000000001"))
    with pytest.raises(StoreUnavailable):
        from_units(b"12a")


def test_postgres_schema_migrates_from_version_1_in_place():
    """A database created by an earlier capkit (schema 1) is upgraded on first use, keeping its data."""
    psycopg = pytest.importorskip("psycopg")
    from urllib.parse import urlsplit, urlunsplit

    from capkit.state import postgres as pg

    base = require_server("postgres")
    name = "capkit_migration_" + secrets.token_hex(4)
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    try:
        url = urlunsplit(urlsplit(base)._replace(path="/" + name))
        with psycopg.connect(url, autocommit=True) as conn:  # what capkit 0.1 with schema 1 left behind
            conn.execute("CREATE SCHEMA capkit")
            conn.execute("CREATE TABLE capkit.schema_version (version integer NOT NULL)")
            conn.execute(pg._MIGRATIONS[1])
            conn.execute("INSERT INTO capkit.schema_version VALUES (1)")
            conn.execute("INSERT INTO capkit.revocations VALUES ('old-token', 'from schema 1', 0)")
        store = open_store(url)
        try:
            fam = family()
            assert store.apply(req(fam, ids=("old-token",)), now=1).revoked == ("old-token", "from schema 1")
            held = store.apply(req(fam, meter(fam + "m", "10", "4")), now=1).reservation
            assert store.commit(held, now=2)
        finally:
            store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT version FROM capkit.schema_version").fetchone() == (pg.SCHEMA_VERSION,)
            config = conn.execute("SELECT proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                                  " WHERE n.nspname = 'capkit' AND p.proname = 'apply'").fetchone()[0]
            assert "enable_bitmapscan=off" in config
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_a_store_with_a_newer_schema_is_refused_not_guessed(tmp_path):
    import sqlite3

    path = tmp_path / "state.db"
    open_store(f"sqlite://{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE capkit_schema SET version = 99")
    with pytest.raises(StoreUnavailable, match="schema version 99; this capkit knows 2"):
        open_store(f"sqlite://{path}")
