"""One error root for real: no builtin exception escapes a public function or constructor on bad input.

Every public callable is called with arbitrary objects in place of each of its
arguments (the right number of them: a wrong arity is a programming error, not
input). Whatever it raises must be a ``CapkitError`` with a code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import capkit
from capkit import AgentKey, Invocation, Keyring, Limits, Proof, PublicKey, Token, Verifier, mint, open_store
from capkit.caveats import (
    Audience,
    Budget,
    CallLimit,
    Delegate,
    Domain,
    Eq,
    Expires,
    Glob,
    Holder,
    Max,
    MaxDepth,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
)
from capkit.core.errors import CapkitError
from capkit.audit import AuditPolicy, parse_checkpoint, verify_log
from capkit.grant import parse_grant

from .conftest import NOW, SECRET

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
AGENT = AgentKey.from_seed(b"\x02" * 32)
TOKEN = mint(KEYRING, Holder(AGENT.public_key), Tools("x"), location="bank")

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.binary(max_size=40),
    st.decimals(allow_nan=True, allow_infinity=True), st.lists(st.integers(), max_size=3),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just(object()), st.just(float("nan")), st.just(-1), st.just(10**40), st.just(dt.datetime(2026, 1, 1)),
    st.just(Path("/nonexistent")), st.just(KEYRING), st.just(AGENT), st.just(TOKEN), st.just(Decimal("1e999")),
    st.just(b"\x00" * 32), st.just("capkit_"), st.just("capkit_pk_AAAA"), st.just(st),
)


def _calls():
    """(name, callable, number of positional arguments) of every public function and constructor."""
    return [
        ("Eq", Eq, 2), ("OneOf", OneOf, 2), ("Max", Max, 2), ("Min", Min, 2), ("Range", Range, 3),
        ("Prefix", Prefix, 2), ("PathUnder", PathUnder, 2), ("Glob", Glob, 2),
        ("Domain", lambda a, v, k: Domain(a, v, kind=k), 3), ("Tools", Tools, 1), ("Tools2", Tools, 2),
        ("Audience", Audience, 1), ("Expires", Expires, 1), ("NotBefore", NotBefore, 1),
        ("Budget", Budget, 3), ("CallLimit", CallLimit, 2), ("Holder", Holder, 1), ("Delegate", Delegate, 2),
        ("MaxDepth", MaxDepth, 1),
        ("scoped", lambda a, v, t: Max(a, v, tool=t), 3),
        ("mint", lambda k, c, loc: mint(k, c, location=loc), 3),
        ("mint_unrestricted", lambda k, loc: mint(k, location=loc, unrestricted=True), 2),
        ("mint_token_id", lambda t: mint(KEYRING, Tools("x"), location="bank", token_id=t), 1),
        ("Token.parse", Token.parse, 1),
        ("attenuate", lambda c: TOKEN.attenuate(c), 1),
        ("delegate", lambda k, to: TOKEN.delegate(k, to), 2),
        ("Keyring.generate", lambda k: Keyring.generate(key_id=k), 1),
        ("Keyring.generate_now", lambda n: Keyring.generate(now=n), 1),
        # (text paths would write files: the path rules are tested in test_keys)
        ("Keyring.save", lambda p: None if isinstance(p, (str, Path)) else KEYRING.save(p), 1),
        ("AgentKey.save", lambda p: None if isinstance(p, (str, Path)) else AGENT.save(p), 1),
        ("Invocation", Invocation, 2),
        ("attenuate_limits", lambda v: TOKEN.attenuate(Tools("x"), limits=v), 1),
        ("parse_limits", lambda v: Token.parse(TOKEN.serialize(), limits=v), 1),
        ("parse_registry", lambda v: Token.parse(TOKEN.serialize(), registry=v), 1),
        ("delegate_limits", lambda v: TOKEN.delegate(AGENT, AGENT.public_key, limits=v), 1),
        ("authorize_listing", lambda t, p: Verifier(KEYRING, location="bank").authorize_listing(t, p), 2),
        ("Keyring.from_secret", lambda s, k: Keyring.from_secret(s, key_id=k), 2),
        ("Keyring.from_json", Keyring.from_json, 1),
        ("Keyring.load", Keyring.load, 1),
        ("for_location", lambda loc: KEYRING.for_location(loc), 1),
        ("rotate", lambda k: KEYRING.rotate(key_id=k), 1),
        ("remove", lambda k: KEYRING.remove(k), 1),
        ("AgentKey.from_seed", AgentKey.from_seed, 1),
        ("AgentKey.load", AgentKey.load, 1),
        ("PublicKey", PublicKey, 1),
        ("PublicKey.parse", PublicKey.parse, 1),
        ("Proof.parse", Proof.parse, 1),
        ("Proof.create", lambda k, t, i: Proof.create(k, t, i), 3),
        ("Proof.create_at", lambda at: Proof.create(AGENT, TOKEN, Invocation("x", {}), at=at), 1),
        ("Proof.create_args", lambda a: Proof.create(AGENT, TOKEN, Invocation("x", a)), 1),
        ("Verifier", lambda k: Verifier(k, location="bank"), 1),
        ("Verifier.location", lambda loc: Verifier(KEYRING, location=loc), 1),
        ("Verifier.window", lambda w: Verifier(KEYRING, location="bank", proof_window=w), 1),
        ("Verifier.lease", lambda w: Verifier(KEYRING, location="bank", reservation_timeout=w), 1),
        ("Verifier.limits", lambda w: Verifier(KEYRING, location="bank", limits=w), 1),
        ("verify_chain", lambda t: Verifier(KEYRING, location="bank").verify_chain(t), 1),
        ("revoke", lambda h, r: Verifier(KEYRING, location="bank").revoke(h, r), 2),
        ("budgets", lambda t, at: Verifier(KEYRING, location="bank").budgets(t, at=at), 2),
        ("complete", lambda d: Verifier(KEYRING, location="bank").complete(d), 1),
        ("Limits", lambda v: Limits(max_caveats=v), 1),
        ("open_store", open_store, 1),
        ("parse_grant", lambda t: parse_grant(t, now=NOW), 1),
        ("AuditPolicy", AuditPolicy, 1),
        ("AuditPolicy.default", lambda d: AuditPolicy(default=d), 1),
        ("AuditPolicy.hash_key", lambda k: AuditPolicy(default="hash", hash_key=k), 1),
        ("parse_checkpoint", parse_checkpoint, 1),
        ("verify_log", verify_log, 2),
        ("verify_log_lines", lambda lines: verify_log(lines, AGENT.public_key), 1),
        ("Verifier.audit", lambda a: Verifier(KEYRING, location="bank", audit=a), 1),
        ("Verifier.audit_policy", lambda p: Verifier(KEYRING, location="bank", audit_policy=p), 1),
        ("Verifier.verifier_id", lambda v: Verifier(KEYRING, location="bank", verifier_id=v), 1),
    ]


@pytest.mark.parametrize("name, fn, arity", _calls(), ids=[c[0] for c in _calls()])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_builtin_exception_escapes(name, fn, arity, data):
    args = [data.draw(anything) for _ in range(arity)]
    try:
        fn(*args)
    except CapkitError as exc:
        assert isinstance(exc.code, str) and exc.code and exc.message
    # anything else propagates and fails the test, naming the arguments


@given(token=anything, invocation=anything, proof=anything)
@settings(max_examples=300, deadline=None)
def test_authorize_never_raises_and_never_reports_an_internal_error(token, invocation, proof):
    decision = Verifier(KEYRING, location="bank", clock=lambda: NOW).authorize(token, invocation, proof)
    assert not decision.allowed and "internal_error" not in decision.codes


def test_every_public_name_is_reachable():
    for name in capkit.__all__:
        assert getattr(capkit, name) is not None
