"""Shared fixtures: a fixed keyring, a fixed clock, a grant for the rent task."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from capkit import Invocation, Keyring, Verifier, mint
from capkit.caveats import Eq, Expires, Max, OneOf, Tools

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")

#: 2026-12-01T00:00:00Z, the moment most tests happen at.
NOW = 1796083200
SECRET = bytes(range(32))


@pytest.fixture(scope="session", autouse=True)
def _remove_server_state_afterwards():
    """The tests keep PostgreSQL and Redis state under their own schema and prefix; remove it at the end."""
    yield
    from .backends import remove_test_state

    remove_test_state()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_secret(SECRET, key_id="k1")


@pytest.fixture
def verifier(keyring: Keyring) -> Verifier:
    return Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True)


@pytest.fixture
def rent_token(keyring: Keyring):
    """Pay the December rent of 1,250 USD to the landlord, within a day."""
    return mint(
        keyring,
        Tools("bank.transfer"),
        OneOf("recipient", ["landlord"]),
        Max("amount", 1250),
        Eq("currency", "USD"),
        Expires(NOW + 86400),
        location="bank",
    )


def call(tool: str = "bank.transfer", **args) -> Invocation:
    return Invocation(tool, args, at=NOW)


def chromium_path() -> str:
    """Debian's headless Chromium for browser tests (playwright drives it); skip without it, fail under CI=true."""
    import shutil

    path = os.environ.get("CAPKIT_TEST_CHROMIUM", "/usr/bin/chromium")
    if not shutil.which(path):
        message = f"no Chromium at {path} (apt-get install -y chromium, or set CAPKIT_TEST_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires it", pytrace=False)
        pytest.skip(message)
    pytest.importorskip("playwright")
    return path
