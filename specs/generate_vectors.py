#!/usr/bin/env python3
"""Generate specs/vectors/*.json, the conformance vectors (core.json, holder.json).

Run from the repository root: ``python specs/generate_vectors.py``. The output
is deterministic (fixed keys, token ids and times), so CI regenerates it and
fails on any drift from the checked-in file (tests/test_vectors.py).
Each vector states the verifier's keys and options, the token text, one
invocation, the time, the proof (if any), and the expected outcome: allowed, and on denial the reason codes and the
1-based caveat positions they come from (messages are not normative).
"""

from __future__ import annotations

import contextlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from capkit import Invocation, Keyring, Verifier, mint
from capkit.caveats import (
    Approval,
    ArgsOnly,
    DateWindow,
    Audience,
    Delegate,
    Holder,
    MaxDepth,
    Domain,
    Eq,
    Expires,
    Glob,
    Max,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
)
from capkit.core.holder import AgentKey
from capkit.core.messages import delegation_message
from capkit.core.proof import Proof
from capkit.core.token import binary
from capkit.core import chain
from capkit.core.token.identifier import Identifier

OUT = Path(__file__).parent / "vectors" / "core.json"
NOW = 1796083200  # 2026-12-01T00:00:00Z
SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(100, 132))
KEYRING = Keyring.from_secret(SECRET, key_id="k1")
KEYS = [{"key_id": "k1", "secret": SECRET.hex(), "location": None}]


#: The intended outcome of every vector, stated independently of the implementation:
#: the generator refuses to write a vector on which capkit disagrees.
INTENDED: dict[str, tuple[str, ...]] = {
    "args-only-allowed": (),
    "args-only-extra-argument": ("arg_unexpected",),
    "args-only-other-tool": (),
    "date-window-date-time": (),
    "date-window-naive-in-its-zone": (),
    "date-window-other-day": ("arg_out_of_range",),
    "date-window-whole-day-must-fit": ("arg_out_of_range",),
    "date-window-not-a-date": ("arg_invalid",),
    "date-window-list-element": ("arg_out_of_range",),
    "rent-allowed": (),
    "rent-every-failure": ('tool_not_granted', 'arg_not_allowed', 'arg_out_of_range', 'expired'),
    "rent-other-recipient": ('arg_not_allowed',),
    "rent-larger-amount": ('arg_out_of_range',),
    "rent-other-tool": ('tool_not_granted',),
    "rent-after-expiry": ('expired',),
    "rent-missing-amount": ('arg_missing',),
    "attenuated-allowed": (),
    "attenuated-denied": ('arg_out_of_range',),
    "attenuated-cannot-widen": ('arg_out_of_range',),
    "tools-glob": (),
    "tools-glob-dots": (),
    "tools-exact": (),
    "tools-not-granted": ('tool_not_granted',),
    "tools-prefix-confusion": ('tool_not_granted',),
    "tools-star-stops-at-slash": ('tool_not_granted',),
    "tools-globstar-crosses-slash": (),
    "eq-allowed": (),
    "eq-number-spellings": (),
    "eq-number-text": ('arg_invalid',),
    "eq-case-sensitive": ('arg_not_allowed',),
    "eq-bool-is-not-number": ('arg_invalid', 'arg_not_allowed'),
    "one-of-allowed": (),
    "one-of-list-all-allowed": (),
    "one-of-list-one-denied": ('arg_not_allowed',),
    "one-of-empty-list": ('arg_not_allowed',),
    "one-of-number-denied": ('arg_not_allowed',),
    "max-float-exact": (),
    "amount-text-refused": ('arg_invalid', 'arg_invalid', 'arg_invalid'),
    "max-exceeded": ('arg_out_of_range',),
    "min-below": ('arg_out_of_range',),
    "range-outside": ('arg_out_of_range',),
    "amount-bool": ('arg_invalid', 'arg_invalid'),
    "amount-exponent": ('arg_invalid', 'arg_invalid'),
    "amount-underscore": ('arg_invalid', 'arg_invalid'),
    "amount-non-ascii-digits": ('arg_invalid', 'arg_invalid'),
    "amount-list": ('arg_invalid', 'arg_invalid'),
    "prefix-and-glob-allowed": (),
    "prefix-denied": ('arg_not_allowed',),
    "glob-denied": ('arg_not_allowed',),
    "glob-star-one-segment": (),
    "glob-star-not-deeper": ('arg_not_allowed',),
    "glob-globstar-any-depth": (),
    "glob-globstar-zero-segments": (),
    "glob-dotdot-refused": ('arg_not_allowed',),
    "glob-dot-refused": ('arg_not_allowed',),
    "prefix-dotdot-refused": ('arg_not_allowed',),
    "prefix-percent-dotdot-refused": ('arg_not_allowed',),
    "prefix-backslash-refused": ('arg_not_allowed',),
    "text-wrong-type": ('arg_invalid',),
    "path-under-allowed": (),
    "path-under-normalized": (),
    "path-under-dotdot": ('arg_not_allowed',),
    "path-under-sibling": ('arg_not_allowed',),
    "path-under-relative": ('arg_not_allowed',),
    "path-under-backslash": ('arg_not_allowed',),
    "path-under-confusable": ('arg_not_allowed',),
    "domain-email": (),
    "domain-subdomain": (),
    "domain-lookalike": ('arg_not_allowed',),
    "domain-suffix-trick": ('arg_not_allowed',),
    "domain-url-userinfo": ('arg_invalid',),
    "domain-url-allowed": (),
    "domain-url-path-at-is-example": (),
    "domain-email-reads-url-as-invalid": ('arg_invalid',),
    "domain-email-slash-local-part": ('arg_invalid',),
    "domain-url-needs-scheme": ('arg_invalid',),
    "domain-url-ip-literal": ('arg_invalid',),
    "domain-host-allowed": (),
    "domain-host-refuses-email": ('arg_invalid',),
    "domain-list-smuggled": ('arg_invalid',),
    "domain-homograph": ('arg_not_allowed',),
    "domain-recipient-list": ('arg_not_allowed',),
    "domain-idna": (),
    "time-window-allowed": (),
    "not-yet-valid": ('not_yet_valid',),
    "wrong-audience": ('wrong_audience',),
    "no-audience": ('wrong_audience',),
    "unrestricted": (),
    "bad-invocation": ('bad_invocation',),
    "unknown-key": ('unknown_key',),
    "wrong-root-key": ('bad_signature',),
    "location-key-only": ('wrong_location',),
    "wrong-location": ('wrong_location',),
    "location-key-allowed": (),
    "caveat-removed": ('bad_signature',),
    "caveats-reordered": ('bad_signature',),
    "caveat-replaced": ('bad_signature',),
    "location-changed": ('bad_signature',),
    "token-id-changed": ('bad_signature',),
    "signature-zeroed": ('bad_signature',),
    "unknown-caveat-kind": ('unknown_caveat',),
    "text-caveat": ('unknown_caveat',),
    "non-canonical-caveat": ('malformed_caveat',),
    "malformed-caveat": ('malformed_caveat',),
    "missing-prefix": ('malformed_token',),
    "padded-base64": ('malformed_token',),
    "truncated": ('malformed_token',),
    "trailing-bytes": ('malformed_token',),
    "max-caveats": (),
    "too-many-caveats": ('too_large',),
    "scoped-applies": ('arg_out_of_range',),
    "scoped-other-tool": (),
    "scoped-glob-scope": ('arg_missing',),
}


