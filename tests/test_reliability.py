"""Reliability against the real servers: many processes, kill -9, servers that vanish, hang or lie.

Promise 6 (budgets never exceeded, committed spends never lost) and the
fail-closed rule for shared state (``state_unavailable``, never an allow,
never a hang beyond the timeout). Each multi-process test starts separate
Python processes, each with its own Verifier and store connection.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from capkit import AgentKey, Invocation, Keyring, Proof, StoreUnavailable, Verifier, mint, open_store
from capkit.caveats import Budget, Holder, Tools

from .backends import SHARED_BACKENDS, require_server, store_url
from .tcp import Liar, Proxy, Silent, closed_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = bytes(range(32))
KEYRING = Keyring.from_secret(SECRET, key_id="k1")
NOW = 1796083200
LEASE = 300

pytestmark = pytest.mark.slow


def worker(*args: str, stdin: str | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability_worker", *args], cwd=ROOT,
                            stdin=subprocess.PIPE if stdin is not None else None, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_spenders(url: str, plans: list[list[tuple[str, str]]], threads: int = 8) -> list[list[str]]:
    procs = [worker("spend", url, SECRET.hex(), str(threads), stdin="") for _ in plans]
    for proc, plan in zip(procs, plans):
        proc.stdin.write(json.dumps(plan))
        proc.stdin.close()
    results = []
    for proc in procs:
        out = proc.stdout.read()
        err = proc.stderr.read()
        assert proc.wait(timeout=300) == 0, err
        results.append(json.loads(out))
    return results


def bearer(*caveats):
    return mint(KEYRING, Tools("bank.transfer"), *caveats, location="bank")


def checker(url: str, clock: float = NOW) -> Verifier:
    return Verifier(KEYRING, location="bank", store=open_store(url), clock=lambda: clock, allow_bearer=True)


@pytest.fixture(params=SHARED_BACKENDS)
def url(request, tmp_path):
    return store_url(request.param, tmp_path)


def amounts(seed: int, n: int = 200) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.randint(1, 500) / 100:.2f}" for _ in range(n)]


# ------------------------------------------------------------ concurrency


def test_eight_processes_never_overspend_one_cap(url):
    cap = Decimal("500")
    token = bearer(Budget("amount", cap)).serialize()
    plans = [[(token, a) for a in amounts(seed)] for seed in range(8)]
    granted = run_spenders(url, plans)
    reported = sum(Decimal(a) for batch in granted for a in batch)
    (status,) = checker(url).budgets(token, at=NOW)
    assert status.committed == reported  # no success lost or counted twice
    assert status.committed <= cap  # never overspent
    assert status.reserved == 0
    assert cap - status.committed < Decimal("5")  # the cap was actually reached
    assert sum(len(b) for b in granted) < 8 * 200  # and calls were refused


def test_eight_processes_with_nested_sub_agent_budgets(url):
    parent = bearer(Budget("amount", 300))
    first, second = parent.attenuate(Budget("amount", 120)), parent.attenuate(Budget("amount", 150))
    texts = [first.serialize()] * 3 + [second.serialize()] * 3 + [parent.serialize()] * 2
    plans = [[(text, a) for a in amounts(100 + i)] for i, text in enumerate(texts)]
    granted = run_spenders(url, plans)
    spent = [sum(Decimal(a) for a in batch) for batch in granted]
    view = checker(url)
    first_status = {s.caveat_index: s.committed for s in view.budgets(first, at=NOW)}
    second_status = {s.caveat_index: s.committed for s in view.budgets(second, at=NOW)}
    assert first_status[2] == second_status[2] == sum(spent) <= 300  # the shared parent budget (caveat 2)
    assert first_status[3] == sum(spent[0:3]) <= 120  # each sub-agent's own (caveat 3)
    assert second_status[3] == sum(spent[3:6]) <= 150
    assert 300 - sum(spent) < 5


# ----------------------------------------------------------------- kill -9


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request, tmp_path):
    return store_url(request.param, tmp_path)


def ledger_is_consistent(url: str, family: str) -> None:
    """Every meter's total equals the sum of its live entries (for the reservations of ``family``)."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(url[len("sqlite://"):])
        rows = db.execute("SELECT e.meter, e.amount FROM entries e JOIN reservations r ON r.id = e.reservation"
                          " WHERE r.family = ? AND e.live = 1", (family,)).fetchall()
        keys = {m for m, _ in db.execute("SELECT e.meter, 1 FROM entries e JOIN reservations r"
                                         " ON r.id = e.reservation WHERE r.family = ?", (family,))}
        totals = {k: Decimal(t) for k, t in db.execute("SELECT key, total FROM meters").fetchall() if k in keys}
        stuck = db.execute("SELECT count(*) FROM entries e JOIN reservations r ON r.id = e.reservation"
                           " WHERE r.family = ? AND r.state = 'released' AND e.live = 1 AND e.refundable = 1",
                           (family,)).fetchone()[0]
        db.close()
    else:
        import psycopg

        from capkit.state.postgres import split_schema

        dsn, schema = split_schema(url)
        with psycopg.connect(dsn) as db:
            sql = lambda text: text.replace("capkit.", schema + ".")  # noqa: E731
            rows = db.execute(sql("SELECT e.meter, e.amount FROM capkit.entries e JOIN capkit.reservations r"
                                  " ON r.id = e.reservation WHERE r.family = %s AND e.live"), (family,)).fetchall()
            totals = dict(db.execute(sql("SELECT m.key, m.total FROM capkit.meters m WHERE m.key IN (SELECT e.meter"
                                         " FROM capkit.entries e JOIN capkit.reservations r ON r.id = e.reservation"
                                         " WHERE r.family = %s)"), (family,)).fetchall())
            stuck = db.execute(sql("SELECT count(*) FROM capkit.entries e JOIN capkit.reservations r ON r.id ="
                                   " e.reservation WHERE r.family = %s AND r.state = 'released' AND e.live"
                                   " AND e.refundable"), (family,)).fetchone()[0]
    live: dict[str, Decimal] = {}
    for meter, amount in rows:
        live[meter] = live.get(meter, Decimal(0)) + Decimal(amount)
    assert {k: Decimal(v) for k, v in totals.items()} == {k: live.get(k, Decimal(0)) for k in totals}
    assert stuck == 0


