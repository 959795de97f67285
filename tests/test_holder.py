"""Holder binding, proofs of possession and delegation chains (promises 4 and 5).

One test per attack, each a denial with its reason code.
"""

from __future__ import annotations

import json
import os
import stat
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit import Invocation, Keyring, Token, Verifier, mint
from capkit.caveats import Delegate, Eq, Expires, Holder, Max, MaxDepth, OneOf, Tools
from capkit.errors import InsecureKeyFile, KeyringError
from capkit.core.errors import BadDelegation as DelegationError
from capkit.core.errors import InvalidInvocation, MalformedProof, MalformedToken
from capkit.core.holder import AgentKey
from capkit.core.messages import delegation_message
from capkit.core.proof import Proof
from capkit.core.invocation import canonical_invocation, invocation_digest
from capkit.core.publickey import MalformedKey, PublicKey
from capkit.state import MemoryStore, StateRequest

from .conftest import NOW, SECRET
from .strategies import caveat, invocation

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
PERSON_GRANT = (Tools("bank.transfer"), OneOf("recipient", ["landlord"]), Max("amount", 1250), Eq("currency", "USD"),
                Expires(NOW + 86400))
RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD"}


@pytest.fixture(scope="module")
def planner() -> AgentKey:
    return AgentKey.from_seed(b"\x02" * 32)


@pytest.fixture(scope="module")
def payer() -> AgentKey:
    return AgentKey.from_seed(b"\x03" * 32)


@pytest.fixture(scope="module")
def thief() -> AgentKey:
    return AgentKey.from_seed(b"\xff" * 32)


@pytest.fixture
def verifier() -> Verifier:
    return Verifier(KEYRING, location="bank", clock=lambda: NOW)


@pytest.fixture
def grant(planner) -> Token:
    return mint(KEYRING, Holder(planner.public_key), *PERSON_GRANT, location="bank")


@pytest.fixture
def delegated(grant, planner, payer) -> Token:
    return grant.delegate(planner, payer.public_key, Max("amount", 1250), Expires(NOW + 600))


def inv(tool="bank.transfer", audience=None, **args) -> Invocation:
    return Invocation(tool, args or RENT, audience, NOW)


def prove(key: AgentKey, token: Token, invocation: Invocation, **kw) -> str:
    return Proof.create(key, token, invocation, at=kw.pop("at", NOW), **kw).serialize()


# ------------------------------------------------------------------ keys


def test_agent_key_text_fingerprint_and_repr(planner):
    pk = planner.public_key
    assert pk.text.startswith("capkit_pk_") and len(pk.text) == 10 + 43
    assert PublicKey.parse(pk.text) == pk
    assert len(pk.fingerprint) == 8
    assert repr(planner) == f"AgentKey({pk.fingerprint})"
    for bad in ("capkit_pk_AAAA", "pk_" + pk.text[10:], pk.text + "=", 5):
        with pytest.raises(MalformedKey):
            PublicKey.parse(bad)


def test_agent_key_file(tmp_path, planner):
    path = tmp_path / "agent.key"
    planner.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert AgentKey.load(path).public_key == planner.public_key
    with pytest.raises(KeyringError, match="already exists"):
        planner.save(path)
    os.chmod(path, 0o640)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        AgentKey.load(path)
    os.chmod(path, 0o600)
    path.write_text('{"format": "capkit-agent-key", "version": 1, "private_key": "AAAA", "public_key": "x"}')
    with pytest.raises(KeyringError, match="not a valid"):
        AgentKey.load(path)
    assert planner._seed().hex() not in repr(planner)


# ------------------------------------------------------------ the happy path


def test_holder_with_a_fresh_proof_is_allowed(verifier, grant, planner):
    call = inv()
    decision = verifier.authorize(grant, call, prove(planner, grant, call))
    assert decision.allowed
    assert [str(h) for h in decision.chain] == [f"hop 0: agent {planner.public_key.fingerprint}"]