class Builder:
    def __init__(self) -> None:
        self.vectors: list[dict[str, Any]] = []
        self.counter = 0

    def token(self, *caveats, location: str = "bank", keyring: Keyring = KEYRING):
        self.counter += 1
        return mint(keyring, *caveats, location=location, token_id=self.counter.to_bytes(16, "big"),
                    unrestricted=not caveats)

    def add(self, name: str, description: str, token: "Any", tool: str, args: dict | None = None, *,
            audience: str | None = None, at: int = NOW, keys: list | None = None, allow_bearer: bool = True,
            proof: "Any" = None, intended: dict[str, tuple[str, ...]] | None = None,
            locations: tuple[str, ...] = ("bank",), discharges: "list[str] | None" = None,
            proof_modes: tuple[str, ...] = ("signature",), proof_key_seed: str | None = None) -> None:
        keys = KEYS if keys is None else keys
        text = token if isinstance(token, str) else token.serialize()
        verifier_ring = _keyring(keys)
        invocation = Invocation(tool, args or {}, audience, at)
        proof_text = None
        if proof is not None:
            proof_text = proof if isinstance(proof, str) else proof(invocation)
        proof_key = None if proof_key_seed is None else AgentKey.from_seed(bytes.fromhex(proof_key_seed))
        decision = Verifier(verifier_ring, location=locations, allow_bearer=allow_bearer, proof_modes=proof_modes,
                            proof_key=proof_key).authorize(text, invocation, proof_text, discharges or ())
        expected_codes = (INTENDED if intended is None else intended)[name]
        if decision.codes != expected_codes:
            raise SystemExit(f"vector {name}: capkit says {decision.codes}, intended {expected_codes}")
        root_key = None
        if not isinstance(token, str):
            try:
                root_key = KEYRING.root_key(token.key_id, token.location).hex()
            except Exception:
                root_key = None
        self.vectors.append({
            "name": name,
            "description": description,
            "verifier_keys": keys,
            "verifier_locations": list(locations),
            "allow_bearer": allow_bearer,
            "proof_window": 60,
            "root_key": root_key,
            "token": text,
            "invocation": {"tool": tool, "args": _jsonable(args or {}), "audience": audience},
            "at": at,
            "proof": proof_text,
            **({"discharges": discharges} if discharges else {}),
            **({"proof_modes": list(proof_modes), "verifier_proof_key_seed": proof_key_seed}
               if proof_key_seed is not None or proof_modes != ("signature",) else {}),
            "expected": {
                "allowed": decision.allowed,
                "codes": list(decision.codes),
                "caveats": [r.caveat_index for r in decision.reasons],
            },
        })


def _keyring(keys: list[dict]) -> Keyring:
    from capkit.core.keys import Keyring as K

    ring = None
    for entry in keys:
        one = K.from_secret(bytes.fromhex(entry["secret"]), key_id=entry["key_id"], location=entry["location"])
        ring = one if ring is None else K((*ring._keys.values(), *one._keys.values()), ring.active_key_id)
    assert ring is not None
    return ring


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        raise TypeError("vectors carry JSON arguments only")
    return value


def _raw(token, caveats=None, signature=None, location=None, identifier=None) -> str:
    import capkit.core.b64 as b64

    raw = binary.RawMacaroon(
        (location or token.location).encode(),
        identifier if identifier is not None else token.identifier.encode(),
        tuple(token.encoded_caveats if caveats is None else caveats),
        token.signature if signature is None else signature,
    )
    return "capkit_" + b64.encode(binary.encode(raw))


def _appended(token, extra: bytes) -> str:
    return _raw(token, list(token.encoded_caveats) + [extra], chain.extend(token.signature, [extra]))


