#!/usr/bin/env python3
"""Benchmark: capkit's verifier against plain pymacaroons, in one run, side by side.

Scenario (issue 11), as a pymacaroons user writes it: string caveats
``tool = transfer``, ``amount <= 100``, ``currency = USD``, ``recipient in
<4 names>``, ``expires < T``, then ``amount <= 50``, then ``recipient in <2
names>``; one ``satisfy_general`` that splits ``field op value``. capkit gets
the same seven caveats as typed caveats. Medians in microseconds:

* plain_pymacaroons_us: deserialize + verify that pymacaroons token.
* capkit_cold_familiar_us: a token never seen (new token id, new chain) whose
  caveats were seen before in other tokens (minted from the same grant).
* capkit_cold_new_us: a token whose every caveat is new to the verifier.
* capkit_warm_us: the same token text again (verified-chain cache).
* proof_create_us vs ed25519_sign_us: ``Proof.create`` from the token text
  against one bare Ed25519 signature.
* attenuate_us vs pymacaroons_attenuate_us: wire to wire, add ``amount <= 25``
  (``Token.attenuate_serialized``; parse_attenuate_us: ``Token.parse`` then
  ``attenuate`` then ``serialize``, for reference).
* capkit_pop_us: a holder-bound token after 3 delegation hops, warm, a fresh
  proof for every call; pop_ratio = capkit_pop_us / (warm + ed25519_verify_us).
* approved_us vs unapproved_us: a holder-bound token with an approval caveat (needed above
  amount 100), warm, a fresh proof per call; approved: amount 500 with a fresh bound
  discharge each call (chain from the caveat key, binding, terms, the nonce's meter);
  unapproved: amount 20, under the threshold. approval_extra_us is the difference.
* satisfier_pymacaroons_us: the older comparison, kept and labelled: pymacaroons
  on capkit's own token, calling capkit's caveat checks as its satisfier.
* verifier_lines: lines of the capkit modules ``import capkit.core.verifier`` loads.

Prints one JSON object (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import gc
import platform
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from pymacaroons import MACAROON_V2, Macaroon
from pymacaroons import Verifier as PyVerifier

from capkit import AgentKey, Invocation, Keyring, Proof, Token, Verifier, mint
from capkit.approvals import approve, bind
from capkit.caveats import Approval, Eq, Expires, Holder, Max, OneOf, Tools
from capkit.compat.pymacaroons import satisfier

from _report import emit

NOW = 1796083200
RECIPIENTS = ["landlord", "plumber", "grocer", "school"]
GOALS = {"cold_familiar_speedup": 2.0, "cold_new_speedup": 1.0, "warm_speedup": 10.0,
         "attenuate_speedup": 1.0}
MAX_PROOF_CREATE_RATIO = 2.0
MAX_POP_RATIO = 1.3
VERIFIER_LINES_GOAL = 3200
CALL = {"recipient": "landlord", "amount": 20, "currency": "USD"}


def capkit_token(keyring: Keyring, token_id: bytes, variant: str = "") -> Token:
    """The scenario as typed caveats; ``variant`` makes every caveat's bytes new."""
    names = [name + variant for name in RECIPIENTS]
    names[0] = "landlord"
    token = mint(keyring, Tools("transfer"), Max("amount", 100), Eq("currency", "USD"), OneOf("recipient", names),
                 Expires(NOW + 3600 + len(variant)), location="bank", token_id=token_id)
    if variant:
        token = token.attenuate(Tools("transfer", "audit." + variant))
    token = token.attenuate(Max("amount", 50))
    return token.attenuate(OneOf("recipient", ["landlord", "plumber" + variant]))


def plain_pymacaroons_token(key: bytes) -> str:
    macaroon = Macaroon(location="bank", identifier="grant-1", key=key, version=MACAROON_V2)
    for caveat in ["tool = transfer", "amount <= 100", "currency = USD", "recipient in " + ",".join(RECIPIENTS),
                   f"expires < {NOW + 3600}", "amount <= 50", "recipient in landlord,plumber"]:
        macaroon.add_first_party_caveat(caveat)
    return macaroon.serialize()


def plain_satisfier(call: dict) -> Callable[[str], bool]:
    """What a pymacaroons user writes: one general satisfier parsing ``field op value``."""
    def satisfy(caveat: str) -> bool:
        field, op, value = caveat.split(" ", 2)
        if field == "expires":
            return op == "<" and NOW < int(value)
        if field not in call:
            return False
        actual = call[field]
        if op == "=":
            return str(actual) == value
        if op == "<=":
            return isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual <= float(value)
        if op == "in":
            return actual in value.split(",")
        return False
    return satisfy


