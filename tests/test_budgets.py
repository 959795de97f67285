"""Budgets, call limits, revocation and fail-closed state through Verifier.authorize (promises 6 and 7)."""

from __future__ import annotations


import pytest

from capkit import AgentKey, AuthorizationDenied, Invocation, Keyring, Proof, StoreUnavailable, Verifier, mint
from capkit.caveats import Budget, CallLimit, Holder, Tools
from decimal import Decimal

from capkit.errors import CapkitError, InvalidCaveat, NothingSpent
from capkit.state import MemoryStore

from .backends import BACKENDS, open_backend
from .conftest import NOW, SECRET

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
PLANNER = AgentKey.from_seed(b"\x02" * 32)
PAYER = AgentKey.from_seed(b"\x03" * 32)
OTHER = AgentKey.from_seed(b"\x05" * 32)


@pytest.fixture(params=BACKENDS)
def verifier(request, tmp_path):
    v = Verifier(KEYRING, location="bank", store=open_backend(request.param, tmp_path), clock=lambda: NOW)
    yield v
    v.close()


def grant(*caveats, holder=PLANNER):
    return mint(KEYRING, Holder(holder.public_key), Tools("bank.transfer"), *caveats, location="bank")


def pay(verifier, token, key, amount, at=NOW, tool="bank.transfer"):
    call = Invocation(tool, {"amount": amount}, at=at)
    return verifier.authorize(token, call, Proof.create(key, token, call, at=at))


def spend(verifier, token, key, amount, at=NOW):
    decision = pay(verifier, token, key, amount, at)
    if decision.allowed:
        assert verifier.complete(decision)
    return decision


def test_budget_allows_until_the_cap_then_explains(verifier):
    token = grant(Budget("amount", 100))
    assert spend(verifier, token, PLANNER, 60).allowed
    assert spend(verifier, token, PLANNER, Decimal("39.99")).allowed
    denied = pay(verifier, token, PLANNER, Decimal("0.02"))
    assert denied.codes == ("budget_exceeded",)
    assert str(denied.reasons[0]) == "amount 0.02 exceeds the budget: 0.01 of 100 left in total (caveat 3, added at hop 0)"
    assert spend(verifier, token, PLANNER, Decimal("0.01")).allowed


def test_a_denied_call_reserves_nothing(verifier):
    token = grant(Budget("amount", 10))
    assert not pay(verifier, token, PLANNER, 5, tool="bank.wire").allowed  # stateless denial
    assert not pay(verifier, token, PLANNER, 11).allowed  # over the cap
    (status,) = verifier.budgets(token, at=NOW)
    assert (status.committed, status.reserved) == (0, 0)
    assert spend(verifier, token, PLANNER, 10).allowed


def test_nothing_spent_gives_the_budget_back(verifier):
    token = grant(Budget("amount", 10))
    decision = pay(verifier, token, PLANNER, 10)
    assert decision.allowed and decision.reservation is not None
    assert pay(verifier, token, PLANNER, 1).codes == ("budget_exceeded",)
    assert verifier.complete(decision, spent=False)  # the backend says explicitly: nothing was spent
    assert spend(verifier, token, PLANNER, 10).allowed


def test_authorized_context_commits_unless_nothing_was_spent(verifier):
    token = grant(Budget("amount", 20))
    call = Invocation("bank.transfer", {"amount": 10}, at=NOW)
    with pytest.raises(NothingSpent):
        with verifier.authorized(token, call, Proof.create(PLANNER, token, call, at=NOW)):
            raise NothingSpent("the card was declined before any money moved")
    with pytest.raises(RuntimeError):  # an error is not proof that nothing was spent: it commits
        with verifier.authorized(token, call, Proof.create(PLANNER, token, call, at=NOW)):
            raise RuntimeError("the bank was down")
    with verifier.authorized(token, call, Proof.create(PLANNER, token, call, at=NOW)) as decision:
        assert decision.allowed
    with pytest.raises(AuthorizationDenied) as denied:
        with verifier.authorized(token, call, Proof.create(PLANNER, token, call, at=NOW)):
            pytest.fail("the body of a denied call must not run")
    assert denied.value.decision.codes == ("budget_exceeded",)
    assert denied.value.message.startswith("denied: amount 10 exceeds the budget")


