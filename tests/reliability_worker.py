"""Child-process side of tests/test_reliability.py: separate processes, separate Verifiers, one store.

Run as ``python -m tests.reliability_worker COMMAND ARGS...``; every command
prints one line per event so the parent can follow (and kill) it.
"""

from __future__ import annotations

import json
import sys
import threading
from decimal import Decimal

from capkit import Invocation, Keyring, Verifier, open_store

NOW = 1796083200


def verifier(url: str, secret_hex: str, clock: float = NOW) -> Verifier:
    keyring = Keyring.from_secret(bytes.fromhex(secret_hex), key_id="k1")
    return Verifier(keyring, location="bank", store=open_store(url), clock=lambda: clock, allow_bearer=True)


def spend(url: str, secret_hex: str, plan: list[tuple[str, str]], threads: int) -> list[str]:
    """Authorize and commit each (token, amount) of ``plan`` from ``threads`` threads; the amounts granted."""
    v = verifier(url, secret_hex)
    granted: list[str] = []
    lock = threading.Lock()

    def work(items: list[tuple[str, str]]) -> None:
        for token, amount in items:
            decision = v.authorize(token, Invocation("bank.transfer", {"amount": Decimal(amount)}, at=NOW))
            if decision.allowed and v.complete(decision):
                with lock:
                    granted.append(amount)
            elif not decision.allowed:
                assert set(decision.codes) <= {"budget_exceeded"}, decision.explain()

    workers = [threading.Thread(target=work, args=(plan[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    v.close()
    return granted


def main(argv: list[str]) -> int:
    command, url, secret_hex = argv[0], argv[1], argv[2]
    if command == "spend":  # plan as JSON on stdin; prints the granted amounts as JSON
        plan = json.loads(sys.stdin.read())
        print(json.dumps(spend(url, secret_hex, [tuple(p) for p in plan], int(argv[3]))), flush=True)
    elif command == "hold":  # reserve once, report, then wait to be killed
        v = verifier(url, secret_hex)
        decision = v.authorize(argv[3], Invocation("bank.transfer", {"amount": Decimal(argv[4])}, at=NOW))
        print("reserved" if decision.allowed else "denied " + decision.explain(), flush=True)
        threading.Event().wait(600)
    elif command == "churn":  # reserve and commit in a loop, reporting each commit, until killed
        v = verifier(url, secret_hex)
        while True:
            decision = v.authorize(argv[3], Invocation("bank.transfer", {"amount": Decimal(argv[4])}, at=NOW))
            if not decision.allowed:
                print("full", flush=True)
                threading.Event().wait(600)
            print("attempt", flush=True)
            if v.complete(decision):
                print("committed", flush=True)
    elif command == "authorize":  # one call with a proof; prints the reason codes as JSON
        from capkit import Verifier as V

        keyring = Keyring.from_secret(bytes.fromhex(secret_hex), key_id="k1")
        v = V(keyring, location="bank", store=open_store(url), clock=lambda: NOW)
        args = json.loads(argv[5])
        decision = v.authorize(argv[3], Invocation("bank.transfer", args, at=NOW), argv[4])
        print(json.dumps(list(decision.codes)), flush=True)
    elif command == "revoke":
        verifier(url, secret_hex).revoke(argv[3], "revoked by another process")
        print("revoked", flush=True)
    else:
        print("unknown command", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