def test_delegated_token_is_allowed_for_the_sub_agent(verifier, delegated, planner, payer):
    call = inv()
    decision = verifier.authorize(delegated.serialize(), call, prove(payer, delegated, call))
    assert decision.allowed, decision.explain()
    assert [(h.hop, h.holder) for h in decision.chain] == [(0, planner.public_key.fingerprint),
                                                           (1, payer.public_key.fingerprint)]
    assert delegated.claimed_holder == payer.public_key and delegated.depth == 1
    assert decision.to_json()["chain"][1] == {"hop": 1, "holder": payer.public_key.fingerprint,
                                              "id": decision.chain[1].id}
    assert decision.chain[0].id == delegated.id and decision.chain[1].id.startswith(delegated.id + ".")


def test_denials_name_the_hop_and_agent_that_added_the_caveat(verifier, delegated, payer, planner):
    # The payer narrows its own token further, at hop 1.
    narrower = delegated.attenuate(Max("amount", 50))
    call = inv(**{**RENT, "amount": 500})
    decision = verifier.authorize(narrower, call, prove(payer, narrower, call))
    assert decision.codes == ("arg_out_of_range",)
    assert str(decision.reasons[0]) == (
        f"amount 500 exceeds max 50 (caveat {len(narrower.caveats)}, added at hop 1 by agent "
        f"{payer.public_key.fingerprint})")
    # A caveat the planner added while delegating belongs to hop 0.
    expired = verifier.authorize(delegated, inv(), prove(payer, delegated, inv()))
    assert expired.allowed
    late = Invocation("bank.transfer", RENT, at=NOW + 3600)
    stale_free = Verifier(KEYRING, location="bank", clock=lambda: NOW + 3600)
    decision = stale_free.authorize(delegated, late, prove(payer, delegated, late, at=NOW + 3600))
    assert decision.codes == ("expired",)
    assert decision.reasons[0].hop == 0 and decision.reasons[0].agent is None


# ------------------------------------------------------------ bearer tokens


def test_bearer_tokens_are_refused_by_default():
    bearer = mint(KEYRING, *PERSON_GRANT, location="bank")
    decision = Verifier(KEYRING, location="bank", clock=lambda: NOW).authorize(bearer, inv())
    assert decision.codes == ("bearer_not_allowed",)
    assert Verifier(KEYRING, location="bank", clock=lambda: NOW, allow_bearer=True).authorize(bearer, inv())
    # A token nobody may use here reveals nothing else about its grant (and costs no argument checks).
    both = Verifier(KEYRING, location="bank", clock=lambda: NOW).authorize(bearer, inv(**{**RENT, "amount": 5000}))
    assert both.codes == ("bearer_not_allowed",)


def test_bearer_token_cannot_be_delegated(planner, payer):
    bearer = mint(KEYRING, *PERSON_GRANT, location="bank")
    with pytest.raises(DelegationError, match="bearer"):
        bearer.delegate(planner, payer.public_key)
    forged = bearer.attenuate(Delegate(payer.public_key, planner.sign(b"anything")))
    decision = Verifier(KEYRING, location="bank", clock=lambda: NOW, allow_bearer=True).authorize(forged, inv())
    assert decision.codes == ("bad_delegation",)


def test_binding_a_bearer_token_to_a_holder_is_a_narrowing(payer):
    bearer = mint(KEYRING, *PERSON_GRANT, location="bank")
    bound = bearer.attenuate(Holder(payer.public_key))
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    assert verifier.authorize(bound, inv()).codes == ("proof_missing",)
    assert verifier.authorize(bound, inv(), prove(payer, bound, inv()))


# ------------------------------------------------------------- the attacks


def test_thief_with_the_token_but_no_key(verifier, delegated, thief):
    call = inv()
    assert verifier.authorize(delegated, call).codes == ("proof_missing",)
    decision = verifier.authorize(delegated, call, prove(thief, delegated, call))
    assert decision.codes == ("wrong_holder",)
    assert thief.public_key.fingerprint in decision.reasons[0].message