def test_call_limit(verifier):
    token = grant(CallLimit(2))
    assert spend(verifier, token, PLANNER, 1).allowed
    assert spend(verifier, token, PLANNER, 1).allowed
    denied = pay(verifier, token, PLANNER, 1)
    assert denied.codes == ("calls_exceeded",)
    assert denied.reasons[0].message == "the limit of 2 calls in total is used up"


def test_calendar_window_starts_afresh_each_day(verifier):
    token = grant(Budget("amount", 10, "day"), CallLimit(1, "day"))
    assert spend(verifier, token, PLANNER, 10, at=NOW + 10).allowed
    assert pay(verifier, token, PLANNER, 1, at=NOW + 20).codes == ("budget_exceeded", "calls_exceeded")
    assert spend(verifier, token, PLANNER, 10, at=NOW + 86400).allowed  # the next UTC day


def test_rolling_window(verifier):
    token = grant(Budget("amount", 10, "1h"))
    assert spend(verifier, token, PLANNER, 10, at=NOW).allowed
    assert pay(verifier, token, PLANNER, 1, at=NOW + 3599).codes == ("budget_exceeded",)
    assert spend(verifier, token, PLANNER, 10, at=NOW + 3600).allowed


def test_sub_agent_spends_count_against_every_ancestor_budget(verifier):
    parent = grant(Budget("amount", 100))
    child = parent.delegate(PLANNER, PAYER.public_key, Budget("amount", 30))
    sibling = parent.delegate(PLANNER, OTHER.public_key, Budget("amount", 50))
    assert spend(verifier, child, PAYER, 30).allowed
    denied = pay(verifier, child, PAYER, 1)
    assert denied.codes == ("budget_exceeded",) and denied.reasons[0].caveat_index == 4  # the child's own
    assert spend(verifier, sibling, OTHER, 50).allowed
    assert spend(verifier, parent, PLANNER, 20).allowed  # 30 + 50 + 20 = 100
    both = pay(verifier, sibling, OTHER, 1)
    assert [r.caveat_index for r in both.reasons] == [3, 4]  # the parent's budget and the sibling's own
    by_caveat = {s.caveat_index: s.committed for s in verifier.budgets(child, at=NOW)}
    assert by_caveat == {3: 100, 4: 30}


def test_atomic_across_budgets_no_partial_reservation(verifier):
    parent = grant(Budget("amount", 100))
    child = parent.delegate(PLANNER, PAYER.public_key, Budget("amount", 10))
    assert pay(verifier, child, PAYER, 11).codes == ("budget_exceeded",)  # the child's own cap
    assert {s.caveat_index: s.reserved for s in verifier.budgets(child, at=NOW)} == {3: 0, 4: 0}


def test_budget_argument_must_be_a_non_negative_amount(verifier):
    token = grant(Budget("amount", 10))
    assert pay(verifier, token, PLANNER, -5).codes == ("arg_out_of_range",)
    assert pay(verifier, token, PLANNER, "ten").codes == ("arg_invalid",)
    assert pay(verifier, token, PLANNER, "5").codes == ("arg_invalid",)  # text is never an amount
    call = Invocation("bank.transfer", {}, at=NOW)
    assert verifier.authorize(token, call, Proof.create(PLANNER, token, call, at=NOW)).codes == ("arg_missing",)


