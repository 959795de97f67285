"""The @guard decorator for plain Python tools, sync and async."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from capkit import AuthorizationDenied, CapkitError
from capkit.errors import NothingSpent
from capkit.integrations import Credentials, acting_as, current_credentials
from capkit.integrations.guard import guard

from .integration_kit import PAYER, THIEF, rent_credentials, verifier


def make_tools(v):
    ran = []

    @guard(v, tool="bank.transfer")
    def transfer(recipient: str, amount: Decimal, currency: str = "USD") -> str:
        if amount == 13:
            raise RuntimeError("the bank timed out")  # did the money move? nobody knows
        if amount == 14:
            raise NothingSpent("the card was declined")
        ran.append(("sync", recipient, amount))
        return f"sent {amount} to {recipient}"

    @guard(v, tool="bank.transfer")
    async def atransfer(recipient: str, amount: Decimal, currency: str = "USD") -> str:
        if amount == 13:
            raise RuntimeError("the bank timed out")
        if amount == 14:
            raise NothingSpent("the card was declined")
        ran.append(("async", recipient, amount))
        return f"sent {amount} to {recipient}"

    return transfer, atransfer, ran


@pytest.fixture
def setup():
    v = verifier()
    credentials = rent_credentials(audience=None, tools=("bank.transfer",))
    return v, credentials, *make_tools(v)


def test_allowed_calls_run_and_commit(setup):
    v, credentials, transfer, atransfer, ran = setup
    with acting_as(credentials):
        assert transfer("landlord", Decimal(1000)) == "sent 1000 to landlord"
        assert asyncio.run(atransfer("landlord", Decimal(1000))) == "sent 1000 to landlord"
        with pytest.raises(AuthorizationDenied) as denied:  # 2,000 in total is spent
            transfer("landlord", Decimal(1))
    assert denied.value.decision.codes == ("budget_exceeded",)
    assert ran == [("sync", "landlord", 1000), ("async", "landlord", 1000)]


def test_denial_raises_and_the_body_never_runs(setup):
    v, credentials, transfer, atransfer, ran = setup
    with acting_as(credentials):
        with pytest.raises(AuthorizationDenied) as denied:
            transfer("mallory", Decimal(5000))
        with pytest.raises(AuthorizationDenied):
            asyncio.run(atransfer("mallory", Decimal(5)))
    assert set(denied.value.decision.codes) == {"arg_not_allowed", "arg_out_of_range"}
    assert "recipient 'mallory' is not one of 'landlord'" in str(denied.value)
    assert ran == []


def test_an_error_commits_the_spend_and_only_nothing_spent_gives_it_back(setup):
    # Finding 11 of the boundary review: a tool that paid and then failed got its spend refunded.
    v, credentials, transfer, atransfer, ran = setup
    with acting_as(credentials):
        with pytest.raises(RuntimeError):
            transfer("landlord", Decimal(13))
        with pytest.raises(RuntimeError):
            asyncio.run(atransfer("landlord", Decimal(13)))
        with pytest.raises(NothingSpent):
            transfer("landlord", Decimal(14))
        with pytest.raises(NothingSpent):
            asyncio.run(atransfer("landlord", Decimal(14)))
        transfer("landlord", Decimal(1250))
        with pytest.raises(AuthorizationDenied) as denied:  # 26 went to the ambiguous failures
            transfer("landlord", Decimal(750))
        assert "724 of 2000 left" in str(denied.value)
        transfer("landlord", Decimal(724))
    assert [r[2] for r in ran] == [1250, 724]


def test_explicit_credentials_and_missing_ones(setup):
    v, credentials, transfer, atransfer, ran = setup
    assert transfer("landlord", Decimal(1), capkit=credentials) == "sent 1 to landlord"
    assert current_credentials() is None
    with pytest.raises(CapkitError, match="no capkit credentials"):
        transfer("landlord", Decimal(1))
    stolen = Credentials(credentials.token, THIEF)
    with pytest.raises(AuthorizationDenied) as denied:
        transfer("landlord", Decimal(1), capkit=stolen)
    assert denied.value.decision.codes == ("wrong_holder",)


def test_concurrent_tasks_see_their_own_credentials(setup):
    v, credentials, transfer, atransfer, ran = setup
    stolen = Credentials(credentials.token, THIEF)

    async def as_agent(creds):
        with acting_as(creds):
            await asyncio.sleep(0)
            try:
                return await atransfer("landlord", Decimal(1))
            except AuthorizationDenied as exc:
                return exc.decision.codes

    async def both():
        return await asyncio.gather(as_agent(credentials), as_agent(stolen), as_agent(credentials))

    assert asyncio.run(both()) == ["sent 1 to landlord", ("wrong_holder",), "sent 1 to landlord"]


def test_a_parameter_named_capkit_is_refused():
    with pytest.raises(CapkitError):
        @guard(verifier(), tool="x")
        def tool(capkit: str) -> None: ...


def test_credentials_never_print_the_token():
    credentials = rent_credentials()
    assert credentials.token_text not in repr(credentials)
    assert PAYER.public_key.fingerprint in repr(credentials)