def test_thief_re_delegating_the_token_to_its_own_key(verifier, delegated, thief):
    with pytest.raises(DelegationError, match="only the current holder"):
        delegated.delegate(thief, thief.public_key)
    # Doing it by hand: a Delegate caveat signed by the thief's own key.
    forged_sig = thief.sign(delegation_message(delegated.signature, thief.public_key, 2))
    forged = delegated.attenuate(Delegate(thief.public_key, forged_sig))
    call = inv()
    decision = verifier.authorize(forged, call, prove(thief, forged, call))
    assert decision.codes == ("bad_delegation",)
    assert "not signed by the token's holder" in decision.reasons[0].message


def test_sub_agent_using_its_parents_token_with_its_own_key(verifier, grant, payer):
    call = inv()
    assert verifier.authorize(grant, call, prove(payer, grant, call)).codes == ("wrong_holder",)


def test_parent_using_the_token_it_delegated_away(verifier, delegated, planner):
    call = inv()
    assert verifier.authorize(delegated, call, prove(planner, delegated, call)).codes == ("wrong_holder",)


def test_replayed_proof(verifier, delegated, payer):
    call = inv()
    proof = prove(payer, delegated, call)
    assert verifier.authorize(delegated, call, proof).allowed
    replay = verifier.authorize(delegated, call, proof)
    assert replay.codes == ("proof_replayed",)
    assert verifier.authorize(delegated, call, prove(payer, delegated, call)).allowed  # a fresh proof works


def test_a_denied_call_does_not_consume_its_proof(delegated, payer):
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    early = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    call = inv()
    proof = prove(payer, delegated, call)
    narrowed_time = delegated.attenuate(Expires(NOW - 1))
    assert early.authorize(narrowed_time, call, Proof.create(payer, narrowed_time, call, at=NOW)).codes == ("expired",)
    assert verifier.authorize(delegated, call, proof).allowed


@pytest.mark.parametrize("offset, allowed", [(-60, True), (60, True), (-61, False), (61, False), (-3600, False),
                                             (86400, False)])
def test_proof_freshness_window_both_directions(verifier, delegated, payer, offset, allowed):
    call = inv()
    decision = verifier.authorize(delegated, call, prove(payer, delegated, call, at=NOW + offset))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.codes == ("proof_stale",)
        assert ("in the future" in decision.reasons[0].message) is (offset > 0)


def test_proof_window_is_configurable(delegated, payer):
    call = inv()
    strict = Verifier(KEYRING, location="bank", clock=lambda: NOW, proof_window=5)
    assert strict.authorize(delegated, call, prove(payer, delegated, call, at=NOW - 6)).codes == ("proof_stale",)
    with pytest.raises(Exception):
        Verifier(KEYRING, location="bank", proof_window=0)


@pytest.mark.parametrize("changed", [
    dict(tool="bank.balance"),
    dict(args={**RENT, "amount": 1249}),
    dict(args={**RENT, "recipient": "landlord "}),
    dict(args={**RENT, "extra": 1}),
    dict(audience="bank-api"),
])
def test_proof_made_for_another_call(verifier, delegated, payer, changed):
    signed = inv()
    presented = Invocation(changed.get("tool", "bank.transfer"), changed.get("args", RENT), changed.get("audience"), NOW)
    decision = verifier.authorize(delegated, presented, prove(payer, delegated, signed))
    assert "bad_proof" in decision.codes
    assert decision.reasons[[r.code for r in decision.reasons].index("bad_proof")].message == (
        "the proof does not match this call (tool, arguments, audience) or this token")


def test_proof_made_for_another_token(verifier, delegated, payer):
    other = delegated.attenuate(Max("amount", 1000))
    call = inv(**{**RENT, "amount": 10})
    assert verifier.authorize(other, call, prove(payer, delegated, call)).codes == ("bad_proof",)


