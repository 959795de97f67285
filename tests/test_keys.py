"""Keyrings: generation, rotation, removal, per-location derivation, key files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from capkit import Keyring, KeyringError, Token, Verifier, mint

from capkit.errors import InsecureKeyFile, UnknownKey
from capkit.caveats import Tools
from capkit.core.keys import derive_location_key

from .conftest import NOW, SECRET, call


def test_generate_and_inspect():
    ring = Keyring.generate(now=NOW)
    (info,) = ring.keys
    assert info.active and info.location is None and info.created == NOW
    assert ring.active_key_id == info.key_id
    assert len(info.key_id) == 12


def test_secrets_never_in_repr(tmp_path):
    ring = Keyring.from_secret(SECRET, key_id="k1")
    assert SECRET.hex() not in repr(ring)
    assert "k1*" in repr(ring)
    for key in ring.keys:
        assert "secret" not in repr(key)


def test_location_keys_are_hkdf_derived(keyring):
    assert keyring.root_key("k1", "bank") == derive_location_key(SECRET, "bank")
    assert keyring.root_key("k1", "bank") != keyring.root_key("k1", "mail")
    assert len(keyring.root_key("k1", "bank")) == 32


def test_a_location_keyring_verifies_only_its_location(keyring):
    bank_only = keyring.for_location("bank")
    assert bank_only.root_key("k1", "bank") == keyring.root_key("k1", "bank")
    with pytest.raises(UnknownKey, match="serves location 'bank'"):
        bank_only.root_key("k1", "mail")
    bank_token = mint(keyring, Tools("bank.transfer"), location="bank")
    mail_token = mint(keyring, Tools("mail.send"), location="mail")
    verifier = Verifier(bank_only, allow_bearer=True)  # a location keyring serves its own location
    assert verifier.locations == {"bank"}
    assert verifier.authorize(bank_token, call("bank.transfer"))
    assert verifier.authorize(mail_token, call("mail.send")).codes == ("wrong_location",)
    told_to_serve_mail = Verifier(bank_only, location="mail", allow_bearer=True)
    assert told_to_serve_mail.authorize(mail_token, call("mail.send")).codes == ("unknown_key",)
    # A backend holding only the bank key can mint bank tokens, and nothing else.
    assert Verifier(keyring, location="bank", allow_bearer=True).authorize(
        mint(bank_only, Tools("x"), location="bank"), call("x"))
    with pytest.raises(UnknownKey):
        mint(bank_only, Tools("x"), location="mail")


def test_rotation_keeps_old_keys_verifying_until_removed(keyring):
    old_token = mint(keyring, Tools("a"), location="bank")
    rotated = keyring.rotate(key_id="k2", now=NOW)
    assert rotated.active_key_id == "k2"
    new_token = mint(rotated, Tools("a"), location="bank")
    assert new_token.key_id == "k2"
    verifier = Verifier(rotated, location="bank", allow_bearer=True)
    assert verifier.authorize(old_token, call("a"))
    assert verifier.authorize(new_token, call("a"))
    pruned = rotated.remove("k1")
    verifier.use_keyring(pruned)
    assert verifier.authorize(old_token, call("a")).codes == ("unknown_key",)
    assert verifier.authorize(new_token, call("a"))
    with pytest.raises(KeyringError, match="active"):
        pruned.remove("k2")
    with pytest.raises(UnknownKey):
        pruned.remove("nope")
    with pytest.raises(KeyringError, match="already"):
        rotated.rotate(key_id="k1")


def test_state_changes_with_contents(keyring):
    assert keyring.state == Keyring.from_secret(SECRET, key_id="k1").state
    assert keyring.state != Keyring.from_secret(SECRET, key_id="k2").state
    assert keyring.state != keyring.rotate().state


def test_save_and_load(tmp_path, keyring):
    path = tmp_path / "keys.json"
    keyring.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = Keyring.load(path)
    assert loaded.state == keyring.state and loaded.active_key_id == "k1"
    with pytest.raises(KeyringError, match="already exists; pass overwrite=True"):
        keyring.save(path)
    keyring.rotate().save(path, overwrite=True)
    assert len(Keyring.load(path).keys) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o606])
def test_load_refuses_group_or_world_accessible_files(tmp_path, keyring, mode):
    path = tmp_path / "keys.json"
    keyring.save(path)
    os.chmod(path, mode)
    with pytest.raises(InsecureKeyFile, match="chmod 600") as info:
        Keyring.load(path)
    assert SECRET.hex() not in str(info.value)


def test_load_reports_missing_and_corrupt_files_without_secrets(tmp_path, keyring):
    with pytest.raises(KeyringError, match="does not exist"):
        Keyring.load(tmp_path / "nope.json")
    path = tmp_path / "keys.json"
    keyring.save(path)
    doc = json.loads(path.read_text())
    cases = [
        b"not json",
        json.dumps({"format": "other"}).encode(),
        json.dumps({**doc, "version": 9}).encode(),
        json.dumps({**doc, "keys": []}).encode(),
        json.dumps({**doc, "keys": [{**doc["keys"][0], "secret": "short"}]}).encode(),
        json.dumps({**doc, "keys": [{**doc["keys"][0], "id": "bad id"}]}).encode(),
        json.dumps({**doc, "keys": [{**doc["keys"][0], "extra": 1}]}).encode(),
        json.dumps({**doc, "active": "missing"}).encode(),
        json.dumps({**doc, "keys": doc["keys"] * 2}).encode(),
    ]
    for data in cases:
        path.write_bytes(data)
        os.chmod(path, 0o600)
        with pytest.raises(KeyringError) as info:
            Keyring.load(path)
        assert doc["keys"][0]["secret"] not in str(info.value)
    os.mkdir(tmp_path / "dir")
    with pytest.raises(KeyringError):
        Keyring.load(tmp_path / "dir")


def test_from_secret_validates():
    with pytest.raises(KeyringError):
        Keyring.from_secret(b"short", key_id="k1")
    with pytest.raises(KeyringError):
        Keyring.from_secret(SECRET, key_id="")
    scoped = Keyring.from_secret(SECRET, key_id="k1", location="bank")
    assert scoped.root_key("k1", "bank") == SECRET
    token = mint(scoped, Tools("a"), location="bank")
    assert Token.parse(token.serialize()).key_id == "k1"
