#!/usr/bin/env python3
"""Benchmark: what the audit log costs on the warm authorize path, and how fast a log verifies.

* pop_us / pop_audited_us: a holder-bound token after one delegation, warm, a
  fresh proof per call (the default verifier accepts only holder-bound tokens),
  without and with the file sink (``AuditLog``, default policy: each line handed
  to the OS before ``authorize`` returns, fsync at every checkpoint of 1000
  lines); overhead_pct is the difference. Measured in alternating batches.
* bearer_us / bearer_audited_us: the same for a bearer token (no proof), where
  the verifier itself is cheapest, so the record is the largest share.
* verify_seconds: ``verify_log`` over a log of --records records shaped like the
  verifier's (written through ``AuditLog.write``), read from the file.

Prints one JSON object (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from capkit import AgentKey, Invocation, Keyring, Proof, Verifier, mint
from capkit.audit import AuditLog, log_lines, verify_log
from capkit.caveats import Eq, Holder, Max, OneOf, Tools

from _report import emit

GOAL_OVERHEAD_PCT = 15.0
GOAL_VERIFY_SECONDS = 10.0
NOW = 1796083200
CALL = {"recipient": "landlord", "amount": 20, "currency": "USD"}


def interleaved(scenarios: "dict[str, Callable[[], object]]", n: int, batch: int = 250) -> "dict[str, float]":
    """Median microseconds of each scenario, timed in alternating batches."""
    samples: dict[str, list[int]] = {name: [] for name in scenarios}
    clock = time.perf_counter_ns
    for _ in range(0, n, batch):
        for name, fn in scenarios.items():
            gc.collect()
            gc.disable()
            try:
                for _ in range(batch):
                    start = clock()
                    fn()
                    samples[name].append(clock() - start)
            finally:
                gc.enable()
    return {name: round(statistics.median(values) / 1000, 2) for name, values in samples.items()}


def authorize_overhead(directory: Path, iterations: int) -> dict:
    keyring = Keyring.generate()
    planner, payer = AgentKey.generate(), AgentKey.generate()
    audit_key = AgentKey.generate()
    token = mint(keyring, Holder(planner.public_key), Tools("transfer"), Max("amount", 100), Eq("currency", "USD"),
                 OneOf("recipient", ["landlord", "plumber"]), location="bank").delegate(planner, payer.public_key)
    bearer = mint(keyring, Tools("transfer"), Max("amount", 100), Eq("currency", "USD"),
                  OneOf("recipient", ["landlord", "plumber"]), location="bank")
    text, bearer_text = token.serialize(), bearer.serialize()
    invocation = Invocation("transfer", CALL, at=NOW)
    log = AuditLog(directory / "overhead.jsonl", audit_key, origin="bench.example/audit")
    plain = Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True)
    audited = Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True, audit=log)
    total = 2 * iterations + 2
    proofs = iter([Proof.create(payer, token, invocation, at=NOW, nonce=i.to_bytes(16, "big")).serialize()
                   for i in range(total)])
    for verifier in (plain, audited):  # warm the chain caches
        assert verifier.authorize(text, invocation, next(proofs)).allowed
        assert verifier.authorize(bearer_text, invocation).allowed
    us = interleaved({
        "pop": lambda: plain.authorize(text, invocation, next(proofs)),
        "pop_audited": lambda: audited.authorize(text, invocation, next(proofs)),
        "bearer": lambda: plain.authorize(bearer_text, invocation),
        "bearer_audited": lambda: audited.authorize(bearer_text, invocation),
    }, iterations)
    audited.close()
    return {
        "pop_us": us["pop"], "pop_audited_us": us["pop_audited"],
        "overhead_pct": round(100 * (us["pop_audited"] - us["pop"]) / us["pop"], 1),
        "bearer_us": us["bearer"], "bearer_audited_us": us["bearer_audited"],
        "bearer_overhead_pct": round(100 * (us["bearer_audited"] - us["bearer"]) / us["bearer"], 1),
        "record_bytes": round((directory / "overhead.jsonl").stat().st_size
                              / max(1, len((directory / "overhead.jsonl").read_bytes().splitlines()))),
    }


def verify_speed(directory: Path, records: int) -> dict:
    """Write ``records`` decision-shaped records, then time ``verify_log`` over the file."""
    audit_key = AgentKey.generate()
    path = directory / "big.jsonl"
    log = AuditLog(path, audit_key, origin="bench.example/audit")
    record = {
        "v": 1, "event": "decision", "verifier": "bank", "allowed": True, "reasons": [],
        "token": "HlQL74aXSVcG2Jbr-HcaJw", "hops": ["HlQL74aXSVcG2Jbr-HcaJw", "HlQL74aXSVcG2Jbr-HcaJw.abcdefgh"],
        "holder": "34750f98", "tool": "transfer", "audience": None, "args": CALL,
        "digest": "CSKsJHQBjE_ZaMesnHogOznrwWKDb5rNqqs6oRXpATc",
        "proof": {"key": audit_key.public_key.text, "at": NOW, "nonce": "a_k8ieAO2IPvB_RSLqD9Pw",
                  "sig": "pAtcXMVr_ntmo0qf7jsemgihrTUJYk0U3xfcPm2Gnd3CiBF5az6SuXmbeagHrMIsSSqVwSqVCwHDu4mZG433Dg"},
        "reserved": None,
    }
    start = time.perf_counter()
    for i in range(records):
        log.write({**record, "id": f"{i:022d}", "at_ms": NOW * 1000 + i})
    log.close()
    write_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = verify_log(log_lines(str(path)), audit_key.public_key)
    verify_seconds = time.perf_counter() - start
    assert report.intact and report.records == records, report.summary()
    return {"records": records, "log_bytes": path.stat().st_size, "write_seconds": round(write_seconds, 2),
            "verify_seconds": round(verify_seconds, 2), "checkpoints": report.checkpoints}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="capkit-bench-audit-") as tmp:
        directory = Path(tmp)
        result: dict = {"benchmark": "audit", "iterations": args.iterations, "sync": "checkpoint",
                        "checkpoint_every": 1000}
        result.update(authorize_overhead(directory, args.iterations))
        result.update(verify_speed(directory, args.records))
    result["goals"] = {"overhead_pct_at_most": GOAL_OVERHEAD_PCT, "verify_seconds_at_most": GOAL_VERIFY_SECONDS}
    result["goals_met"] = {"overhead_pct": result["overhead_pct"] <= GOAL_OVERHEAD_PCT,
                           "verify_seconds": result["verify_seconds"] <= GOAL_VERIFY_SECONDS
                           if result["records"] >= 1_000_000 else None}
    result["python"] = platform.python_version()
    result["machine"] = platform.machine()
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