def three_hop_token(keyring: Keyring):
    """The scenario bound to a planner and delegated three times; returns the token and the last holder."""
    agents = [AgentKey.from_seed(bytes([i]) * 32) for i in range(1, 5)]
    token = mint(keyring, Holder(agents[0].public_key), Tools("transfer"), Max("amount", 100),
                 Eq("currency", "USD"), OneOf("recipient", RECIPIENTS), Expires(NOW + 3600), location="bank")
    for parent, child in zip(agents, agents[1:]):
        token = token.delegate(parent, child.public_key)
    return token.attenuate(Max("amount", 50), OneOf("recipient", ["landlord", "plumber"])), agents[-1]


def median_us(samples: list[int]) -> float:
    return round(statistics.median(samples) / 1000, 2)


def timed(fn: Callable[[], object], n: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def interleaved(scenarios: "dict[str, Callable[[], object]]", n: int, batch: int = 200) -> "dict[str, list[int]]":
    """``n`` timings of each scenario, taken in alternating batches so that every ratio compares
    scenarios measured under the same machine conditions; the collector runs between batches only."""
    samples: dict[str, list[int]] = {name: [] for name in scenarios}
    done = 0
    while done < n:
        size = min(batch, n - done)
        for name, fn in scenarios.items():
            gc.collect()
            gc.disable()
            try:
                samples[name] += timed(fn, size)
            finally:
                gc.enable()
        done += size
    return samples


def verifier_lines() -> dict:
    """Lines of the capkit modules a fresh interpreter loads for ``import capkit.core.verifier``."""
    probe = ("import sys, capkit.core.verifier\n"
             "print('\\n'.join(sorted(m.__file__ for m in list(sys.modules.values())"
             " if getattr(m, '__name__', '').startswith('capkit') and getattr(m, '__file__', None))))")
    files = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    lines = sum(len(Path(f).read_text(encoding="utf-8").splitlines()) for f in files)
    return {"verifier_modules": len(files), "verifier_lines": lines}


def run(iterations: int) -> dict:
    keyring = Keyring.generate()
    invocation = Invocation("transfer", CALL, at=NOW)
    familiar = [capkit_token(keyring, i.to_bytes(16, "big")).serialize() for i in range(iterations + 1)]
    new = [capkit_token(keyring, (i + 1 << 64).to_bytes(16, "big"), f"-{i}").serialize() for i in range(iterations)]
    verifier = Verifier(keyring, location="bank", cache_size=3 * iterations + 8, allow_bearer=True)
    assert verifier.authorize(familiar[0], invocation).allowed
    assert verifier.authorize(new[-1], invocation).allowed
    verifier = Verifier(keyring, location="bank", cache_size=3 * iterations + 8, allow_bearer=True)
    assert verifier.authorize(familiar[0], invocation).allowed  # its caveats are now familiar

    py_key = secrets.token_bytes(32)
    py_text = plain_pymacaroons_token(py_key)

    def plain_pymacaroons() -> bool:
        macaroon = Macaroon.deserialize(py_text)
        py_verifier = PyVerifier()
        py_verifier.satisfy_general(plain_satisfier({"tool": "transfer", **CALL}))
        return py_verifier.verify(macaroon, py_key)

    root_key = keyring.root_key(keyring.active_key_id, "bank")
    sat_body = familiar[0][len("capkit_"):]

    def satisfier_pymacaroons() -> bool:
        macaroon = Macaroon.deserialize(sat_body)
        py_verifier = PyVerifier()
        py_verifier.satisfy_general(satisfier(invocation, now=NOW))
        return py_verifier.verify(macaroon, root_key)

    assert plain_pymacaroons() and satisfier_pymacaroons()

    pop_verifier = Verifier(keyring, location="bank", clock=lambda: NOW)
    pop_token, holder = three_hop_token(keyring)
    pop_text = pop_token.serialize()
    proofs = iter([Proof.create(holder, pop_token, invocation, at=NOW, nonce=i.to_bytes(16, "big")).serialize()
                   for i in range(iterations + 1)])
    assert pop_verifier.authorize(pop_text, invocation, next(proofs)).allowed
    approver = AgentKey.from_seed(b"\x07" * 32)
    approval_token = mint(keyring, Holder(holder.public_key), Tools("transfer"), Max("amount", 1000),
                          Approval(approver.public_key, arg="amount", above=100), location="bank")
    approval_text = approval_token.serialize()
    approval_verifier = Verifier(keyring, location="bank", clock=lambda: NOW)
    big = Invocation("transfer", {**CALL, "amount": 500}, at=NOW)
    request = approval_verifier.authorize(approval_text, big, Proof.create(holder, approval_token, big, at=NOW)).approval
    approved_calls = iter([
        (Proof.create(holder, approval_token, big, at=NOW, nonce=i.to_bytes(16, "big")).serialize(),
         [bind(approval_token, approve(request, approver, now=NOW, nonce=i.to_bytes(16, "big")))])
        for i in range(iterations + 1)])
    assert approval_verifier.authorize(approval_text, big, *next(approved_calls)).allowed
    unapproved_proofs = iter([Proof.create(holder, approval_token, invocation, at=NOW,
                                           nonce=(i + (1 << 64)).to_bytes(16, "big")).serialize()
                              for i in range(iterations + 1)])
    assert approval_verifier.authorize(approval_text, invocation, next(unapproved_proofs)).allowed
    message = b"m" * 137
    signature = holder.sign(message)
    public = holder.public_key
    attenuation = Max("amount", 25)

    def capkit_attenuate() -> str:
        return Token.attenuate_serialized(familiar[0], attenuation)

    def pymacaroons_attenuate() -> str:
        macaroon = Macaroon.deserialize(py_text)
        macaroon.add_first_party_caveat("amount <= 25")
        return macaroon.serialize()

    cold_familiar_texts = iter(familiar[1:])
    cold_new_texts = iter(new)
    samples = interleaved({
        "warm": lambda: verifier.authorize(familiar[0], invocation),
        "cold_familiar": lambda: verifier.authorize(next(cold_familiar_texts), invocation),
        "cold_new": lambda: verifier.authorize(next(cold_new_texts), invocation),
        "plain": plain_pymacaroons,
        "satisfier": satisfier_pymacaroons,
        "pop": lambda: pop_verifier.authorize(pop_text, invocation, next(proofs)),
        "ed25519_verify": lambda: public.verify(signature, message),
        "proof_create": lambda: Proof.create(holder, pop_text, invocation, at=NOW),
        "ed25519_sign": lambda: holder.sign(message),
        "attenuate": capkit_attenuate,
        "pymacaroons_attenuate": pymacaroons_attenuate,
        "parse_attenuate": lambda: Token.parse(familiar[0]).attenuate(attenuation).serialize(),
        "approved": lambda: approval_verifier.authorize(approval_text, big, *next(approved_calls)),
        "unapproved": lambda: approval_verifier.authorize(approval_text, invocation, next(unapproved_proofs)),
    }, iterations)
    us = {name: median_us(values) for name, values in samples.items()}

    r: dict = {"benchmark": "verify", "iterations": iterations, "caveats": 7,
               "plain_pymacaroons_us": us["plain"],
               "capkit_cold_familiar_us": us["cold_familiar"],
               "capkit_cold_new_us": us["cold_new"],
               "capkit_warm_us": us["warm"]}
    r["cold_familiar_speedup"] = round(r["plain_pymacaroons_us"] / r["capkit_cold_familiar_us"], 2)
    r["cold_new_speedup"] = round(r["plain_pymacaroons_us"] / r["capkit_cold_new_us"], 2)
    r["warm_speedup"] = round(r["plain_pymacaroons_us"] / r["capkit_warm_us"], 2)
    r["proof_create_us"] = us["proof_create"]
    r["ed25519_sign_us"] = us["ed25519_sign"]
    r["proof_create_ratio"] = round(r["proof_create_us"] / r["ed25519_sign_us"], 2)
    r["attenuate_us"] = us["attenuate"]
    r["pymacaroons_attenuate_us"] = us["pymacaroons_attenuate"]
    r["parse_attenuate_us"] = us["parse_attenuate"]
    r["attenuate_speedup"] = round(r["pymacaroons_attenuate_us"] / r["attenuate_us"], 2)
    r["capkit_pop_us"] = us["pop"]
    r["delegation_hops"] = 3
    r["ed25519_verify_us"] = us["ed25519_verify"]
    r["pop_ratio"] = round(r["capkit_pop_us"] / (r["capkit_warm_us"] + r["ed25519_verify_us"]), 3)
    r["satisfier_pymacaroons_us"] = us["satisfier"]
    r["approved_us"] = us["approved"]
    r["unapproved_us"] = us["unapproved"]
    r["approval_extra_us"] = round(us["approved"] - us["unapproved"], 2)
    r.update(verifier_lines())
    r["goals"] = {**GOALS, "proof_create_ratio_at_most": MAX_PROOF_CREATE_RATIO, "pop_ratio_at_most": MAX_POP_RATIO,
                  "verifier_lines_at_most": VERIFIER_LINES_GOAL}
    r["goals_met"] = {**{k: r[k] >= v for k, v in GOALS.items()},
                      "proof_create_ratio": r["proof_create_ratio"] <= MAX_PROOF_CREATE_RATIO,
                      "pop_ratio": r["pop_ratio"] <= MAX_POP_RATIO,
                      "verifier_lines": r["verifier_lines"] <= VERIFIER_LINES_GOAL}
    r["python"] = platform.python_version()
    r["machine"] = platform.machine()
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10000)
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    return emit(run(args.iterations), args.out)


if __name__ == "__main__":
    sys.exit(main())
