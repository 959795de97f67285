#!/usr/bin/env python3
"""Benchmark: the slowest ``authorize`` we can construct within the default limits.

Each scenario is an input an attacker (or a hijacked holder) controls: the
token may carry up to 64 caveats in 8,192 bytes, appended without any key;
the call may carry 2^20 characters in 10,000 values. Every scenario is timed
as the worst of several runs, on a verifier that has not seen the token
(cold) unless the scenario says otherwise, and its decision codes are shown.
The goal (issue 10) is at most 20 ms per ``authorize`` for every scenario.

Scenarios:

* glob_automaton: a holder with a valid key appends as many adversarial globs
  as fit (patterns that keep the most automaton states alive) and sends values
  as long as one pattern caveat examines; the work limit stops the scan;
* glob_list: the same with a list argument whose every element matches;
* thief_globs: the same token and values without the holder's key: only the
  proof is checked;
* paths_unicode: path_under caveats and long non-ASCII paths (NFKC checks);
* domains_long: domain caveats and URLs as long as allowed;
* prefixes: prefix caveats and long values with dots (hazard checks);
* delegations_cold: as many signed delegations as fit, first sight (one
  Ed25519 check per delegation);
* big_arguments: a holder-bound call with 10,000 argument values (validation
  and the invocation digest the proof signs);
* one_of_sets: one_of caveats with 256 members each and a list of long values.

Prints one JSON object (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import emit  # noqa: E402

import capkit  # noqa: E402
from capkit import AgentKey, Invocation, Keyring, Proof, Token, Verifier, mint  # noqa: E402
from capkit.caveats import Domain, Glob, Holder, OneOf, PathUnder, Prefix, Tools  # noqa: E402
from capkit.errors import TokenTooLarge  # noqa: E402
from capkit.core.limits import DEFAULT_LIMITS  # noqa: E402

NOW = 1796083200
GOAL_MS = 20.0
KEYRING = Keyring.from_secret(bytes(range(32)), key_id="k1")
HOLDER = AgentKey.from_seed(b"\x02" * 32)
THIEF = AgentKey.from_seed(b"\xee" * 32)


def fill(token: Token, make: Callable[[int], Any]) -> Token:
    """Append caveats from ``make(i)`` until the token is full (size or count)."""
    i = 0
    while True:
        try:
            token = token.attenuate(make(i))
        except TokenTooLarge:
            return token
        i += 1


def base() -> Token:
    return mint(KEYRING, Holder(HOLDER.public_key), Tools("x"), location="bank")


def adversarial_glob(i: int) -> Glob:
    # The value matches the pattern's literal ends, so the automaton runs over all of it; '*a' runs keep a
    # state alive at every position and '?' runs make each step shift a wide set of them.
    return Glob("note", "*a" * 40 + "?" * 40 + "*" + "a" * (i % 7) + "*b")


def timed(verifier_factory: Callable[[], Verifier], token: Any, invocation: Invocation, key: AgentKey | None,
          runs: int) -> dict[str, Any]:
    worst, codes = 0.0, ()
    for _ in range(runs):
        verifier = verifier_factory()
        proof = None if key is None else Proof.create(key, token, invocation, at=NOW)
        started = time.perf_counter()
        decision = verifier.authorize(token, invocation, proof)
        elapsed = (time.perf_counter() - started) * 1000
        worst, codes = max(worst, elapsed), decision.codes
    return {"worst_ms": round(worst, 3), "codes": sorted(set(codes))}


def scenarios() -> dict[str, tuple[Token, Invocation, AgentKey | None]]:
    chars = DEFAULT_LIMITS.max_match_chars
    globs = fill(base(), adversarial_glob)
    long_a = "a" * (chars - 1) + "b"
    out: dict[str, tuple[Token, Invocation, AgentKey | None]] = {
        "glob_automaton": (globs, Invocation("x", {"note": long_a}, at=NOW), HOLDER),
        "glob_list": (fill(base(), lambda i: Glob("note", "*a*a*a*a*a*b" if i % 2 else "**a**a**")),
                      Invocation("x", {"note": ["ab" * 2000] * 200}, at=NOW), HOLDER),
        "thief_globs": (globs, Invocation("x", {"note": long_a}, at=NOW), THIEF),
        "paths_unicode": (fill(base(), lambda i: PathUnder("path", f"/srv/é{i}")),
                          Invocation("x", {"path": ["/srv/é0/" + "ü" * (chars - 10)] * 8}, at=NOW), HOLDER),
        "domains_long": (fill(base(), lambda i: Domain("url", f"d{i}.example.com", kind="url")),
                         Invocation("x", {"url": ["https://a." + "b" * 60 + ".d0.example.com/" + "p" * (chars - 100)]
                                          * 8}, at=NOW), HOLDER),
        "prefixes": (fill(base(), lambda i: Prefix("ref", "/srv/docs/")),
                     Invocation("x", {"ref": ["/srv/docs/" + "a." * ((chars - 20) // 2)] * 8}, at=NOW), HOLDER),
        "big_arguments": (base(), Invocation("x", {f"a{i}": [j for j in range(9)] for i in range(1000)}, at=NOW),
                          HOLDER),
        "one_of_sets": (fill(base(), lambda i: OneOf("to", [f"u{j}-{i}" for j in range(200)])),
                        Invocation("x", {"to": ["u1-0"] * 9000}, at=NOW), HOLDER),
    }
    chain, holder, hops = base(), HOLDER, 0
    while True:
        nxt = AgentKey.from_seed(bytes([hops + 10]) * 32)
        try:
            chain = chain.delegate(holder, nxt.public_key)
        except (TokenTooLarge, capkit.CapkitError):
            break
        holder, hops = nxt, hops + 1
    out["delegations_cold"] = (chain, Invocation("x", {}, at=NOW), holder)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    factory = lambda: Verifier(KEYRING, location="bank", clock=lambda: NOW)  # noqa: E731
    results = {}
    for name, (token, invocation, key) in scenarios().items():
        text = token.serialize()
        entry = timed(factory, text, invocation, key, args.runs)
        entry["token_bytes"] = len(token.to_bytes())
        entry["caveats"] = len(token.caveats)
        results[name] = entry
    worst = max(results.values(), key=lambda r: r["worst_ms"])
    emit({
        "benchmark": "worst_case",
        "python": platform.python_version(),
        "capkit": capkit.__version__,
        "limits": {"max_token_bytes": DEFAULT_LIMITS.max_token_bytes, "max_caveats": DEFAULT_LIMITS.max_caveats,
                   "max_match_chars": DEFAULT_LIMITS.max_match_chars,
                   "max_match_work": DEFAULT_LIMITS.max_match_work, "max_arg_chars": DEFAULT_LIMITS.max_arg_chars},
        "scenarios": results,
        "worst_ms": worst["worst_ms"],
        "goal_ms": GOAL_MS,
        "goal_met": worst["worst_ms"] <= GOAL_MS,
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
