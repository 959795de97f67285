"""Verifier.authorize: the decision, its reasons, the chain cache, and never raising."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit import CapkitError, Decision, Invocation, Keyring, Reason, Verifier, mint
from capkit.caveats import Audience, Eq, Expires, Max, NotBefore, OneOf, PathUnder, Tools
from capkit.core.decision import ALL_CODES

from .conftest import NOW, SECRET, call


def test_allowed_call(verifier, rent_token):
    decision = verifier.authorize(rent_token.serialize(), call(recipient="landlord", amount=1250, currency="USD"))
    assert decision.allowed and bool(decision) and decision.reasons == ()
    assert decision.token_id == rent_token.id
    assert decision.explain() == "allowed"


def test_denial_lists_every_failed_check_in_order(verifier, rent_token):
    decision = verifier.authorize(
        rent_token, Invocation("bank.wire", {"recipient": "mallory", "amount": 5000, "currency": "USD"}, at=NOW + 10**6)
    )
    assert not decision and not decision.allowed
    assert decision.codes == ("tool_not_granted", "arg_not_allowed", "arg_out_of_range", "expired")
    assert [r.caveat_index for r in decision.reasons] == [1, 2, 3, 5]
    assert decision.reasons[2].caveat == Max("amount", 1250)
    assert str(decision.reasons[2]) == "amount 5000 exceeds max 1250 (caveat 3, added at hop 0)"
    assert decision.explain().startswith("denied: tool bank.wire is not granted")


def test_attenuated_denial_names_the_narrowing_caveat(verifier, rent_token):
    narrower = rent_token.attenuate(Max("amount", 50))
    decision = verifier.authorize(narrower, call(recipient="landlord", amount=500, currency="USD"))
    assert decision.codes == ("arg_out_of_range",)
    assert str(decision.reasons[0]) == "amount 500 exceeds max 50 (caveat 6, added at hop 0)"


def test_missing_argument_denies(verifier, rent_token):
    decision = verifier.authorize(rent_token, call(recipient="landlord", currency="USD"))
    assert decision.codes == ("arg_missing",)
    assert decision.reasons[0].message == "the call has no argument 'amount', which the grant constrains"


def test_time_comes_from_the_invocation_or_the_clock(keyring):
    token = mint(keyring, NotBefore(NOW), Expires(NOW + 60), location="bank", unrestricted=False)
    at_now = Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True)
    late = Verifier(keyring, location="bank", clock=lambda: NOW + 60, allow_bearer=True)
    assert at_now.authorize(token, Invocation("x", {}))
    assert late.authorize(token, Invocation("x", {})).codes == ("expired",)
    assert late.authorize(token, Invocation("x", {}, at=NOW + 59))
    aware = dt.datetime.fromtimestamp(NOW - 1, dt.timezone.utc)
    assert at_now.authorize(token, Invocation("x", {}, at=aware)).codes == ("not_yet_valid",)


def test_audience_is_checked(keyring, verifier):
    token = mint(keyring, Audience("bank-api"), location="bank")
    assert verifier.authorize(token, Invocation("x", {}, audience="bank-api", at=NOW))
    assert verifier.authorize(token, Invocation("x", {}, audience="mail-api", at=NOW)).codes == ("wrong_audience",)
    assert verifier.authorize(token, Invocation("x", {}, at=NOW)).codes == ("wrong_audience",)


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "invocation, why",
    [
        ("bank.transfer", "not a capkit Invocation"),
        (None, "not a capkit Invocation"),
        (Invocation("", {}), "tool name"),
        (Invocation("bank transfer", {}), "tool name"),
        (Invocation("x" * 129, {}), "tool name"),
        (Invocation(5, {}), "tool name"),  # type: ignore[arg-type]
        (Invocation("x", [("amount", 1)]), "not a JSON object"),  # type: ignore[arg-type]
        (Invocation("x", {1: "a"}), "name is not text"),
        (Invocation("x", {"a": {1, 2}}), "not a JSON value"),
        (Invocation("x", {"a": object()}), "not a JSON value"),
        (Invocation("x", {"a": float("nan")}), "NaN"),
        (Invocation("x", {"a": Decimal("Infinity")}), "NaN"),
        (Invocation("x", {"a": 10**100}), "too large"),
        (Invocation("x", {"a": _nested(20)}), "nested"),
        (Invocation("x", {"a": list(range(20000))}), "more than"),
        (Invocation("x", {"a": "x" * (2 << 20)}), "characters"),
        (Invocation("x", {}, audience=""), "audience"),
        (Invocation("x", {}, at="yesterday"), "call time"),  # type: ignore[arg-type]
        (Invocation("x", {}, at=float("inf")), "call time"),
        (Invocation("x", {}, at=dt.datetime(2026, 1, 1)), "timezone"),
    ],
)
def test_bad_invocations_deny(keyring, verifier, invocation, why):
    token = mint(keyring, Tools("*"), location="bank")
    decision = verifier.authorize(token, invocation)
    assert decision.codes == ("bad_invocation",)
    assert why in decision.reasons[0].message


def test_bad_invocation_does_not_mask_a_bad_token(verifier):
    decision = verifier.authorize("capkit_AAAA", None)
    assert decision.codes == ("malformed_token",)


def test_chain_cache_is_keyed_by_token_and_keyring_state(keyring, rent_token):
    verifier = Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True)
    text = rent_token.serialize()
    ok = call(recipient="landlord", amount=1, currency="USD")
    assert verifier.authorize(text, ok)
    assert verifier.authorize(text, ok)  # from the cache
    # Per-call checks still run on a cached chain.
    assert verifier.authorize(text, call(recipient="landlord", amount=2000, currency="USD")).codes == ("arg_out_of_range",)
    # A keyring without the key: the cached chain must not be used.
    other = Keyring.from_secret(bytes(32), key_id="k9")
    verifier.use_keyring(other)
    assert verifier.authorize(text, ok).codes == ("unknown_key",)
    verifier.use_keyring(keyring)
    assert verifier.authorize(text, ok)


def test_cache_is_bounded(keyring):
    verifier = Verifier(keyring, location="bank", clock=lambda: NOW, cache_size=4, allow_bearer=True)
    for i in range(10):
        assert verifier.authorize(mint(keyring, Tools(f"t{i}"), location="bank").serialize(), call(f"t{i}"))
    assert len(verifier._cache) <= 4


def test_failed_chains_are_not_cached(verifier, rent_token):
    bad = rent_token.serialize()[:-2] + "AA"
    verifier.authorize(bad, call())
    assert not verifier._cache


def test_an_internal_error_denies_without_details(keyring, rent_token):
    def broken_clock():
        raise RuntimeError("secret detail")

    decision = Verifier(keyring, location="bank", clock=broken_clock, allow_bearer=True).authorize(rent_token, Invocation("bank.transfer", {}))
    assert decision.codes == ("internal_error",)
    assert "secret detail" not in decision.explain()


def test_decision_invariants():
    with pytest.raises(CapkitError):
        Decision(True, (Reason("expired", "x"),))
    with pytest.raises(CapkitError):
        Decision(False, ())
    assert Decision.deny("expired", "late").codes == ("expired",)
    assert Decision(True).to_json() == {"allowed": True, "token_id": None, "chain": [], "reservation": None,
                                        "reasons": [], "explanation": "allowed"}


def test_reason_codes_are_stable():
    assert ALL_CODES == {
        "malformed_token", "too_large", "unknown_key", "bad_signature", "unknown_caveat", "malformed_caveat",
        "bad_invocation", "tool_not_granted", "arg_missing", "arg_invalid", "arg_not_allowed", "arg_out_of_range",
        "expired", "not_yet_valid", "wrong_audience", "internal_error", "bearer_not_allowed", "proof_missing",
        "bad_proof", "wrong_holder", "proof_stale", "proof_replayed", "bad_delegation", "depth_exceeded",
        "revoked", "budget_exceeded", "calls_exceeded", "state_unavailable", "wrong_location",
        "audit_unavailable", "approval_required", "bad_discharge", "proof_mode_not_accepted", "arg_unexpected",
    }
    from capkit.core.codes import MEANINGS

    assert set(MEANINGS) == ALL_CODES and all(MEANINGS.values())


def test_decision_json_names_caveat_kind_and_place(verifier, rent_token):
    decision = verifier.authorize(rent_token, call(recipient="x", amount=1, currency="USD"))
    (reason,) = decision.to_json()["reasons"]
    assert reason == {
        "code": "arg_not_allowed", "message": "recipient 'x' is not one of 'landlord'", "caveat": 2,
        "kind": "one_of", "hop": 0, "agent": None, "vouched_by": None,
        "text": "recipient 'x' is not one of 'landlord' (caveat 2, added at hop 0)",
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.decimals(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
ANYTHING = JSON | st.binary(max_size=40) | st.sampled_from([object(), {1, 2}, b"\x00", 3 + 4j])


@given(token=st.one_of(st.text(max_size=80), st.binary(max_size=80), ANYTHING),
       tool=st.one_of(st.text(max_size=10), ANYTHING), args=st.one_of(st.dictionaries(st.text(max_size=6), ANYTHING, max_size=4), ANYTHING),
       audience=st.one_of(st.none(), st.text(max_size=5), ANYTHING), at=st.one_of(st.none(), ANYTHING))
def test_authorize_never_raises_on_garbage(token, tool, args, audience, at):
    verifier = Verifier(Keyring.from_secret(SECRET, key_id="k1"), location="bank", clock=lambda: NOW, allow_bearer=True)
    decision = verifier.authorize(token, Invocation(tool, args, audience, at))
    assert isinstance(decision, Decision) and not decision.allowed
    assert set(decision.codes) <= ALL_CODES


@given(args=st.dictionaries(st.sampled_from(["recipient", "amount", "currency", "path", "to"]), ANYTHING, max_size=5),
       tool=st.sampled_from(["bank.transfer", "bank.wire", "x"]))
def test_authorize_never_raises_on_garbage_arguments(args, tool):
    keyring = Keyring.from_secret(SECRET, key_id="k1")
    token = mint(keyring, Tools("bank.*"), OneOf("recipient", ["landlord"]), Max("amount", 10), Eq("currency", "USD"),
                 PathUnder("path", "/srv"), location="bank")
    decision = Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True).authorize(token, Invocation(tool, args, at=NOW))
    assert isinstance(decision, Decision)
    assert set(decision.codes) <= ALL_CODES
    assert "internal_error" not in decision.codes


def test_verify_chain_is_public_and_typed(keyring, verifier, rent_token):
    from capkit import BadSignature, MalformedToken
    from capkit.errors import UnknownKey
    from capkit.core.token.verify import VerifiedToken

    verified = verifier.verify_chain(rent_token.serialize())
    assert isinstance(verified, VerifiedToken)
    assert verified.token_id == rent_token.id and verified.location == "bank" and verified.caveats == rent_token.caveats
    with pytest.raises(MalformedToken):
        verifier.verify_chain("capkit_!!")
    with pytest.raises(UnknownKey) as unknown:
        Verifier(Keyring.from_secret(SECRET, key_id="k2"), location="bank").verify_chain(rent_token)
    assert unknown.value.token_id == rent_token.id
    with pytest.raises(BadSignature) as bad:
        Verifier(Keyring.from_secret(bytes(32), key_id="k1"), location="bank").verify_chain(rent_token)
    assert bad.value.code == "bad_signature" and bad.value.token_id == rent_token.id


def test_denial_sentence_for_an_extreme_decimal_argument(verifier, keyring):
    """Found by hypothesis: quoting a Decimal with more places than an amount may have must not crash."""
    token = mint(keyring, OneOf("recipient", ["landlord"]), location="bank")
    decision = verifier.authorize(token, Invocation("x", {"recipient": Decimal("9.9999776301E-10")}, at=NOW))
    assert decision.codes == ("arg_invalid",)
    assert "9.9999776301E-10" in decision.reasons[0].message