def test_proof_is_bound_to_exact_number_values_not_spelling(verifier, delegated, payer):
    signed = Invocation("bank.transfer", {**RENT, "amount": Decimal("1250.00")}, at=NOW)
    received = Invocation("bank.transfer", {**RENT, "amount": 1250.0}, at=NOW)  # as a JSON parser delivers it
    assert verifier.authorize(delegated, received, prove(payer, delegated, signed)).allowed


@pytest.mark.parametrize("text", ["", "capkit_proof_", "capkit_proof_AAAA", "proof", "capkit_proof_" + "A" * 300, 5])
def test_unreadable_proofs(verifier, delegated, text):
    decision = verifier.authorize(delegated, inv(), text)
    assert decision.codes == ("bad_proof",)


def test_tampered_proof_signature(verifier, delegated, payer):
    call = inv()
    proof = Proof.parse(prove(payer, delegated, call))
    flipped = Proof(proof.public_key, proof.at, proof.nonce, bytes([proof.signature[0] ^ 1]) + proof.signature[1:])
    assert verifier.authorize(delegated, call, flipped).codes == ("bad_proof",)
    other_nonce = Proof(proof.public_key, proof.at, bytes(16), proof.signature)
    assert verifier.authorize(delegated, call, other_nonce).codes == ("bad_proof",)
    other_time = Proof(proof.public_key, proof.at + 1, proof.nonce, proof.signature)
    assert verifier.authorize(delegated, call, other_time).codes == ("bad_proof",)


def test_depth_beyond_max_depth(verifier, planner, payer, thief):
    grant = mint(KEYRING, Holder(planner.public_key), MaxDepth(1), Tools("bank.transfer"), location="bank")
    one = grant.delegate(planner, payer.public_key)
    with pytest.raises(DelegationError, match="at most 1"):
        one.delegate(payer, thief.public_key)
    # The payer builds the second hop by hand: every signature is valid, the depth is not.
    signature = payer.sign(delegation_message(one.signature, thief.public_key, 2))
    two = one.attenuate(Delegate(thief.public_key, signature))
    call = inv()
    decision = verifier.authorize(two, call, prove(thief, two, call))
    assert decision.codes == ("depth_exceeded",)
    assert decision.reasons[0].caveat_index == 2
    assert str(decision.reasons[0]).startswith("the token went through 2 delegations; at most 1 allowed (caveat 2")
    assert verifier.authorize(one, call, prove(payer, one, call)).allowed


def test_max_depth_zero_forbids_delegation(planner, payer):
    grant = mint(KEYRING, Holder(planner.public_key), MaxDepth(0), Tools("x"), location="bank")
    with pytest.raises(DelegationError):
        grant.delegate(planner, payer.public_key)
    with pytest.raises(DelegationError):
        grant.delegate(planner, payer.public_key, MaxDepth(5))


def test_delegation_signature_valid_but_over_another_token(verifier, planner, payer):
    token_a = mint(KEYRING, Holder(planner.public_key), Tools("bank.transfer"), location="bank")
    token_b = mint(KEYRING, Holder(planner.public_key), Tools("bank.*"), location="bank")
    delegated_a = token_a.delegate(planner, payer.public_key)
    copied = token_b.attenuate(delegated_a.caveats[-1])  # the planner's genuine signature, over token A
    call = inv()
    assert verifier.authorize(copied, call, prove(payer, copied, call)).codes == ("bad_delegation",)


def test_delegation_signature_for_another_hop_number(verifier, planner, payer):
    grant = mint(KEYRING, Holder(planner.public_key), Tools("bank.transfer"), location="bank")
    signature = planner.sign(delegation_message(grant.signature, payer.public_key, 2))  # claims hop 2
    forged = grant.attenuate(Delegate(payer.public_key, signature))
    assert verifier.authorize(forged, inv(), prove(payer, forged, inv())).codes == ("bad_delegation",)