def test_revoking_a_hop_denies_it_and_its_descendants(verifier):
    parent = grant()
    child = parent.delegate(PLANNER, PAYER.public_key)
    grandchild = child.delegate(PAYER, OTHER.public_key)
    ok = pay(verifier, grandchild, OTHER, 1)
    assert ok.allowed
    child_hop = ok.chain[1].id
    verifier.revoke(child_hop, "payments agent compromised")
    assert pay(verifier, child, PAYER, 1).codes == ("revoked",)
    denied = pay(verifier, grandchild, OTHER, 1)
    assert denied.codes == ("revoked",)
    assert denied.reasons[0].message == f"hop 1 of this token (id {child_hop}) was revoked: payments agent compromised"
    assert pay(verifier, parent, PLANNER, 1).allowed  # the parent is untouched
    verifier.revoke(parent.id)
    assert pay(verifier, parent, PLANNER, 1).codes == ("revoked",)
    with pytest.raises(CapkitError):
        verifier.revoke("not an id")


def test_replay_is_refused_through_the_store(verifier):
    token = grant()
    call = Invocation("bank.transfer", {"amount": 1}, at=NOW)
    proof = Proof.create(PLANNER, token, call, at=NOW)
    assert verifier.authorize(token, call, proof).allowed
    assert verifier.authorize(token, call, proof).codes == ("proof_replayed",)


class _BrokenStore(MemoryStore):
    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def apply(self, request, now):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer", [StoreUnavailable("connection refused"), TimeoutError("slow"),
                                    RuntimeError("confused"), "garbage", None, 42])
def test_an_unusable_store_denies_with_state_unavailable(answer):
    verifier = Verifier(KEYRING, location="bank", store=_BrokenStore(answer), clock=lambda: NOW)
    token = grant(Budget("amount", 10))
    decision = pay(verifier, token, PLANNER, 1)
    assert decision.codes == ("state_unavailable",)
    assert not decision.allowed


def test_complete_raises_when_the_store_fails():
    class FailingCommit(MemoryStore):
        def commit(self, reservation, now):
            raise OSError("gone")

    verifier = Verifier(KEYRING, location="bank", store=FailingCommit(), clock=lambda: NOW)
    token = grant(Budget("amount", 10))
    decision = pay(verifier, token, PLANNER, 1)
    with pytest.raises(StoreUnavailable):
        verifier.complete(decision)


def test_budget_caveat_validation():
    for bad in (("amount", -1), ("amount", 0.5), ("amount", "1e3"), ("1bad", 5), ("amount", 5, "fortnight"),
                ("amount", 5, 0), ("amount", 5, 10**9)):
        with pytest.raises(InvalidCaveat):
            Budget(*bad)
    for bad in (-1, 1.5, True, 10**13):
        with pytest.raises(InvalidCaveat):
            CallLimit(bad)
    assert Budget("amount", 5, "24h").window == 86400
    assert Budget("amount", "12.50").describe() == "amount at most 12.5 in total (cumulative)"
    assert CallLimit(1, "week").describe() == "at most 1 call per calendar week (UTC)"


def test_scoped_budgets_count_only_their_tools(verifier):
    token = mint(KEYRING, Holder(PLANNER.public_key), Tools("bank.*"),
                 Budget("amount", 10, tool="bank.transfer"), CallLimit(1, tool="bank.balance"), location="bank")
    assert spend(verifier, token, PLANNER, 10).allowed
    assert pay(verifier, token, PLANNER, 1).codes == ("budget_exceeded",)
    balance = Invocation("bank.balance", {}, at=NOW)
    first = verifier.authorize(token, balance, Proof.create(PLANNER, token, balance, at=NOW))
    assert first.allowed and verifier.complete(first)
    second = verifier.authorize(token, balance, Proof.create(PLANNER, token, balance, at=NOW))
    assert second.codes == ("calls_exceeded",)
    wire = Invocation("bank.wire", {"amount": 1000}, at=NOW)
    assert verifier.authorize(token, wire, Proof.create(PLANNER, token, wire, at=NOW)).allowed
