#!/usr/bin/env python3
"""Benchmark: reserve + commit per second on each store, with 1 and with 8 processes.

Each operation is what an allowed call with one budget costs in shared state:
``Store.apply`` (revocation check, one meter reserved atomically) and then
``Store.commit``. The cap is set so that about 85% of the demand fits, so the
run also checks the promise: the committed total never exceeds the cap and
equals the sum of the successes every process reported ("overspend" must be 0).

Prints one JSON object (and writes it to --out). Servers come from
CAPKIT_TEST_POSTGRES_URL / CAPKIT_TEST_REDIS_URL (defaults: the local ones);
an unreachable server is reported as skipped.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import platform
import secrets
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capkit.state import Meter, StateRequest, StoreUnavailable, open_store  # noqa: E402

from _report import emit  # noqa: E402

GOALS = {"sqlite": 2000, "postgres": 1000, "redis": 5000}
AMOUNT = Decimal("1.25")


def _family() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def run_ops(url: str, family: str, key: str, cap: Decimal, n: int, start=None) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    """``n`` reserve+commit operations; returns (successes, seconds, granted total)."""
    store = open_store(url)
    if start is not None:
        start.wait()
    granted = Decimal(0)
    ok = 0
    began = time.perf_counter()
    for _ in range(n):
        result = store.apply(StateRequest(family, (family,), None, 0.0, (Meter(key, cap, AMOUNT, None),), 300.0),
                             time.time())
        if result.reservation is not None and store.commit(result.reservation, time.time()):
            ok += 1
            granted += AMOUNT
    elapsed = time.perf_counter() - began
    store.close()
    return ok, elapsed, float(granted)


def _worker(args):  # type: ignore[no-untyped-def]
    url, family, key, cap, n, start = args
    ok, elapsed, granted = run_ops(url, family, key, Decimal(cap), n, start)
    return ok, elapsed, str(Decimal(granted).quantize(Decimal("0.01")))


def measure(name: str, url: str, ops: int) -> dict:
    out: dict = {}
    # One process.
    family, key = _family(), "bench-" + secrets.token_hex(4)
    cap = AMOUNT * int(ops * 0.85)
    ok, elapsed, _ = run_ops(url, family, key, cap, ops)
    usage = open_store(url).usage(family, [(key, None)], time.time())[0]
    out["1_process_ops_per_s"] = round(ops / elapsed)
    out["1_process_overspend"] = str(max(usage.committed - cap, Decimal(0)))
    out["1_process_lost_or_double"] = str(usage.committed - AMOUNT * ok)
    # Eight processes sharing one cap.
    family, key = _family(), "bench-" + secrets.token_hex(4)
    per = max(1, ops // 8)
    cap = AMOUNT * int(per * 8 * 0.85)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(8) as pool:
            pending = pool.map_async(_worker, [(url, family, key, str(cap), per, start)] * 8)
            time.sleep(1.5)  # let every process open its connection
            began = time.perf_counter()
            start.set()
            results = pending.get(timeout=600)
            wall = time.perf_counter() - began
    usage = open_store(url).usage(family, [(key, None)], time.time())[0]
    reported = sum(Decimal(r[2]) for r in results)
    out["8_processes_ops_per_s"] = round(per * 8 / wall)
    out["8_processes_overspend"] = str(max(usage.committed - cap, Decimal(0)))
    out["8_processes_lost_or_double"] = str(usage.committed - reported)
    out["goal_ops_per_s"] = GOALS[name]
    out["goal_met_1_process"] = out["1_process_ops_per_s"] >= GOALS[name]
    out["goal_met_8_processes"] = out["8_processes_ops_per_s"] >= GOALS[name]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000, help="operations per measurement")
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="capkit-bench-")
    urls = {
        "sqlite": f"sqlite://{tmp}/state.db",
        "postgres": os.environ.get("CAPKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        "redis": os.environ.get("CAPKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    result: dict = {"benchmark": "store", "operation": "apply (one budget) + commit", "ops": args.ops}
    for name, url in urls.items():
        try:
            open_store(url, timeout=2).close()
        except StoreUnavailable as exc:
            result[name] = {"skipped": exc.message}
            continue
        result[name] = measure(name, url, args.ops)
    result["overspend_found"] = str(sum(
        Decimal(result[n].get(k, "0")) for n in urls for k in ("1_process_overspend", "8_processes_overspend")
        if isinstance(result[n], dict)))
    result["python"] = platform.python_version()
    result["cpus"] = os.cpu_count()
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