def build() -> list[dict[str, Any]]:
    b = Builder()
    rent = b.token(Tools("bank.transfer"), OneOf("recipient", ["landlord"]), Max("amount", 1250),
                   Eq("currency", "USD"), Expires(NOW + 86400))
    ok = {"recipient": "landlord", "amount": 1250, "currency": "USD"}
    b.add("rent-allowed", "the granted call", rent, "bank.transfer", ok)
    b.add("rent-every-failure", "every failed check is reported, in caveat order", rent, "bank.wire",
          {"recipient": "mallory", "amount": 5000, "currency": "USD"}, at=NOW + 86400)
    b.add("rent-other-recipient", "prompt-injected recipient", rent, "bank.transfer", {**ok, "recipient": "mallory"})
    b.add("rent-larger-amount", "prompt-injected amount", rent, "bank.transfer", {**ok, "amount": 1250.01})
    b.add("rent-other-tool", "prompt-injected tool", rent, "bank.delete_account", ok)
    b.add("rent-after-expiry", "expiry is exclusive", rent, "bank.transfer", ok, at=NOW + 86400)
    b.add("rent-missing-amount", "a constrained argument the call lacks denies", rent, "bank.transfer",
          {"recipient": "landlord", "currency": "USD"})
    narrower = rent.attenuate(Max("amount", 50))
    b.add("attenuated-allowed", "an attenuated token still allows what both allow", narrower, "bank.transfer", {**ok, "amount": 50})
    b.add("attenuated-denied", "the narrower bound applies", narrower, "bank.transfer", {**ok, "amount": 500})
    b.add("attenuated-cannot-widen", "a wider bound added later does not widen", rent.attenuate(Max("amount", 10**6)),
          "bank.transfer", {**ok, "amount": 5000})

    tools = b.token(Tools("bank.*", "mail.send"))
    b.add("tools-glob", "'*' matches any run of characters but '/'", tools, "bank.balance")
    b.add("tools-glob-dots", "'*' also matches dots", tools, "bank.accounts.list")
    slashed = b.token(Tools("files/*", "admin/**"))
    b.add("tools-star-stops-at-slash", "'*' does not cross '/'", slashed, "files/a/b")
    b.add("tools-globstar-crosses-slash", "'**' does", slashed, "admin/users/delete")
    b.add("tools-exact", "exact names match exactly", tools, "mail.send")
    b.add("tools-not-granted", "a different tool", tools, "mail.delete")
    b.add("tools-prefix-confusion", "bankx is not bank.", tools, "bankx.transfer")

    eq = b.token(Eq("currency", "USD"), Eq("count", 3), Eq("dry_run", True))
    b.add("eq-allowed", "text, number and boolean equality", eq, "x", {"currency": "USD", "count": 3, "dry_run": True})
    b.add("eq-number-spellings", "3 and 3.0 are the same number", eq, "x", {"currency": "USD", "count": 3.0, "dry_run": True})
    b.add("eq-number-text", "the text \"3\" is not the number 3", eq, "x", {"currency": "USD", "count": "3", "dry_run": True})
    b.add("eq-case-sensitive", "text equality is exact", eq, "x", {"currency": "usd", "count": 3, "dry_run": True})
    b.add("eq-bool-is-not-number", "true is not 1", eq, "x", {"currency": "USD", "count": True, "dry_run": 1})

    one_of = b.token(OneOf("recipient", ["alice", "bob"]), OneOf("account", [1001, 1002]))
    b.add("one-of-allowed", "membership", one_of, "x", {"recipient": "bob", "account": 1002})
    b.add("one-of-list-all-allowed", "an array argument: every element must be allowed", one_of, "x",
          {"recipient": ["alice", "bob"], "account": 1001})
    b.add("one-of-list-one-denied", "one bad element denies", one_of, "x", {"recipient": ["alice", "mallory"], "account": 1001})
    b.add("one-of-empty-list", "an empty array is denied", one_of, "x", {"recipient": [], "account": 1001})
    b.add("one-of-number-denied", "numeric membership", one_of, "x", {"recipient": "bob", "account": 1003})

    bounds = b.token(Max("amount", Decimal("98.7")), Min("amount", "0.01"), Range("fee", 0, 5))
    b.add("max-float-exact", "the JSON number 98.7 equals the bound 98.7", bounds, "x", {"amount": 98.7, "fee": 0})
    b.add("amount-text-refused", "text is never an amount, however it looks", bounds, "x", {"amount": "98.70", "fee": "5"})
    b.add("max-exceeded", "just above the bound", bounds, "x", {"amount": 98.71, "fee": 0})
    b.add("min-below", "below the minimum", bounds, "x", {"amount": 0, "fee": 0})
    b.add("range-outside", "outside a range", bounds, "x", {"amount": 1, "fee": 5.5})
    b.add("amount-bool", "a boolean is never an amount", bounds, "x", {"amount": True, "fee": 0})
    b.add("amount-exponent", "exponent strings are refused", bounds, "x", {"amount": "1e1", "fee": 0})
    b.add("amount-underscore", "underscores are refused", bounds, "x", {"amount": "1_0", "fee": 0})
    b.add("amount-non-ascii-digits", "non-ASCII digits are refused", bounds, "x", {"amount": "٥", "fee": 0})
    b.add("amount-list", "an array is not an amount", bounds, "x", {"amount": [1], "fee": 0})

    text = b.token(Prefix("ref", "INV-"), Glob("to", "*@example.com"))
    b.add("prefix-and-glob-allowed", "prefix and glob", text, "x", {"ref": "INV-7", "to": "a@example.com"})
    b.add("prefix-denied", "prefix is exact", text, "x", {"ref": "inv-7", "to": "a@example.com"})
    b.add("glob-denied", "a glob anchored at both ends", text, "x", {"ref": "INV-7", "to": "a@example.com.evil"})
    b.add("text-wrong-type", "a number where text is constrained", text, "x", {"ref": 7, "to": "a@example.com"})
    docs = b.token(Glob("path", "/srv/docs/*.md"), Glob("tree", "/srv/docs/**/*.md"), Prefix("ref", "/srv/docs/"))
    ok_docs = {"path": "/srv/docs/a.md", "tree": "/srv/docs/a/b/c.md", "ref": "/srv/docs/notes.txt"}
    b.add("glob-star-one-segment", "'*' matches within one path segment", docs, "files.read", ok_docs)
    b.add("glob-star-not-deeper", "'*' does not match across '/'", docs, "files.read", {**ok_docs, "path": "/srv/docs/a/b.md"})
    b.add("glob-globstar-any-depth", "'**' matches any depth", docs, "files.read", ok_docs)
    b.add("glob-globstar-zero-segments", "'/**/' also matches no directory", docs, "files.read",
          {**ok_docs, "tree": "/srv/docs/a.md"})
    b.add("glob-dotdot-refused", "a '..' segment is refused even where the pattern matches", docs, "files.read",
          {**ok_docs, "tree": "/srv/docs/../../etc/passwd.md"})
    b.add("glob-dot-refused", "a '.' segment is refused", docs, "files.read", {**ok_docs, "tree": "/srv/docs/./a.md"})
    b.add("prefix-dotdot-refused", "starting with the prefix is not being under it", docs, "files.read",
          {**ok_docs, "ref": "/srv/docs/../../etc/passwd"})
    b.add("prefix-percent-dotdot-refused", "nor after percent-decoding", docs, "files.read",
          {**ok_docs, "ref": "/srv/docs/%2e%2e/secrets"})
    b.add("prefix-backslash-refused", "backslashes are refused", docs, "files.read", {**ok_docs, "ref": "/srv/docs/a\\..\\b"})

    paths = b.token(PathUnder("path", "/srv/docs"))
    b.add("path-under-allowed", "inside the directory", paths, "files.read", {"path": "/srv/docs/2026/report.pdf"})
    b.add("path-under-normalized", "duplicate slashes and '.' are normalized", paths, "files.read", {"path": "/srv//docs/./a"})
    b.add("path-under-dotdot", "'..' is refused outright", paths, "files.read", {"path": "/srv/docs/../secrets"})
    b.add("path-under-sibling", "a sibling with the same prefix", paths, "files.read", {"path": "/srv/docsx/a"})
    b.add("path-under-relative", "a relative path is not under an absolute base", paths, "files.read", {"path": "srv/docs/a"})
    b.add("path-under-backslash", "backslashes are refused", paths, "files.read", {"path": "/srv/docs\\..\\secrets"})
    b.add("path-under-confusable", "a fullwidth solidus is refused", paths, "files.read", {"path": "/srv/docs\uff0f..\uff0fx"})

    domain = b.token(Domain("to", "example.com", kind="email"))
    b.add("domain-email", "an address at the domain", domain, "mail.send", {"to": "alice@example.com"})
    b.add("domain-subdomain", "an address at a subdomain", domain, "mail.send", {"to": "alice@mail.EXAMPLE.com."})
    b.add("domain-lookalike", "evil-example.com is not example.com", domain, "mail.send", {"to": "alice@evil-example.com"})
    b.add("domain-suffix-trick", "example.com.evil.com is not example.com", domain, "mail.send", {"to": "a@example.com.evil.com"})
    urls = b.token(Domain("url", "example.com", kind="url"))
    b.add("domain-url-userinfo", "a URL with user information is refused (parsers disagree on its host)", urls,
          "http.get", {"url": "https://example.com@evil.com/"})
    b.add("domain-url-allowed", "a URL at the domain", urls, "http.get", {"url": "https://api.example.com/v1?x=1"})
    b.add("domain-url-path-at-is-example", "as a URL, https://example.com/@evil.com is at example.com", urls,
          "http.get", {"url": "https://example.com/@evil.com"})
    b.add("domain-email-reads-url-as-invalid", "as an email address the same value is refused", domain, "mail.send",
          {"to": "https://example.com/@evil.com"})
    b.add("domain-email-slash-local-part", "evil.com/@example.com is no plain address", domain, "mail.send",
          {"to": "evil.com/@example.com"})
    b.add("domain-url-needs-scheme", "and as a URL it has no scheme", urls, "http.get", {"url": "evil.com/@example.com"})
    b.add("domain-url-ip-literal", "an IP address is never a domain", urls, "http.get",
          {"url": "http://127.0.0.1:8080/admin/shutdown"})
    hosts = b.token(Domain("host", "example.com", kind="host"))
    b.add("domain-host-allowed", "a host name at the domain", hosts, "dns.lookup", {"host": "www.example.com"})
    b.add("domain-host-refuses-email", "an address is not a host name", hosts, "dns.lookup", {"host": "a@example.com"})
    b.add("domain-list-smuggled", "two addresses in one string are refused", domain, "mail.send",
          {"to": "a@example.com,b@evil.com"})
    b.add("domain-homograph", "a Cyrillic look-alike is another domain", domain, "mail.send", {"to": "a@exаmple.com"})
    b.add("domain-recipient-list", "every address in an array must be at the domain", domain, "mail.send",
          {"to": ["a@example.com", "b@evil.com"]})
    idn = b.token(Domain("to", "bücher.example", kind="email"))
    b.add("domain-idna", "Unicode and A-label spellings are the same domain", idn, "mail.send", {"to": "x@xn--bcher-kva.example"})

    timed = b.token(NotBefore(NOW), Expires(NOW + 60), Audience("bank-api"))
    b.add("time-window-allowed", "inside [not_before, expires)", timed, "x", {}, audience="bank-api")
    b.add("not-yet-valid", "before not_before", timed, "x", {}, audience="bank-api", at=NOW - 1)
    b.add("wrong-audience", "addressed to another backend", timed, "x", {}, audience="mail-api")
    b.add("no-audience", "a call naming no audience", timed, "x", {})

    unrestricted = b.token()
    b.add("unrestricted", "a token without caveats allows every call at its location", unrestricted, "anything")
    b.add("bad-invocation", "a tool name outside the grammar", unrestricted, "bad tool name")

    # ---- the token itself
    b.add("unknown-key", "the verifier holds no key k2", b.token(Tools("x"), keyring=Keyring.from_secret(SECRET, key_id="k2")),
          "x")
    b.add("wrong-root-key", "minted under another secret with the same key id",
          b.token(Tools("x"), keyring=Keyring.from_secret(OTHER_SECRET, key_id="k1")), "x")
    b.add("location-key-only", "a verifier holding only the bank location key serves only bank",
          b.token(Tools("x"), location="mail"), "x",
          keys=[{"key_id": "k1", "secret": KEYRING.root_key("k1", "bank").hex(), "location": "bank"}])
    b.add("wrong-location", "a master key verifies every location; the verifier serves only bank",
          b.token(Tools("*"), location="sandbox"), "bank.transfer")
    b.add("location-key-allowed", "the bank location key verifies bank tokens", b.token(Tools("x")), "x",
          keys=[{"key_id": "k1", "secret": KEYRING.root_key("k1", "bank").hex(), "location": "bank"}])
    base = b.token(Tools("x"), Max("amount", 5))
    cav = list(base.encoded_caveats)
    b.add("caveat-removed", "dropping a caveat breaks the chain", _raw(base, cav[:1]), "x", {"amount": 50})
    b.add("caveats-reordered", "reordering breaks the chain", _raw(base, cav[::-1]), "x", {"amount": 1})
    b.add("caveat-replaced", "replacing a caveat breaks the chain", _raw(base, [cav[0], Max("amount", 500).encode()]), "x", {"amount": 50})
    b.add("location-changed", "the location selects the root key", _raw(base, location="mail"), "x", {"amount": 1},
          locations=("bank", "mail"))
    b.add("token-id-changed", "the identifier is signed", _raw(base, identifier=Identifier("k1", "A" * 22).encode()), "x", {"amount": 1})
    b.add("signature-zeroed", "a zero signature", _raw(base, signature=bytes(32)), "x", {"amount": 1})
    b.add("unknown-caveat-kind", "a holder appended a caveat of an unknown kind", _appended(base, b'{"k":"sudo"}'), "x", {"amount": 1})
    b.add("text-caveat", "a classic macaroon text caveat is unknown", _appended(base, b"time < 2030-01-01T00:00:00Z"), "x", {"amount": 1})
    b.add("non-canonical-caveat", "whitespace makes a caveat non-canonical", _appended(base, b'{"arg":"amount", "k":"max","max":"5"}'),
          "x", {"amount": 1})
    b.add("malformed-caveat", "a max caveat with a float bound", _appended(base, b'{"arg":"amount","k":"max","max":"5.0"}'),
          "x", {"amount": 1})
    text_form = base.serialize()
    b.add("missing-prefix", "the text form starts with capkit_", text_form[len("capkit_"):], "x")
    b.add("padded-base64", "padding is not allowed", text_form + "==", "x")
    b.add("truncated", "a truncated token", text_form[:-10], "x")
    b.add("trailing-bytes", "bytes after the signature", text_form + "AAAA", "x")
    scoped = b.token(Tools("bank.*"), Max("amount", 100, tool="bank.transfer"), Eq("currency", "USD", tool="bank.w*"))
    b.add("scoped-applies", "a caveat scoped with for applies to calls of that tool", scoped, "bank.transfer",
          {"amount": 500})
    b.add("scoped-other-tool", "and not to calls of other tools", scoped, "bank.balance")
    b.add("scoped-glob-scope", "a scope may be a glob", scoped, "bank.wire", {"amount": 500})
    many = b.token(*[Tools("x")] * 64)
    b.add("max-caveats", "64 caveats is the limit", many, "x")
    b.add("too-many-caveats", "65 caveats is too many", _appended(many, Tools("x").encode()), "x")
    shaped = b.token(Tools("mail.send", "cal.create"), ArgsOnly("to", "subject", "body", tool="mail.send"),
                     DateWindow("start", 1715810400, 1715983199, tz=120, tool="cal.create"))
    mail = {"to": "a@example.com", "subject": "hi", "body": "text"}
    b.add("args-only-allowed", "only the named arguments", shaped, "mail.send", mail)
    b.add("args-only-extra-argument", "an argument the closed list does not name", shaped, "mail.send",
          {**mail, "bcc": "evil@attacker.example"})
    b.add("args-only-other-tool", "the closed list is scoped to mail.send", shaped, "cal.create",
          {"start": "2024-05-16T10:00:00+02:00", "extra": 1})
    b.add("date-window-date-time", "a time with its zone inside the window", shaped, "cal.create",
          {"start": "2024-05-17T23:59:59+02:00"})
    b.add("date-window-naive-in-its-zone", "a time without zone, read at +02:00", shaped, "cal.create",
          {"start": "2024-05-16 00:00"})
    b.add("date-window-other-day", "an injected event on another day", shaped, "cal.create",
          {"start": "2024-05-18T09:00:00+02:00"})
    b.add("date-window-whole-day-must-fit", "a date alone is its whole day, which must fit", shaped, "cal.create",
          {"start": "2024-05-18"})
    b.add("date-window-not-a-date", "text that is not a date is refused", shaped, "cal.create",
          {"start": "next Friday"})
    b.add("date-window-list-element", "each element of a list is judged", shaped, "cal.create",
          {"start": ["2024-05-16", "2024-05-20"]})
    return b.vectors


