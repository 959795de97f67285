"""Property tests: round trips of every encoding, and monotonic attenuation (promise 2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from capkit.core import canonical
from capkit import Keyring, Token, Verifier, mint
from capkit.caveats import REGISTRY

from .conftest import NOW, SECRET
from .strategies import caveat, invocation

caveat_lists = st.lists(caveat, min_size=1, max_size=3)
KEYRING = Keyring.from_secret(SECRET, key_id="k1")


@given(caveat)
def test_caveat_bytes_round_trip(c):
    raw = c.encode()
    assert raw == canonical.dumps(c.to_json())
    assert REGISTRY.decode(raw) == c
    assert REGISTRY.decode(raw).encode() == raw


@given(caveat_lists, st.lists(caveat_lists, max_size=3))
def test_token_text_and_bytes_round_trip(first, later):
    token = mint(KEYRING, *first, location="bank")
    for more in later:
        token = token.attenuate(*more)
    assert Token.parse(token.serialize()) == token
    assert Token.parse(token.to_bytes()) == token
    assert Token.parse(token.serialize()).serialize() == token.serialize()


@given(caveat_lists, caveat_lists, invocation)
def test_attenuation_never_widens(parent_caveats, extra, inv):
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW, allow_bearer=True)
    parent = mint(KEYRING, *parent_caveats, location="bank")
    child = parent.attenuate(*extra)
    parent_decision = verifier.authorize(parent.serialize(), inv)
    child_decision = verifier.authorize(child.serialize(), inv)
    if not parent_decision.allowed:
        assert not child_decision.allowed
        # Every reason the parent gives is still given, at the same caveat.
        assert set(parent_decision.reasons) <= set(child_decision.reasons)
    if child_decision.allowed:
        assert parent_decision.allowed


@given(st.lists(caveat_lists, min_size=1, max_size=4), invocation)
def test_a_chain_of_attenuations_only_shrinks_authority(steps, inv):
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW, allow_bearer=True)
    token = mint(KEYRING, *steps[0], location="bank")
    allowed = verifier.authorize(token, inv).allowed
    for step in steps[1:]:
        token = token.attenuate(*step)
        now_allowed = verifier.authorize(token, inv).allowed
        assert not (now_allowed and not allowed)
        allowed = now_allowed
