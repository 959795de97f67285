"""Shared pieces of the integration tests: one keyring, agents, and the rent grant."""

from __future__ import annotations

from capkit import AgentKey, Keyring, Verifier, mint
from capkit.caveats import Audience, Budget, Eq, Holder, Max, OneOf, Tools
from capkit.integrations import Credentials

from .conftest import SECRET

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
PLANNER = AgentKey.from_seed(b"\x02" * 32)
PAYER = AgentKey.from_seed(b"\x03" * 32)
THIEF = AgentKey.from_seed(b"\xff" * 32)
RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD"}


def rent_credentials(audience: str | None = "bank-mcp", tools: tuple[str, ...] = ("transfer", "balance")) -> Credentials:
    """The payer's delegated token: transfers to the landlord, at most 1,250, 2,000 in total."""
    pay = tools[0]
    scope = () if audience is None else (Audience(audience),)
    grant = mint(KEYRING, Holder(PLANNER.public_key), *scope, Tools(*tools),
                 OneOf("recipient", ["landlord"], tool=pay), Max("amount", 1250, tool=pay),
                 Eq("currency", "USD", tool=pay), Budget("amount", 2000, tool=pay), location="bank")
    return Credentials(grant.delegate(PLANNER, PAYER.public_key), PAYER, audience)


def verifier(**kwargs) -> Verifier:
    return Verifier(KEYRING, location="bank", **kwargs)