HOLDER_INTENDED: dict[str, tuple[str, ...]] = {
    "mac-proof-allowed": (),
    "mac-proof-not-accepted": ("proof_mode_not_accepted",),
    "mac-proof-other-verifier": ("bad_proof",),
    "approval-below-threshold": (),
    "approval-required": ("approval_required",),
    "approval-allowed": (),
    "approval-other-call": ("bad_discharge",),
    "approval-unbound-discharge": ("bad_discharge",),
    "approval-expired-discharge": ("bad_discharge",),
    "third-party-discharged": (),
    "third-party-missing-discharge": ("bad_discharge",),
    "holder-proof-allowed": (),
    "bearer-refused": ("bearer_not_allowed",),
    "holder-proof-missing": ("proof_missing",),
    "holder-proof-unreadable": ("bad_proof",),
    "holder-proof-wrong-holder": ("wrong_holder",),
    "holder-proof-other-args": ("bad_proof",),
    "holder-proof-other-audience": ("bad_proof",),
    "holder-proof-stale": ("proof_stale",),
    "holder-proof-future": ("proof_stale",),
    "holder-proof-edge-of-window": (),
    "proof-failure-hides-the-grant": ("proof_missing",),
    "bad-proof-hides-the-grant": ("bad_proof",),
    "delegated-allowed": (),
    "delegated-parent-proof": ("wrong_holder",),
    "delegated-sub-agent-caveat": ("arg_out_of_range",),
    "delegation-by-thief": ("bad_delegation",),
    "delegation-other-token": ("bad_delegation",),
    "delegation-wrong-hop": ("bad_delegation",),
    "second-holder": ("bad_delegation",),
    "bearer-delegated": ("bad_delegation",),
    "three-hops-allowed": (),
    "depth-exceeded": ("depth_exceeded",),
}