def test_a_second_holder_caveat_is_refused(verifier, grant, planner, thief):
    swapped = grant.attenuate(Holder(thief.public_key))
    call = inv()
    decision = verifier.authorize(swapped, call, prove(thief, swapped, call))
    assert decision.codes == ("bad_delegation",)
    assert "another holder" in decision.reasons[0].message


def test_three_hop_chain(verifier, planner, payer, thief):
    third = AgentKey.from_seed(b"\x04" * 32)
    grant = mint(KEYRING, Holder(planner.public_key), *PERSON_GRANT, location="bank")
    token = grant.delegate(planner, payer.public_key).delegate(payer, third.public_key, Max("amount", 100))
    token = token.delegate(third, thief.public_key)
    call = inv(**{**RENT, "amount": 100})
    decision = verifier.authorize(token, call, prove(thief, token, call))
    assert decision.allowed
    assert [h.hop for h in decision.chain] == [0, 1, 2, 3]
    denied = verifier.authorize(token, inv(), prove(thief, token, inv()))
    assert str(denied.reasons[0]) == (
        f"amount 1250 exceeds max 100 (caveat 8, added at hop 1 by agent {payer.public_key.fingerprint})")


def test_delegation_signatures_are_verified_once(monkeypatch, verifier, delegated, payer):
    counted = []
    real = PublicKey.verify

    def counting(self, signature, message):
        counted.append(message[:19])
        return real(self, signature, message)

    monkeypatch.setattr(PublicKey, "verify", counting)
    for amount in (1, 2, 3):
        token = delegated.attenuate(Max("amount", 1000 + amount))  # new token text each time
        call = inv(**{**RENT, "amount": amount})
        assert verifier.authorize(token, call, prove(payer, token, call)).allowed
    delegation_checks = [m for m in counted if m.startswith(b"capkit/v1/delegate")]
    assert len(delegation_checks) == 1
    assert len([m for m in counted if m.startswith(b"capkit/v1/proof")]) == 3


def test_structural_caveats_fail_closed_outside_the_verifier(delegated):
    from capkit.compat import pymacaroons as compat

    # pymacaroons cannot check proofs, so a holder-bound token never passes its satisfier.
    assert compat.verify(delegated, KEYRING, inv(), now=NOW) is False


# ---------------------------------------------------------------- proofs


def test_proof_text_round_trip(delegated, payer):
    proof = Proof.create(payer, delegated, inv(), at=NOW, nonce=bytes(range(16)))
    text = proof.serialize()
    assert text.startswith("capkit_proof_") and len(text) == 175
    assert Proof.parse(text) == proof
    assert repr(proof) == f"Proof(by={payer.public_key.fingerprint}, at={NOW})"
    with pytest.raises(MalformedProof):
        Proof.create(payer, delegated, inv(), nonce=b"short")


def test_canonical_invocation_and_digest():
    call = Invocation("bank.transfer", {"b": [1, 2.0, Decimal("3.50")], "a": 'x\n"é', "n": None, "t": True,
                                        "f": 1e16, "z": -0.0}, "bank-api")
    assert canonical_invocation(call) == (
        '{"args":{"a":"x\\n\\"é","b":[1,2,3.5],"f":10000000000000000,"n":null,"t":true,"z":0},'
        '"aud":"bank-api","tool":"bank.transfer"}').encode()
    same = Invocation("bank.transfer", {"z": 0, "t": True, "n": None, "f": 10**16, "b": (1, 2, 3.5), "a": 'x\n"é'},
                      "bank-api")
    assert invocation_digest(call) == invocation_digest(same)
    assert invocation_digest(call) != invocation_digest(Invocation("bank.transfer", call.args))


