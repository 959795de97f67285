"""capkit tokens are V2 macaroons: pymacaroons reads and verifies them, and capkit reads its macaroons."""

from __future__ import annotations

from pymacaroons import MACAROON_V2, Macaroon
from pymacaroons import Verifier as PyVerifier
from pymacaroons.exceptions import MacaroonInvalidSignatureException
import pytest

from capkit import Invocation, Token, Verifier, mint
from capkit.caveats import Eq, Max, Tools
from capkit.compat import pymacaroons as compat

from .conftest import NOW, call

ALLOWED = dict(recipient="landlord", amount=1250, currency="USD")


def test_capkit_token_deserializes_in_pymacaroons_with_the_same_fields(keyring, rent_token):
    token = rent_token.attenuate(Max("amount", 50))
    # pymacaroons' own text deserializer, on the base64url body of the text form.
    macaroon = Macaroon.deserialize(token.serialize()[len("capkit_"):])
    assert macaroon.version == MACAROON_V2
    assert macaroon.location == "bank"
    assert macaroon.identifier_bytes == token.identifier.encode()
    assert [c.caveat_id_bytes for c in macaroon.caveats] == list(token.encoded_caveats)
    assert macaroon.signature_bytes == token.signature.hex().encode()


def test_capkit_token_signature_verifies_in_pymacaroons(keyring, rent_token):
    token = rent_token.attenuate(Max("amount", 50))
    macaroon = compat.to_macaroon(token)
    key = compat.root_key(keyring, token)
    accept_all = PyVerifier()
    accept_all.satisfy_general(lambda predicate: True)
    assert accept_all.verify(macaroon, key)
    with pytest.raises(MacaroonInvalidSignatureException):
        accept_all.verify(macaroon, b"\x00" * 32)


def test_pymacaroons_with_capkit_satisfier_agrees_with_the_verifier(keyring, verifier, rent_token):
    token = rent_token.attenuate(Max("amount", 50))
    for args, expected in [(dict(ALLOWED, amount=50), True), (dict(ALLOWED, amount=51), False),
                           (dict(ALLOWED, recipient="mallory"), False)]:
        inv = Invocation("bank.transfer", args, at=NOW)
        assert compat.verify(token, keyring, inv, now=NOW) is expected
        assert verifier.authorize(token, inv).allowed is expected
    assert compat.verify(token, keyring, Invocation("bank.wire", ALLOWED, at=NOW), now=NOW) is False
    assert compat.verify(token, keyring, "not an invocation", now=NOW) is False


def test_pymacaroons_macaroon_with_capkit_caveats_verifies_in_capkit(keyring, verifier):
    minted = mint(keyring, Tools("bank.transfer"), location="bank")
    macaroon = Macaroon(location="bank", identifier=minted.identifier.encode(),
                        key=compat.root_key(keyring, minted), version=MACAROON_V2)
    macaroon.add_first_party_caveat(Tools("bank.transfer").encode())
    macaroon.add_first_party_caveat(Eq("currency", "USD").encode())
    text = macaroon.serialize()  # pymacaroons' base64url text of the V2 binary
    token = compat.from_macaroon(macaroon)
    assert token.caveats == (Tools("bank.transfer"), Eq("currency", "USD"))
    assert token.serialize() == "capkit_" + text
    assert verifier.authorize("capkit_" + text, call(currency="USD"))
    assert verifier.authorize(token, call(currency="EUR")).codes == ("arg_not_allowed",)
    # The same identifier with a macaroon-level caveat capkit does not know: denied, not ignored.
    macaroon.add_first_party_caveat("account = 3735928559")
    assert verifier.authorize(compat.from_macaroon(macaroon), call(currency="USD")).codes == ("unknown_caveat",)


def test_pymacaroons_macaroon_under_a_wrong_key_is_denied(keyring, verifier):
    minted = mint(keyring, Tools("bank.transfer"), location="bank")
    macaroon = Macaroon(location="bank", identifier=minted.identifier.encode(), key=b"k" * 32, version=MACAROON_V2)
    macaroon.add_first_party_caveat(Tools("bank.transfer").encode())
    assert verifier.authorize(compat.from_macaroon(macaroon), call()).codes == ("bad_signature",)


def test_conversion_is_lossless(keyring, rent_token):
    assert compat.from_macaroon(compat.to_macaroon(rent_token)).serialize() == rent_token.serialize()
    assert Token.parse("capkit_" + compat.to_macaroon(rent_token).serialize()) == rent_token
    assert Verifier(keyring, location="bank", clock=lambda: NOW, allow_bearer=True).authorize(compat.from_macaroon(compat.to_macaroon(rent_token)), call(**ALLOWED))
