"""Regressions for the boundary review (issue 10): what is authorized must be exactly what runs.

One test (or more) per finding, named after the attack. The HTTP findings (3-7)
are attacked through a real FastAPI app in test_integration_asgi.py, the MCP
ones (8, 9) through the real SDK client and server in test_integration_mcp.py;
the attacks below need only the verifier, a store, or a stand-in tool.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capkit import AgentKey, Invocation, Keyring, Proof, StoreUnavailable, Verifier, mint
from capkit.caveats import Budget, CallLimit, Domain, Glob, Holder, Max, OneOf, PathUnder, Prefix, Tools
from capkit.errors import CapkitError
from capkit.integrations._boundary import authorize_async, may_be_slow
from capkit.core.limits import DEFAULT_LIMITS
from capkit.state import MemoryStore, open_store
from capkit.core.state.types import Exceeded, Reservation, StateResult

from .backends import BACKENDS, store_url
from .conftest import NOW, SECRET

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
AGENT = AgentKey.from_seed(b"\x02" * 32)


def signed(verifier, token, tool, args, at=NOW, key=AGENT):
    call = Invocation(tool, args, at=at)
    return verifier.authorize(token, call, Proof.create(key, token, call, at=at))


# ------------------------------------------------------------- 1: globs and paths


@pytest.mark.parametrize("caveat, value", [
    (Glob("path", "/srv/docs/*.md"), "/srv/docs/../../etc/passwd.md"),
    (Glob("path", "/srv/docs/*.md"), "/srv/docs/a/b.md"),
    (Glob("path", "/srv/docs/**"), "/srv/docs/../../etc/passwd"),
    (Glob("path", "/srv/docs/**"), "/srv/docs/%2e%2e/secret"),
    (Glob("path", "/srv/docs/**"), "/srv/docs/\u2025/secret"),
    (Prefix("path", "/srv/docs/"), "/srv/docs/../../etc/passwd"),
    (Prefix("path", "/srv/docs/"), "/srv/docs/./../x"),
    (Prefix("path", "/srv/docs/"), "/srv/docs\\..\\..\\x"),
    (PathUnder("path", "/srv/docs"), "/srv/docs/../x"),
])
def test_glob_and_prefix_that_cross_directories_or_climb_out_are_denied(caveat, value):
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("files.read"), caveat, location="bank")
    decision = verifier.authorize(token, Invocation("files.read", {"path": value}, at=NOW))
    assert decision.codes == ("arg_not_allowed",), decision.explain()


def test_glob_still_allows_what_it_says():
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("files.read"), Glob("path", "/srv/docs/*.md"), Glob("tree", "/srv/docs/**/*.md"),
                 location="bank")
    call = Invocation("files.read", {"path": "/srv/docs/notes.md", "tree": "/srv/docs/2026/q4/notes.md"}, at=NOW)
    assert verifier.authorize(token, call)


# ----------------------------------------------------------- 2: CPU exhaustion


def _long_globs(token, count: int):
    """What a thief can append without any key: many long patterns no value can match cheaply."""
    pattern = "*a" * 90 + "?" * 200 + "b"
    return token.attenuate(*[Glob("note", pattern) for _ in range(count)])


def test_cpu_exhaustion_by_a_thief_costs_only_the_proof_check():
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    token = _long_globs(mint(KEYRING, Holder(AGENT.public_key), Tools("x"), location="bank"), 16)
    thief = AgentKey.from_seed(b"\xee" * 32)
    huge = {"note": "a" * 8000}
    assert verifier.authorize(token, Invocation("x", huge, at=NOW)).codes == ("proof_missing",)
    assert signed(verifier, token, "x", huge, key=thief).codes == ("wrong_holder",)  # and learns nothing of the grant
    assert verifier.authorize(token, Invocation("x", huge, at=NOW), "capkit_proof_AAAA").codes == ("bad_proof",)


def test_cpu_exhaustion_by_the_holder_is_bounded_by_the_work_limit():
    verifier = Verifier(KEYRING, location="bank", clock=lambda: NOW)
    token = _long_globs(mint(KEYRING, Holder(AGENT.public_key), Tools("x"), location="bank"), 16)
    one_value = signed(verifier, token, "x", {"note": "a" * (DEFAULT_LIMITS.max_match_chars + 1)})
    assert set(one_value.codes) == {"too_large"}  # longer than one pattern caveat examines: never scanned
    assert "examines at most" in one_value.reasons[0].message
    many = signed(verifier, token, "x", {"note": "a" * DEFAULT_LIMITS.max_match_chars})
    assert "too_large" in many.codes  # 16 x 8,192 characters is more than the call's work limit
    assert any("characters examined" in r.message for r in many.reasons)


def test_cpu_exhaustion_by_a_list_argument_is_bounded_too():
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("x"), *[Glob("to", "*@*.example.com") for _ in range(8)], location="bank")
    decision = verifier.authorize(token, Invocation("x", {"to": ["a" * 1000 + "@x.example.com"] * 200}, at=NOW))
    assert "too_large" in decision.codes  # every element matches: it is the total work that is refused


def test_a_slow_call_never_runs_on_the_event_loop():
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("x"), Glob("note", "*x*y*z"), location="bank")
    small, large = Invocation("x", {"note": "xyz"}, at=NOW), Invocation("x", {"note": "a" * 6000}, at=NOW)
    assert not may_be_slow(verifier, token, small) and may_be_slow(verifier, token, large)
    seen: list[int] = []
    original = verifier.authorize

    def recording(*args):
        seen.append(threading.get_ident())
        return original(*args)

    verifier.authorize = recording  # type: ignore[method-assign]

    async def main():
        loop = threading.get_ident()
        await authorize_async(verifier, token, small, None)
        await authorize_async(verifier, token, large, None)
        return loop

    loop_thread = anyio.run(main)
    assert seen[0] == loop_thread and seen[1] != loop_thread


# --------------------------------------------------------------- 10: domains


@pytest.mark.parametrize("kind, value", [
    ("email", "https://example.com/@evil.com"),  # a URL to capkit, a mailbox at evil.com to a mail library
    ("email", "evil.com/@example.com"),  # an address at example.com to capkit, evil.com to a fetcher
    ("email", "evil!x@example.com"),
    ("email", "x%evil.com@example.com"),
    ("url", "evil.com/@example.com"),
    ("url", "https://example.com@evil.com/"),
    ("url", "http://127.0.0.1/"),
    ("host", "evil.com/@example.com"),
])
def test_a_domain_judged_by_its_shape_is_refused(kind, value):
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("x"), Domain("to", "example.com", kind=kind), location="bank")
    assert verifier.authorize(token, Invocation("x", {"to": value}, at=NOW)).codes == ("arg_invalid",)


def test_a_domain_caveat_must_say_what_the_value_is():
    with pytest.raises(TypeError):
        Domain("to", "example.com")  # type: ignore[call-arg]
    with pytest.raises(CapkitError):
        Domain("to", "example.com", kind="any")


# ------------------------------------------------ 11, 12: budgets given back


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    return store_url(request.param, tmp_path)


def test_wrong_pin_guesses_are_not_refunded(backend):
    # CallLimit(3) allowed 43 guesses when every wrong guess returned an error and was refunded.
    verifier = Verifier(KEYRING, location="bank", store=open_store(backend), clock=lambda: NOW)
    token = mint(KEYRING, Holder(AGENT.public_key), Tools("card.unlock"), CallLimit(3), location="bank")
    allowed = 0
    for guess in range(10):
        decision = signed(verifier, token, "card.unlock", {"pin": f"{guess:04d}"})
        if decision.allowed:
            allowed += 1
            verifier.complete(decision, spent=False)  # even "nothing spent" does not give an attempt back
    assert allowed == 3
    verifier.close()


def test_a_tool_that_paid_then_failed_keeps_its_spend(backend):
    verifier = Verifier(KEYRING, location="bank", store=open_store(backend), clock=lambda: NOW)
    token = mint(KEYRING, Holder(AGENT.public_key), Tools("pay"), Budget("amount", 500), location="bank")
    spent = Decimal(0)
    for _ in range(6):
        decision = signed(verifier, token, "pay", {"amount": 500})
        if decision.allowed:
            spent += 500
            with pytest.raises(RuntimeError):
                with _ran(verifier, decision):
                    raise RuntimeError("output validation failed after the payment went out")
    assert spent == 500
    verifier.close()


class _ran:
    """Settle ``decision`` as an adapter does when the tool raised."""

    def __init__(self, verifier, decision):
        self.verifier, self.decision = verifier, decision

    def __enter__(self):
        return self.decision

    def __exit__(self, *exc):
        self.verifier.complete(self.decision)  # an error is not proof that nothing was spent
        return False


def test_a_slow_tool_that_outlives_its_lease_does_not_let_the_budget_be_spent_twice(backend):
    clock = [NOW]
    verifier = Verifier(KEYRING, location="bank", store=open_store(backend), clock=lambda: clock[0],
                        reservation_timeout=30)
    token = mint(KEYRING, Holder(AGENT.public_key), Tools("pay"), Budget("amount", 500), location="bank")
    slow = signed(verifier, token, "pay", {"amount": 500})
    assert slow.allowed
    clock[0] = NOW + 31  # the tool is still running; its lease ran out
    again = signed(verifier, token, "pay", {"amount": 500}, at=NOW + 31)
    assert again.codes == ("budget_exceeded",)  # the lapsed reservation still counts
    assert verifier.complete(slow)  # the slow tool's late commit is not refused
    assert [s.committed for s in verifier.budgets(token)] == [500]
    verifier.close()


def test_a_store_failure_at_commit_is_retried_and_never_becomes_a_release():
    class Flaky(MemoryStore):
        def __init__(self):
            super().__init__()
            self.commits = self.releases = 0

        def commit(self, reservation, now):
            self.commits += 1
            if self.commits < 3:
                raise StoreUnavailable("connection reset")
            return super().commit(reservation, now)

        def release(self, reservation, now, *, keep_attempts=True):
            self.releases += 1
            return super().release(reservation, now, keep_attempts=keep_attempts)

    store = Flaky()
    verifier = Verifier(KEYRING, location="bank", store=store, clock=lambda: NOW)
    token = mint(KEYRING, Holder(AGENT.public_key), Tools("pay"), Budget("amount", 500), location="bank")
    assert verifier.complete(signed(verifier, token, "pay", {"amount": 100}))
    assert (store.commits, store.releases) == (3, 0)

    class Down(MemoryStore):
        def commit(self, reservation, now):
            raise StoreUnavailable("gone")

        def release(self, reservation, now, *, keep_attempts=True):
            raise AssertionError("a failed commit must never be turned into a release")

    verifier = Verifier(KEYRING, location="bank", store=Down(), clock=lambda: NOW)
    with pytest.raises(StoreUnavailable):
        verifier.complete(signed(verifier, token, "pay", {"amount": 100}))


# --------------------------------------------------------------- 13: locations


def test_a_master_keyring_does_not_accept_every_location():
    sandbox = mint(KEYRING, Tools("*"), location="sandbox")
    with pytest.raises(CapkitError, match="say which this verifier serves"):
        Verifier(KEYRING)
    bank = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    decision = bank.authorize(sandbox, Invocation("bank.transfer", {"amount": 10**6}, at=NOW))
    assert decision.codes == ("wrong_location",)
    assert "this verifier serves bank" in decision.reasons[0].message


# ------------------------------------------------------- 14: replay at the edge


def test_a_proof_replayed_at_the_edge_of_its_window_is_refused(backend):
    token = mint(KEYRING, Holder(AGENT.public_key), Tools("pay"), location="bank")
    store = open_store(backend)
    call = Invocation("pay", {"n": 1}, at=NOW)
    proof = Proof.create(AGENT, token, call, at=NOW)
    first = Verifier(KEYRING, location="bank", store=store, proof_window=60, clock=lambda: NOW)
    assert first.authorize(token, call, proof)
    edge = Invocation("pay", {"n": 1}, at=NOW + 60)  # still fresh (|now - at| = window) ...
    assert first.authorize(token, edge, proof).codes == ("proof_replayed",)  # ... and still remembered
    # A verifier with a wider window on the same store: the nonce outlives every window.
    wide = Verifier(KEYRING, location="bank", store=store, proof_window=300, clock=lambda: NOW)
    for late in (61, 100, 299, 300):
        assert wide.authorize(token, Invocation("pay", {"n": 1}, at=NOW + late), proof).codes == ("proof_replayed",)
    store.close()


def test_no_verifier_accepts_a_window_wider_than_the_nonce_retention():
    with pytest.raises(CapkitError, match="1 to 300 seconds"):
        Verifier(KEYRING, location="bank", proof_window=301)


# ----------------------------------------------------- 15: numbers as identifiers


@pytest.mark.parametrize("spelling", ["0123", "000000123", "123.000", "123"])
def test_text_spellings_of_a_number_do_not_pass_a_numeric_caveat(spelling):
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("x"), OneOf("acct", [123]), Max("amount", 50), location="bank")
    decision = verifier.authorize(token, Invocation("x", {"acct": spelling, "amount": spelling}, at=NOW))
    assert decision.codes == ("arg_invalid", "arg_invalid")


def test_an_identifier_with_leading_zeros_is_text():
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("x"), OneOf("acct", ["00123"]), location="bank")
    assert verifier.authorize(token, Invocation("x", {"acct": "00123"}, at=NOW))
    for other in ("0123", "123", 123):
        assert not verifier.authorize(token, Invocation("x", {"acct": other}, at=NOW))


# ------------------------------------------------- 16: crashes are not denials


class _Answering(MemoryStore):
    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def apply(self, request, now):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


_garbage = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.binary(max_size=5), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.builds(StateResult, revoked=st.one_of(st.none(), st.tuples(st.text(max_size=5), st.none()), st.just(5)),
              replayed=st.one_of(st.booleans(), st.just("yes")),
              exceeded=st.one_of(st.just(()), st.tuples(st.builds(Exceeded, st.text(max_size=5), st.just(Decimal(1)),
                                                                  st.just(Decimal(1)), st.just(Decimal(1))))),
              reservation=st.one_of(st.none(), st.builds(Reservation, st.text(max_size=5), st.just("f"),
                                                         st.floats(allow_nan=False)))),
    st.sampled_from([ValueError("x"), KeyError("k"), TimeoutError(), OSError("gone"), RuntimeError("?"),
                     StoreUnavailable("down"), MemoryError(), RecursionError()]),
)


@given(answer=_garbage, metered=st.booleans(), bound=st.booleans())
@settings(max_examples=300)
def test_a_store_that_answers_anything_denies_with_state_unavailable_never_internal_error(answer, metered, bound):
    verifier = Verifier(KEYRING, location="bank", store=_Answering(answer), allow_bearer=True, clock=lambda: NOW)
    caveats = [Tools("pay")] + ([Budget("amount", 10)] if metered else [])
    if bound:
        token = mint(KEYRING, Holder(AGENT.public_key), *caveats, location="bank")
        decision = signed(verifier, token, "pay", {"amount": 1})
    else:
        token = mint(KEYRING, *caveats, location="bank")
        decision = verifier.authorize(token, Invocation("pay", {"amount": 1}, at=NOW))
    assert "internal_error" not in decision.codes
    if not decision.allowed:
        assert decision.codes in (("state_unavailable",), ("revoked",), ("proof_replayed",), ("budget_exceeded",))
    else:  # only a well-formed answer that is exactly right for this request allows
        assert isinstance(answer, StateResult) and answer.revoked is None and not answer.exceeded
