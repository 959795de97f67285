#!/usr/bin/env python3
"""Benchmark: capkit's verifier against pymacaroons on the same token.

The token has 6 caveats after 2 attenuations; every run authorizes an allowed
call. Three figures, medians over many iterations, in one run:

* capkit_cold_us: the token text is seen for the first time (decode, parse,
  HMAC chain, caveat checks). Each iteration presents a different token
  (same caveats, another token id) to one long-lived verifier.
* capkit_warm_us: the same token text again; the verified-chain cache skips
  parsing and the HMAC chain, per-call checks still run.
* pymacaroons_us: pymacaroons deserializes the same token text and verifies it
  with a general satisfier that applies capkit's caveat checks (the same
  semantics), with the root key already derived.
* capkit_pop_us: a holder-bound token after a 3-hop delegation chain, warm,
  each call with a fresh proof of possession (parse, invocation digest, one
  Ed25519 verification, replay cache); ed25519_verify_us: one bare Ed25519
  verification; pop_ratio = capkit_pop_us / (capkit_warm_us + ed25519_verify_us).

Prints one JSON object (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from typing import Callable

from pymacaroons import Macaroon
from pymacaroons import Verifier as PyVerifier

import capkit
from capkit import AgentKey, Invocation, Keyring, Proof, Verifier, mint
from capkit.caveats import Eq, Expires, Holder, Max, OneOf, Tools
from capkit.compat.pymacaroons import satisfier

from _report import emit

NOW = 1796083200
GOALS = {"cold_speedup": 2.0, "warm_speedup": 5.0}
MAX_POP_RATIO = 1.3


def grant(keyring: Keyring, token_id: bytes):
    token = mint(keyring, Tools("bank.transfer"), OneOf("recipient", ["landlord", "plumber"]),
                 Max("amount", 1250), location="bank", token_id=token_id)
    token = token.attenuate(Eq("currency", "USD"), Expires(NOW + 3600))
    return token.attenuate(Max("amount", 50))


def three_hop_token(keyring: Keyring):
    """The same grant, bound to a planner and delegated three times; returns the token and the last holder."""
    agents = [AgentKey.from_seed(bytes([i]) * 32) for i in range(1, 5)]
    token = mint(keyring, Holder(agents[0].public_key), Tools("bank.transfer"),
                 OneOf("recipient", ["landlord", "plumber"]), Max("amount", 1250), location="bank")
    token = token.attenuate(Eq("currency", "USD"), Expires(NOW + 3600))
    for parent, child in zip(agents, agents[1:]):
        token = token.delegate(parent, child.public_key)
    return token.attenuate(Max("amount", 50)), agents[-1]


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


def run(iterations: int) -> dict:
    keyring = Keyring.generate()
    invocation = Invocation("bank.transfer", {"recipient": "landlord", "amount": 20, "currency": "USD"}, at=NOW)
    texts = [grant(keyring, i.to_bytes(16, "big")).serialize() for i in range(iterations)]
    verifier = Verifier(keyring, location="bank", cache_size=iterations + 1, allow_bearer=True)
    assert verifier.authorize(texts[0], invocation).allowed
    assert len(capkit.Token.parse(texts[0]).caveats) == 6

    gc.collect()
    gc.disable()
    try:
        cold_verifier = Verifier(keyring, location="bank", cache_size=iterations + 1, allow_bearer=True)
        cold_verifier.authorize(texts[0], invocation)  # warm the location-key memo, not the chain cache
        pending = iter(texts[1:] + [grant(keyring, b"\xff" * 16).serialize()])
        cold = timed(lambda: cold_verifier.authorize(next(pending), invocation), iterations)

        warm_text = texts[0]
        warm = timed(lambda: verifier.authorize(warm_text, invocation), iterations)

        root_key = keyring.root_key(keyring.active_key_id, "bank")
        body = warm_text[len("capkit_"):]

        def pymacaroons_verify() -> bool:
            macaroon = Macaroon.deserialize(body)
            py_verifier = PyVerifier()
            py_verifier.satisfy_general(satisfier(invocation, now=NOW))
            return py_verifier.verify(macaroon, root_key)

        assert pymacaroons_verify()
        pym = timed(pymacaroons_verify, iterations)

        # Holder binding: a fresh proof for every call, on a warm 3-hop token.
        pop_verifier = Verifier(keyring, location="bank", clock=lambda: NOW)
        pop_token, holder = three_hop_token(keyring)
        pop_text = pop_token.serialize()
        proofs = iter([Proof.create(holder, pop_token, invocation, at=NOW, nonce=i.to_bytes(16, "big")).serialize()
                       for i in range(iterations + 1)])
        assert pop_verifier.authorize(pop_text, invocation, next(proofs)).allowed  # warm the chain cache
        pop = timed(lambda: pop_verifier.authorize(pop_text, invocation, next(proofs)), iterations)

        message = b"m" * 137
        signature = holder.sign(message)
        public = holder.public_key
        ed25519 = timed(lambda: public.verify(signature, message), iterations)
    finally:
        gc.enable()

    result = {
        "benchmark": "verify",
        "caveats": 6,
        "attenuations": 2,
        "iterations": iterations,
        "capkit_cold_us": median_us(cold),
        "capkit_warm_us": median_us(warm),
        "pymacaroons_us": median_us(pym),
    }
    result["cold_speedup"] = round(result["pymacaroons_us"] / result["capkit_cold_us"], 2)
    result["warm_speedup"] = round(result["pymacaroons_us"] / result["capkit_warm_us"], 2)
    result["capkit_pop_us"] = median_us(pop)
    result["delegation_hops"] = 3
    result["ed25519_verify_us"] = median_us(ed25519)
    result["pop_ratio"] = round(result["capkit_pop_us"] / (result["capkit_warm_us"] + result["ed25519_verify_us"]), 3)
    result["goals"] = {**GOALS, "pop_ratio_at_most": MAX_POP_RATIO}
    result["goals_met"] = {**{k: result[k] >= v for k, v in GOALS.items()}, "pop_ratio": result["pop_ratio"] <= MAX_POP_RATIO}
    result["python"] = platform.python_version()
    result["machine"] = platform.machine()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    result = run(args.iterations)
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
