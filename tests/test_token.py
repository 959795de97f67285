"""Token: mint, attenuate, serialize, parse; the V2 layout and the text form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit import InvalidCaveat, Keyring, KeyringError, MalformedToken, Token, mint

from capkit.errors import TokenTooLarge
from capkit.caveats import Max, Tools, UnknownCaveat
from capkit.core.limits import Limits
from capkit.core.token import binary
from capkit.core import chain
from capkit.core.token.identifier import Identifier

from .conftest import SECRET
from .strategies import caveat as caveat_strategy


def test_mint_attenuate_parse_round_trip(keyring, rent_token):
    text = rent_token.serialize()
    assert text.startswith("capkit_")
    parsed = Token.parse(text)
    assert parsed == rent_token
    assert parsed.serialize() == text
    assert Token.parse(text.encode("ascii")) == rent_token
    assert Token.parse(rent_token.to_bytes()) == rent_token
    assert Token.parse("  " + text + "\n") == rent_token  # surrounding whitespace is ignored
    narrower = parsed.attenuate(Max("amount", 50))
    assert narrower.caveats == rent_token.caveats + (Max("amount", 50),)
    assert narrower.id == rent_token.id and narrower.key_id == "k1" and narrower.location == "bank"
    assert narrower.signature != rent_token.signature
    assert len(rent_token.id) == 22


def test_attenuation_extends_the_hmac_chain(keyring, rent_token):
    narrower = rent_token.attenuate(Max("amount", 50))
    k0 = keyring.chain_key("k1", "bank")
    assert chain.verify(k0, narrower.identifier.encode(), narrower.encoded_caveats, narrower.signature)
    assert narrower.signature == chain.extend(rent_token.signature, [Max("amount", 50).encode()])


def test_str_and_repr_never_show_the_token(rent_token):
    text = rent_token.serialize()
    for shown in (str(rent_token), repr(rent_token), f"{rent_token}"):
        assert text not in shown
        assert rent_token.signature.hex() not in shown
        assert "Token(id=" in shown


def test_mint_refuses_a_token_without_caveats_unless_asked(keyring):
    with pytest.raises(InvalidCaveat, match="unrestricted"):
        mint(keyring, location="bank")
    assert mint(keyring, location="bank", unrestricted=True).caveats == ()


def test_mint_validates_location_and_key(keyring):
    for bad in ("", "has space", "a\x00b", "x" * 256):
        with pytest.raises(KeyringError):
            mint(keyring, Tools("a"), location=bad)
    no_active = keyring.for_location("bank")
    assert no_active.active_key_id == "k1"


def test_mint_is_deterministic_given_a_token_id(keyring):
    a = mint(keyring, Tools("a"), location="bank", token_id=bytes(16))
    b = mint(keyring, Tools("a"), location="bank", token_id=bytes(16))
    assert a.serialize() == b.serialize()
    assert a.id == "AAAAAAAAAAAAAAAAAAAAAA"


def test_caveat_count_and_size_limits_apply_when_building(keyring):
    limits = Limits(max_caveats=3)
    token = mint(keyring, Tools("a"), Tools("b"), location="bank", limits=limits)
    token = token.attenuate(Tools("c"), limits=limits)
    with pytest.raises(TokenTooLarge):
        token.attenuate(Tools("d"), limits=limits)
    with pytest.raises(TokenTooLarge):
        mint(keyring, *[Tools("a")] * 4, location="bank", limits=limits)
    with pytest.raises(TokenTooLarge):
        mint(keyring, Tools(*[f"t{i:03}" for i in range(200)]), location="bank", limits=Limits(max_caveat_bytes=100))


def test_v2_layout_is_exactly_as_specified(keyring):
    token = mint(keyring, Tools("a"), location="bank", token_id=bytes(16))
    raw = token.to_bytes()
    ident = token.identifier.encode()
    cav = Tools("a").encode()
    expected = (
        b"\x02"
        + b"\x01\x04bank"
        + b"\x02" + bytes([len(ident)]) + ident
        + b"\x00"
        + b"\x02" + bytes([len(cav)]) + cav + b"\x00"
        + b"\x00"
        + b"\x06\x20" + token.signature
    )
    assert raw == expected


def test_identifier_is_canonical_json():
    ident = Identifier("k1", "AAAAAAAAAAAAAAAAAAAAAA")
    assert ident.encode() == b'{"kid":"k1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}'
    assert Identifier.decode(ident.encode()) == ident
    for bad in (
        b'{"kid":"k1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":2}',
        b'{"tid":"AAAAAAAAAAAAAAAAAAAAAA","kid":"k1","v":1}',
        b'{"kid":"k 1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}',
        b'{"kid":"k1","tid":"AAAAAAAAAAAAAAAAAAAAAB","v":1}',  # non-zero trailing bits
        b'{"kid":"k1","tid":"AAAA","v":1}',
        b"k1:AAAA",
    ):
        with pytest.raises(MalformedToken):
            Identifier.decode(bad)


def _field(kind: int, data: bytes) -> bytes:
    return bytes([kind, len(data)]) + data


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda raw: b"", "empty"),
        (lambda raw: b"\x01" + raw[1:], "version 2"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:10], "truncated"),
        (lambda raw: raw + b"\x00", "trailing"),
        (lambda raw: raw.replace(b"\x06\x20", b"\x06\x1f", 1)[:-1], "32 bytes"),
        (lambda raw: raw.replace(b"\x01\x04bank", b"", 1), "location should be"),
        (lambda raw: raw.replace(b"\x01\x04bank", b"\x01\x84\x00bank", 1), "non-minimal"),
    ],
)
def test_binary_decoding_is_strict(keyring, mutate, why):
    raw = mint(keyring, Tools("a"), location="bank", token_id=bytes(16)).to_bytes()
    with pytest.raises(MalformedToken, match=why):
        binary.decode(mutate(raw))


def test_third_party_caveats_are_read_exactly_and_a_bare_location_is_refused(keyring):
    """Third-party caveats (issue 13) decode to their three fields and re-encode to the same bytes; a caveat
    location without a verification id, or fields out of order, is not a macaroon caveat."""
    token = mint(keyring, Tools("a"), location="bank", token_id=bytes(16))
    ident = token.identifier.encode()
    head = b"\x02" + _field(1, b"bank") + _field(2, ident) + b"\x00"
    tail = b"\x00" + _field(6, bytes(32))
    with_vid = head + _field(2, b"cid") + _field(4, b"vid") + b"\x00" + tail
    with_location = head + _field(1, b"https://auth") + _field(2, b"cid") + _field(4, b"v") + b"\x00" + tail
    assert binary.decode(with_vid).caveats == (binary.RawThirdParty(b"cid", b"vid"),)
    assert binary.decode(with_location).caveats == (binary.RawThirdParty(b"cid", b"v", b"https://auth"),)
    for raw in (with_vid, with_location):
        assert binary.encode(binary.decode(raw)) == raw
    bare_location = head + _field(1, b"https://auth") + _field(2, b"cid") + b"\x00" + tail
    vid_first = head + _field(4, b"v") + _field(2, b"cid") + b"\x00" + tail
    two_vids = head + _field(2, b"cid") + _field(4, b"v") + _field(4, b"v") + b"\x00" + tail
    for raw in (bare_location, vid_first, two_vids):
        with pytest.raises(MalformedToken):
            binary.decode(raw)


def test_text_form_is_strict(rent_token):
    text = rent_token.serialize()
    body = text[len("capkit_"):]
    for bad, why in [
        (body, "capkit_"),
        ("Capkit_" + body, "capkit_"),
        (text + "=", "base64url"),
        (text[:12] + "/" + text[13:], "base64url"),
        (text[:12] + "+" + text[13:], "base64url"),
        (text[:-1] + "!", "base64url"),
        (text + "A", "base64url|trailing"),  # an impossible length, or a stray byte
        ("capkit_", "empty"),
        ("capkit_" + "é" * 10, "base64url"),
    ]:
        with pytest.raises(MalformedToken, match=why):
            Token.parse(bad)
    with pytest.raises(MalformedToken):
        Token.parse(b"capkit_\xff\xfe")
    with pytest.raises(MalformedToken):
        Token.parse(12345)  # type: ignore[arg-type]


def test_oversized_inputs_are_refused_before_work(keyring):
    with pytest.raises(TokenTooLarge):
        Token.parse("capkit_" + "A" * 20000)
    with pytest.raises(TokenTooLarge):
        Token.parse(b"\x02" + b"\x00" * 9000)
    token = mint(keyring, *[Tools(f"t{i}") for i in range(10)], location="bank")
    with pytest.raises(TokenTooLarge, match="more than 5 caveats"):
        Token.parse(token.serialize(), limits=Limits(max_caveats=5))


def test_unknown_caveats_survive_parsing_and_reserialization(keyring):
    token = mint(keyring, Tools("a"), location="bank")
    raw = token.to_bytes()
    # Append a caveat of an unknown kind the way any holder could (extend the chain).
    odd = b'{"k":"future_kind","x":1}'
    forged = Token(token.location, token.identifier, token.caveats + (UnknownCaveat(odd, "?"),),
                   token.encoded_caveats + (odd,), chain.extend(token.signature, [odd]))
    parsed = Token.parse(forged.serialize())
    assert isinstance(parsed.caveats[-1], UnknownCaveat)
    assert parsed.to_bytes() == forged.to_bytes()
    assert raw in (raw,)


@given(caveats=st.lists(caveat_strategy, min_size=1, max_size=3))
def test_wire_to_wire_attenuation_is_byte_identical_to_parse_attenuate_serialize(caveats):
    token = mint(Keyring.from_secret(SECRET, key_id="k1"), Tools("bank.transfer"), Max("amount", 100),
                 location="bank")
    text = token.serialize()
    assert Token.attenuate_serialized(text, *caveats) == Token.parse(text).attenuate(*caveats).serialize()


def test_wire_to_wire_attenuation_refuses_what_parse_refuses():
    token = mint(Keyring.from_secret(SECRET, key_id="k1"), Tools("x"), location="bank")
    text = token.serialize()
    for broken in (text[:-3], "capkit_" + "A" * 40, text.replace("capkit_", "capkit_proof_")):
        with pytest.raises(MalformedToken):
            Token.attenuate_serialized(broken, Max("amount", 1))
    with pytest.raises(InvalidCaveat):
        Token.attenuate_serialized(text, "amount <= 5")
    with pytest.raises(TokenTooLarge):
        Token.attenuate_serialized(text, *[Max("amount", i) for i in range(64)])


def test_messages_name_the_real_problem_of_a_damaged_or_mistaken_token():
    token = mint(Keyring.from_secret(SECRET, key_id="k1"), Tools("x"), location="bank")
    text = token.serialize()
    with pytest.raises(MalformedToken, match="cut short when copied"):
        Token.parse(text[:-10])
    with pytest.raises(MalformedToken, match="this is a capkit proof, not a token"):
        Token.parse("capkit_proof_" + "A" * 40)
    with pytest.raises(MalformedToken, match="this is a capkit discharge"):
        Token.parse("capkit_discharge_" + "A" * 40)
    with pytest.raises(MalformedToken, match="repr of a Token"):
        Token.parse(str(token))