PLANNER = AgentKey.from_seed(b"\x02" * 32)
PAYER = AgentKey.from_seed(b"\x03" * 32)
THIRD = AgentKey.from_seed(b"\x04" * 32)
THIEF = AgentKey.from_seed(b"\xff" * 32)


def _prover(key: AgentKey, token, at: int = NOW, nonce: int = 1):
    return lambda invocation: Proof.create(key, token, invocation, at=at, nonce=nonce.to_bytes(16, "big")).serialize()


def build_holder() -> list[dict[str, Any]]:
    b = Builder()
    b.counter = 1000
    add = b.add
    rent = {"recipient": "landlord", "amount": 1250, "currency": "USD"}
    grant = b.token(Holder(PLANNER.public_key), Tools("bank.transfer"), OneOf("recipient", ["landlord"]),
                    Max("amount", 1250), Eq("currency", "USD"), Expires(NOW + 86400))
    kw = dict(allow_bearer=False, intended=HOLDER_INTENDED)
    add("holder-proof-allowed", "the holder's fresh proof for this exact call", grant, "bank.transfer", rent,
        proof=_prover(PLANNER, grant), **kw)
    add("bearer-refused", "a verifier that does not allow bearer tokens", b.token(Tools("bank.transfer")),
        "bank.transfer", rent, **kw)
    add("holder-proof-missing", "no proof", grant, "bank.transfer", rent, **kw)
    add("holder-proof-unreadable", "not a proof", grant, "bank.transfer", rent, proof="capkit_proof_AAAA", **kw)
    add("holder-proof-wrong-holder", "a proof by another agent", grant, "bank.transfer", rent,
        proof=_prover(THIEF, grant), **kw)
    other = Invocation("bank.transfer", {**rent, "amount": 1}, None, NOW)
    add("holder-proof-other-args", "a proof made for other arguments", grant, "bank.transfer", rent,
        proof=Proof.create(PLANNER, grant, other, at=NOW, nonce=bytes(16)).serialize(), **kw)
    add("holder-proof-other-audience", "a proof made without the audience", grant, "bank.transfer", rent,
        audience="bank-api", proof=Proof.create(PLANNER, grant, Invocation("bank.transfer", rent), at=NOW,
                                                 nonce=bytes(16)).serialize(), **kw)
    add("holder-proof-stale", "61 s old", grant, "bank.transfer", rent, proof=_prover(PLANNER, grant, NOW - 61), **kw)
    add("holder-proof-future", "61 s in the future", grant, "bank.transfer", rent,
        proof=_prover(PLANNER, grant, NOW + 61), **kw)
    add("holder-proof-edge-of-window", "exactly 60 s old", grant, "bank.transfer", rent,
        proof=_prover(PLANNER, grant, NOW - 60), **kw)
    wild = {**rent, "recipient": "mallory", "amount": 5000}
    add("proof-failure-hides-the-grant", "without a valid proof only the proof failure is reported", grant,
        "bank.wire", wild, **kw)
    add("bad-proof-hides-the-grant", "a thief's proof: nothing about the grant is reported", grant, "bank.wire",
        wild, proof="capkit_proof_AAAA", **kw)
    delegated = grant.delegate(PLANNER, PAYER.public_key, Max("amount", 1250), Expires(NOW + 600))
    add("delegated-allowed", "the sub-agent's proof on the delegated token", delegated, "bank.transfer", rent,
        proof=_prover(PAYER, delegated), **kw)
    add("delegated-parent-proof", "the parent using the token it delegated away", delegated, "bank.transfer", rent,
        proof=_prover(PLANNER, delegated), **kw)
    narrower = delegated.attenuate(Max("amount", 50))
    add("delegated-sub-agent-caveat", "a caveat the sub-agent added (hop 1)", narrower, "bank.transfer", rent,
        proof=_prover(PAYER, narrower), **kw)
    forged = delegated.attenuate(Delegate(THIEF.public_key, THIEF.sign(delegation_message(
        delegated.signature, THIEF.public_key, 2))))
    add("delegation-by-thief", "a thief re-delegates the token to itself", forged, "bank.transfer", rent,
        proof=_prover(THIEF, forged), **kw)
    token_b = b.token(Holder(PLANNER.public_key), Tools("bank.*"))
    copied = token_b.attenuate(delegated.caveats[-1])
    add("delegation-other-token", "a genuine delegation signature copied from another token", copied,
        "bank.transfer", rent, proof=_prover(PAYER, copied), **kw)
    wrong_hop = grant.attenuate(Delegate(PAYER.public_key, PLANNER.sign(delegation_message(
        grant.signature, PAYER.public_key, 2))))
    add("delegation-wrong-hop", "a delegation signed for hop 2 at hop 1", wrong_hop, "bank.transfer", rent,
        proof=_prover(PAYER, wrong_hop), **kw)
    second = grant.attenuate(Holder(THIEF.public_key))
    add("second-holder", "a second Holder caveat", second, "bank.transfer", rent, proof=_prover(THIEF, second), **kw)
    bearer = b.token(Tools("bank.transfer"))
    bearer_delegated = bearer.attenuate(Delegate(PAYER.public_key, PLANNER.sign(b"x")))
    add("bearer-delegated", "a delegation of a bearer token", bearer_delegated, "bank.transfer", rent,
        proof=_prover(PAYER, bearer_delegated), **kw)
    three = grant.delegate(PLANNER, PAYER.public_key).delegate(PAYER, THIRD.public_key).delegate(
        THIRD, THIEF.public_key)
    add("three-hops-allowed", "three delegations, each signed by the holder before", three, "bank.transfer", rent,
        proof=_prover(THIEF, three), **kw)
    limited = b.token(Holder(PLANNER.public_key), MaxDepth(1), Tools("bank.transfer"))
    one = limited.delegate(PLANNER, PAYER.public_key)
    two = one.attenuate(Delegate(THIRD.public_key, PAYER.sign(delegation_message(one.signature, THIRD.public_key, 2))))
    add("depth-exceeded", "two delegations where MaxDepth(1) allows one", two, "bank.transfer", rent,
        proof=_prover(THIRD, two), **kw)
    _approval_vectors(b, kw)
    _mac_vectors(b, kw, grant, rent)
    return b.vectors