def test_memory_store_forgets_expired_nonces():
    store = MemoryStore()

    def add(nonce, expires_at, now):
        return store.apply(StateRequest("fam", ("fam",), nonce, expires_at, (), 60), now).ok

    assert add(b"n1", 100, 0)
    assert not add(b"n1", 100, 50)
    assert add(b"n1", 300, 101)  # expired, so accepted again (the proof is stale by then)
    for i in range(5000):
        add(i.to_bytes(4, "big"), 200, 150)
    add(b"last", 1000, 500)
    assert len(store._nonces) < 10


# ------------------------------------------------------------- monotonic


@given(st.lists(caveat, min_size=1, max_size=3), st.lists(caveat, max_size=3), st.lists(caveat, max_size=2), invocation)
def test_delegation_never_widens(parent_caveats, handed, later, call):
    planner = AgentKey.from_seed(b"\x02" * 32)
    payer = AgentKey.from_seed(b"\x03" * 32)
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    parent = mint(KEYRING, Holder(planner.public_key), *parent_caveats, location="bank")
    child = parent.delegate(planner, payer.public_key, *handed)
    if later:
        child = child.attenuate(*later)
    parent_decision = verifier.authorize(parent, call, Proof.create(planner, parent, call, at=NOW))
    child_decision = verifier.authorize(child, call, Proof.create(payer, child, call, at=NOW))
    if not parent_decision.allowed:
        assert not child_decision.allowed
        parent_codes = [(r.code, r.caveat_index) for r in parent_decision.reasons]
        child_codes = [(r.code, r.caveat_index) for r in child_decision.reasons]
        assert set(parent_codes) <= set(child_codes)


# ------------------------------------------------------------- fast paths agree with the general rule

_flat_values = st.one_of(st.text(max_size=12), st.integers(min_value=-(2 ** 300), max_value=2 ** 300),
                         st.booleans(), st.none())


@given(args=st.dictionaries(st.text(max_size=8), _flat_values, max_size=6),
       audience=st.one_of(st.none(), st.text(min_size=1, max_size=8)))
def test_flat_arguments_encode_exactly_as_the_general_encoder(args, audience):
    from capkit.core.invocation import _ARG_LEVELS, _encode

    invocation = Invocation("bank.transfer", args, audience=audience)
    out = ['{"args":']
    _encode(args, out, _ARG_LEVELS)
    out += [',"aud":', "null" if audience is None else json.dumps(audience, ensure_ascii=False),
            ',"tool":"bank.transfer"}']
    try:
        expected = "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidInvocation):
            canonical_invocation(invocation)
        return
    assert canonical_invocation(invocation) == expected


@given(extra=st.lists(st.sampled_from([Max("amount", 10), Eq("currency", "USD"), OneOf("to", ["a", "b"])]),
                      max_size=30))
def test_reading_only_the_tail_of_token_text_gives_the_tail_signature(extra):
    from capkit.core.token.decode import tail_signature

    token = mint(Keyring.from_secret(SECRET, key_id="k1"), Tools("x"), *extra, location="bank")
    text = token.serialize()
    assert tail_signature(text) == token.signature == tail_signature(text.encode("ascii"))
    for broken in (text[:-1], text[:40] + "!" + text[41:], text[:40] + "+" + text[41:], text + "A"):
        with pytest.raises(MalformedToken):
            tail_signature(broken)


# --------------------------------------------------------- designated-verifier (MAC) proofs


def _mac_setup():
    from capkit.integrations import Credentials

    keyring = Keyring.from_secret(SECRET, key_id="k1")
    agent, verifier_key, thief = (AgentKey.from_seed(bytes([i]) * 32) for i in (21, 22, 23))
    token = mint(keyring, Holder(agent.public_key), Tools("bank.transfer"), Max("amount", 100), location="bank")
    verifier = Verifier(keyring, location="bank", clock=lambda: NOW, proof_modes={"signature", "mac"},
                        proof_key=verifier_key)
    return keyring, agent, verifier_key, thief, token, verifier, Credentials