def test_kill_9_while_holding_a_reservation(durable_url):
    token = bearer(Budget("amount", 100))
    proc = worker("hold", durable_url, SECRET.hex(), token.serialize(), "60")
    assert proc.stdout.readline().strip() == "reserved"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    ledger_is_consistent(durable_url, token.id)
    (status,) = checker(durable_url).budgets(token, at=NOW)
    assert (status.reserved, status.committed) == (60, 0)  # still held, by a dead process
    assert checker(durable_url).authorize(token, Invocation("bank.transfer", {"amount": 50}, at=NOW)).codes == (
        "budget_exceeded",)
    later = checker(durable_url, clock=NOW + LEASE)  # the lease has run out: the dead call may have paid
    decision = later.authorize(token, Invocation("bank.transfer", {"amount": 100}, at=NOW + LEASE))
    assert decision.codes == ("budget_exceeded",), decision.explain()  # so its 60 stays spent, never reused
    rest = later.authorize(token, Invocation("bank.transfer", {"amount": 40}, at=NOW + LEASE))
    assert rest.allowed and later.complete(rest)
    (status,) = later.budgets(token, at=NOW + LEASE)
    assert (status.reserved, status.committed) == (0, 100)
    ledger_is_consistent(durable_url, token.id)


def test_kill_9_in_the_middle_of_reserve_and_commit(durable_url):
    token = bearer(Budget("amount", 100000))
    proc = worker("churn", durable_url, SECRET.hex(), token.serialize(), "1")
    commits = attempts = 0
    target = random.Random(3).randint(15, 60)
    while commits < target:
        line = proc.stdout.readline().strip()
        assert line in ("attempt", "committed"), line + proc.stderr.read()
        attempts += line == "attempt"
        commits += line == "committed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for line in proc.stdout.read().split():  # what the worker reported before the kill landed
        attempts += line == "attempt"
        commits += line == "committed"
    ledger_is_consistent(durable_url, token.id)
    view = checker(durable_url, clock=NOW + LEASE)
    (status,) = view.budgets(token, at=NOW + LEASE)
    # Every reported commit is in the ledger; at most the one in flight at the kill is too.
    assert commits <= status.committed <= commits + 1
    # The one in flight at the kill lapses into a spend once its lease is over; it is never given back.
    assert view.authorize(token, Invocation("bank.transfer", {"amount": 1}, at=NOW + LEASE)).allowed
    (after,) = view.budgets(token, at=NOW + LEASE)
    assert after.reserved == 1 and after.committed == status.reserved + status.committed
    ledger_is_consistent(durable_url, token.id)