VERIFIER_PROOF_SEED = "0d" * 32


def _mac_vectors(b: "Builder", kw: dict[str, Any], grant: Any, rent: dict[str, Any]) -> None:
    """Designated-verifier proofs (SPEC §16.6): an HMAC under the key the agent and the verifier derive."""
    verifier_key = AgentKey.from_seed(bytes.fromhex(VERIFIER_PROOF_SEED))

    def mac_prover(verifier_public: Any) -> Any:
        key = PLANNER.mac_key(verifier_public, agent=True)
        return lambda call: Proof.create(PLANNER, grant, call, at=NOW, nonce=bytes(16), mac_key=key).serialize()

    both = dict(proof_modes=("signature", "mac"), proof_key_seed=VERIFIER_PROOF_SEED)
    b.add("mac-proof-allowed", "a MAC proof for the verifier whose proof key is given", grant, "bank.transfer", rent,
          proof=mac_prover(verifier_key.public_key), **both, **kw)
    b.add("mac-proof-not-accepted", "the same MAC proof at a verifier that accepts signatures only", grant,
          "bank.transfer", rent, proof=mac_prover(verifier_key.public_key), **kw)
    other = AgentKey.from_seed(bytes.fromhex("0e" * 32)).public_key
    b.add("mac-proof-other-verifier", "a MAC proof made for another verifier's proof key", grant, "bank.transfer",
          rent, proof=mac_prover(other), **both, **kw)