def test_mac_proofs_are_accepted_only_where_allowed_and_bind_the_same_things():
    keyring, agent, verifier_key, thief, token, verifier, _ = _mac_setup()
    key = agent.mac_key(verifier.proof_public_key, agent=True)
    assert key == verifier_key.mac_key(agent.public_key, agent=False)  # both sides derive the same key
    call = Invocation("bank.transfer", {"amount": 5}, at=NOW)
    proof = Proof.create(agent, token, call, at=NOW, mac_key=key)
    assert proof.mode == "mac" and Proof.parse(proof.serialize()) == proof
    assert verifier.authorize(token, call, proof.serialize())
    assert verifier.authorize(token, call, proof.serialize()).codes == ("proof_replayed",)
    signature_only = Verifier(keyring, location="bank", clock=lambda: NOW)
    fresh = Proof.create(agent, token, call, at=NOW, mac_key=key).serialize()
    assert signature_only.authorize(token, call, fresh).codes == ("proof_mode_not_accepted",)
    other = Invocation("bank.transfer", {"amount": 6}, at=NOW)
    assert verifier.authorize(token, other, Proof.create(agent, token, call, at=NOW, mac_key=key)).codes == (
        "bad_proof",)
    narrower = token.attenuate(Max("amount", 50))
    assert verifier.authorize(narrower, call, Proof.create(agent, token, call, at=NOW, mac_key=key)).codes == (
        "bad_proof",)
    # a thief who knows only public keys cannot make the holder's MAC: its own key derives another
    forged = Proof.create(thief, token, call, at=NOW, mac_key=thief.mac_key(verifier.proof_public_key, agent=True))
    assert verifier.authorize(token, call, forged).codes == ("wrong_holder",)
    spoofed = Proof(agent.public_key, NOW, bytes(16), forged.signature, forged.version)
    assert verifier.authorize(token, call, spoofed).codes == ("bad_proof",)
    # and a MAC made for another verifier's key does not convince this one
    elsewhere = agent.mac_key(AgentKey.from_seed(b"\x18" * 32).public_key, agent=True)
    assert verifier.authorize(token, call, Proof.create(agent, token, call, at=NOW, mac_key=elsewhere)).codes == (
        "bad_proof",)


def test_credentials_make_mac_proofs_and_the_audit_record_says_so(tmp_path):
    from capkit.audit import AuditLog

    keyring, agent, verifier_key, thief, token, _, Credentials = _mac_setup()
    log = AuditLog(tmp_path / "a.jsonl", AgentKey.from_seed(b"\x19" * 32), origin="bank.example/audit")
    verifier = Verifier(keyring, location="bank", proof_modes="mac", proof_key=verifier_key, audit=log)
    credentials = Credentials(token, agent, verifier_key=verifier.proof_public_key)
    text, proof = credentials.present("bank.transfer", {"amount": 5})
    assert verifier.authorize(text, Invocation("bank.transfer", {"amount": 5}), proof)
    signed = Proof.create(agent, token, Invocation("bank.transfer", {"amount": 5})).serialize()
    assert verifier.authorize(text, Invocation("bank.transfer", {"amount": 5}), signed).codes == (
        "proof_mode_not_accepted",)
    verifier.close()
    record = json.loads((tmp_path / "a.jsonl").read_bytes().splitlines()[0])["r"]
    assert record["proof"]["mode"] == "mac" and "sig" not in record["proof"]  # no evidence for third parties


def test_mac_proof_configuration_is_checked():
    keyring = Keyring.from_secret(SECRET, key_id="k1")
    for bad in ({"mac"}, {"hmac"}, set()):
        with pytest.raises(Exception) as raised:
            Verifier(keyring, location="bank", proof_modes=bad)
        assert raised.type.__name__ == "CapkitError"
    with pytest.raises(MalformedProof):
        Proof.create(AgentKey.from_seed(b"\x02" * 32), mint(keyring, Tools("x"), location="bank"), Invocation("x", {}),
                     mac_key=b"short")