# --------------------------------------------- servers that vanish, hang, lie


def _server_url(name: str, port: int) -> str:
    require_server(name)
    return {"postgres": f"postgresql://postgres@127.0.0.1:{port}/test", "redis": f"redis://127.0.0.1:{port}/0"}[name]


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_wrong_port_fails_fast_and_closed(name):
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        open_store(_server_url(name, closed_port()), timeout=1)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("name", ["postgres", "redis"])
@pytest.mark.parametrize("server", [Silent, Liar])
def test_hung_or_lying_server_fails_within_the_timeout(name, server):
    fake = server()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            open_store(_server_url(name, fake.port), timeout=1)
        assert time.monotonic() - started < 4  # libpq's connect timeout is at least 2 s
    finally:
        fake.stop()


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_connection_closed_mid_life_denies_within_the_timeout(name, tmp_path):
    real = store_url(name, tmp_path)
    proxy = Proxy(int(real.rsplit(":", 1)[1].split("/")[0]))
    holder = AgentKey.from_seed(b"\x07" * 32)
    try:
        verifier = Verifier(KEYRING, location="bank", store=open_store(_server_url(name, proxy.port), timeout=1), clock=lambda: NOW)
        token = mint(KEYRING, Holder(holder.public_key), Tools("bank.transfer"), Budget("amount", 10),
                     location="bank")

        def call():
            invocation = Invocation("bank.transfer", {"amount": 1}, at=NOW)
            return verifier.authorize(token, invocation, Proof.create(holder, token, invocation, at=NOW))

        assert call().allowed
        proxy.stop()  # the server goes away under an open connection
        for _ in range(3):
            started = time.monotonic()
            decision = call()
            assert decision.codes == ("state_unavailable",), decision.explain()
            assert time.monotonic() - started < 4
    finally:
        proxy.stop()


def test_sqlite_lock_held_elsewhere_denies_within_the_timeout(tmp_path):
    url = f"sqlite://{tmp_path / 'state.db'}"
    verifier = Verifier(KEYRING, location="bank", store=open_store(url, timeout=0.5), clock=lambda: NOW, allow_bearer=True)
    token = bearer(Budget("amount", 10))
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        decision = verifier.authorize(token, Invocation("bank.transfer", {"amount": 1}, at=NOW))
        assert decision.codes == ("state_unavailable",)
        assert time.monotonic() - started < 2
    finally:
        blocker.execute("ROLLBACK")
    assert verifier.authorize(token, Invocation("bank.transfer", {"amount": 1}, at=NOW)).allowed


# ------------------------------------------------------ across processes


def test_replayed_proof_is_refused_across_processes(url):
    holder = AgentKey.from_seed(b"\x08" * 32)
    token = mint(KEYRING, Holder(holder.public_key), Tools("bank.transfer"), Budget("amount", 100), location="bank")
    args = {"amount": 5}
    proof = Proof.create(holder, token, Invocation("bank.transfer", args, at=NOW), at=NOW).serialize()
    outcomes = []
    for _ in range(2):
        proc = worker("authorize", url, SECRET.hex(), token.serialize(), proof, json.dumps(args))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes.append(json.loads(out))
    assert outcomes == [[], ["proof_replayed"]]


def test_revocation_is_seen_by_another_process_at_once(url):
    token = bearer(Budget("amount", 100))
    verifier = checker(url)
    call = Invocation("bank.transfer", {"amount": 1}, at=NOW)
    assert verifier.authorize(token, call).allowed
    proc = worker("revoke", url, SECRET.hex(), token.id)
    out, err = proc.communicate(timeout=120)
    assert out.strip() == "revoked", err
    decision = verifier.authorize(token, call)
    assert decision.codes == ("revoked",)
    assert "revoked by another process" in decision.reasons[0].message