APPROVER = AgentKey.from_seed(bytes.fromhex("0c" * 32))
APPROVAL_ROOT = bytes(range(32))


@contextlib.contextmanager
def _fixed_vid_nonces():
    """Third-party caveats with an all-zero secretbox nonce, so the vectors are reproducible (capkit draws one)."""
    from nacl.secret import SecretBox

    from capkit.core import chain
    from capkit.core.caveats import thirdparty

    original = thirdparty._seal_vid
    thirdparty._seal_vid = lambda signature, root: bytes(
        SecretBox(signature).encrypt(chain.generator_key(root), nonce=bytes(24)))
    try:
        yield
    finally:
        thirdparty._seal_vid = original


def _fixed_approval(**scope: Any) -> Approval:
    """An approval caveat with a fixed root key and fixed sealed bytes (a verifier never opens them)."""
    caveat = object.__new__(Approval)
    caveat._init(approver=APPROVER.public_key, sealed=bytes(range(80)), **scope)
    object.__setattr__(caveat, "location", "approval")
    object.__setattr__(caveat, "_root", APPROVAL_ROOT)
    return caveat


def _approval_vectors(b: "Builder", kw: dict[str, Any]) -> None:
    """Approvals and third-party caveats (SPEC §19): discharges bound to the token, for the exact call."""
    from capkit.approvals import bind, mint_discharge
    from capkit.caveats import ThirdParty
    from capkit.core.caveats import Approved, Once
    from capkit.core.discharge import token_tail_id
    from capkit.core.invocation import invocation_digest

    payment = {"recipient": "landlord", "amount": 500}
    with _fixed_vid_nonces():
        token = b.token(Holder(PLANNER.public_key), Tools("bank.transfer"), Max("amount", 1000),
                        _fixed_approval(tool="bank.transfer", arg="amount", above=100))
        generic = b.token(Tools("bank.transfer"), ThirdParty.new("https://auth.example", b"s" * 32, b"user=alice"))

    def discharge(args: dict, expires: int = NOW + 300) -> "Any":
        digest = invocation_digest(Invocation("bank.transfer", args))
        return mint_discharge(APPROVAL_ROOT, token.caveats[-1].cid, Approved(digest, token_tail_id(token.signature)),
                              Expires(expires), Once(bytes(16)))

    add = b.add
    add("approval-below-threshold", "amount 50: the approval caveat does not apply", token, "bank.transfer",
        {**payment, "amount": 50}, proof=_prover(PLANNER, token), **kw)
    add("approval-required", "amount 500 needs the approver's discharge", token, "bank.transfer", payment,
        proof=_prover(PLANNER, token), **kw)
    add("approval-allowed", "the approver's discharge of this exact call, bound to the token", token,
        "bank.transfer", payment, proof=_prover(PLANNER, token), discharges=[bind(token, discharge(payment))], **kw)
    add("approval-other-call", "a discharge approving amount 500, used for 600", token, "bank.transfer",
        {**payment, "amount": 600}, proof=_prover(PLANNER, token), discharges=[bind(token, discharge(payment))], **kw)
    add("approval-unbound-discharge", "the discharge as the approver issued it, not bound to the token", token,
        "bank.transfer", payment, proof=_prover(PLANNER, token), discharges=[discharge(payment).serialize()], **kw)
    add("approval-expired-discharge", "a discharge that expired before the call", token, "bank.transfer", payment,
        proof=_prover(PLANNER, token), discharges=[bind(token, discharge(payment, NOW - 1))], **kw)
    alice = mint_discharge(b"s" * 32, b"user=alice", location="https://auth.example")
    add("third-party-discharged", "a generic third-party caveat (as pymacaroons adds) and its bound discharge",
        generic, "bank.transfer", payment, discharges=[bind(generic, alice)], intended=HOLDER_INTENDED)
    add("third-party-missing-discharge", "a generic third-party caveat without its discharge", generic,
        "bank.transfer", payment, intended=HOLDER_INTENDED)


AUDIT_SEED = "0a" * 32
AUDIT_ORIGIN = "bank.example/audit"


def audit_records() -> list[dict[str, Any]]:
    """Four records in the verifier's shape (specs/AUDIT.md §2), with fixed ids and times."""
    proof = {"key": AgentKey.from_seed(bytes.fromhex("03" * 32)).public_key.text, "at": NOW,
             "nonce": "AAAAAAAAAAAAAAAAAAAAAA", "sig": "A" * 86}
    decision = {"v": 1, "event": "decision", "verifier": "bank", "token": "AAAAAAAAAAAAAAAAAAAAAA",
                "hops": ["AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAA"], "holder": "0a1b2c3d",
                "tool": "bank.transfer", "audience": None, "digest": "A" * 43, "proof": proof}
    return [
        {**decision, "id": "record-1", "at_ms": NOW * 1000, "allowed": True, "reasons": [],
         "args": {"amount": 50, "currency": "USD", "recipient": "landlord"},
         "reserved": {"reservation": "r1", "expires_at_ms": (NOW + 300) * 1000,
                      "meters": [{"caveat": 5, "amount": "50"}]}},
        {"v": 1, "event": "settle", "id": "record-2", "at_ms": NOW * 1000 + 7, "verifier": "bank",
         "decision": "record-1", "token": "AAAAAAAAAAAAAAAAAAAAAA", "outcome": "commit", "done": True,
         "reservation": "r1"},
        {**decision, "id": "record-3", "at_ms": NOW * 1000 + 9, "allowed": False, "reserved": None,
         "reasons": [{"code": "arg_out_of_range", "caveat": 3, "hop": 1, "agent": "0a1b2c3d",
                      "message": "amount 500 exceeds max 50"}],
         "args": {"amount": 500, "currency": "USD", "recipient": "landlord", "memo": "caf\u00e9 \u201cq\u201d"}},
        {**decision, "id": "record-4", "at_ms": NOW * 1000 + 11, "allowed": True, "reasons": [], "reserved": None,
         "args": {"amount": 12.5, "currency": "USD", "recipient": "landlord"}},
    ]


def build_audit() -> list[dict[str, Any]]:
    """An audit log of four records and two checkpoints, and what a verifier must say of its alterations."""
    import tempfile

    from capkit.audit import AuditLog

    key = AgentKey.from_seed(bytes.fromhex(AUDIT_SEED))
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "audit.jsonl", key, origin=AUDIT_ORIGIN, checkpoint_every=3)
        for record in audit_records():
            log.write(record)
        log.close()
        lines = (Path(tmp) / "audit.jsonl").read_bytes().decode("utf-8").splitlines()
    assert [line[:5] for line in lines] == ['{"h":', '{"h":', '{"h":', '{"c":', '{"h":', '{"c":']
    common = {"audit_public_key": key.public_key.text, "origin": AUDIT_ORIGIN}
    edited = list(lines)
    edited[2] = edited[2].replace('"amount":500', '"amount":50', 1)
    dropped = lines[:1] + lines[2:]
    swapped = [lines[1], lines[0]] + lines[2:]
    torn = lines[:-1] + [lines[-1][:30]]
    return [
        {**common, "name": "intact", "lines": lines, "expected": {"intact": True, "records": 4, "checkpoints": 2}},
        {**common, "name": "edited record", "lines": edited, "expected": {"intact": False, "bad_line": 4}},
        {**common, "name": "deleted record", "lines": dropped, "expected": {"intact": False, "bad_line": 2}},
        {**common, "name": "reordered records", "lines": swapped, "expected": {"intact": False, "bad_line": 1}},
        {**common, "name": "torn last line", "lines": torn, "last_line_complete": False,
         "expected": {"intact": True, "records": 4, "checkpoints": 1, "torn": [6]}},
        {**common, "name": "another audit key", "lines": lines,
         "audit_public_key": AgentKey.from_seed(b"\x0b" * 32).public_key.text,
         "expected": {"intact": False, "bad_line": 4}},
    ]


FILES = {
    "core.json": ("capkit core conformance vectors (bearer tokens, caveats, wire format); see specs/SPEC.md.", build),
    "holder.json": ("capkit holder-binding conformance vectors (proofs, delegation); see specs/SPEC.md §16.",
                    build_holder),
    "audit.json": ("capkit audit log vectors: lines, hash chain, signed checkpoints, alterations; see "
                   "specs/AUDIT.md.", build_audit),
}


def render(name: str) -> str:
    about, builder = FILES[name]
    doc = {
        "about": about + " Generated by specs/generate_vectors.py.",
        "format_version": 2,
        "agent_seeds": {"planner": "02" * 32, "payer": "03" * 32, "third": "04" * 32, "thief": "ff" * 32},
        "vectors": builder(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (OUT.parent / name).write_text(render(name), encoding="utf-8")
        print(f"wrote {OUT.parent / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
