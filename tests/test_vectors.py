"""Conformance: every vector in specs/vectors passes, and the checked-in file matches its generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from pymacaroons import Macaroon
from pymacaroons import Verifier as PyVerifier

from capkit import AgentKey, Invocation, Keyring, Verifier
from capkit.core.keys import _Key

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "specs" / "vectors"
FILES = ("core.json", "holder.json")
VECTORS = [v for name in FILES for v in json.loads((VECTOR_DIR / name).read_text(encoding="utf-8"))["vectors"]]
CHAIN_FAILURES = {"malformed_token", "too_large", "unknown_key", "bad_signature"}


def _keyring(keys: list[dict]) -> Keyring:
    entries = [_Key(k["key_id"], bytes.fromhex(k["secret"]), k["location"], None) for k in keys]
    return Keyring(entries, entries[0].key_id)


def test_there_are_enough_vectors():
    assert len(VECTORS) >= 100
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)
    assert any(v["expected"]["allowed"] for v in VECTORS)
    assert sum(not v["expected"]["allowed"] for v in VECTORS) >= 40


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector):
    inv = vector["invocation"]
    seed = vector.get("verifier_proof_key_seed")
    verifier = Verifier(_keyring(vector["verifier_keys"]), location=vector["verifier_locations"],
                        allow_bearer=vector["allow_bearer"],
                        proof_window=vector["proof_window"], proof_modes=vector.get("proof_modes", ["signature"]),
                        proof_key=None if seed is None else AgentKey.from_seed(bytes.fromhex(seed)))
    decision = verifier.authorize(
        vector["token"], Invocation(inv["tool"], inv["args"], inv["audience"], vector["at"]), vector["proof"],
        vector.get("discharges", ()),
    )
    assert decision.allowed is vector["expected"]["allowed"]
    assert list(decision.codes) == vector["expected"]["codes"]
    assert [r.caveat_index for r in decision.reasons] == vector["expected"]["caveats"]


def _third_party(vector: dict) -> bool:
    return any(c.third_party() for c in Macaroon.deserialize(vector["token"][len("capkit_"):]).caveats)


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["root_key"] and not CHAIN_FAILURES & set(v["expected"]["codes"])
     and (not _third_party(v) or (v["expected"]["allowed"] and v.get("discharges")))],
    ids=lambda v: v["name"],
)
def test_vector_chain_verifies_in_pymacaroons(vector):
    """An independent implementation agrees on the HMAC chain of every vector whose chain is valid (and, for a
    third-party caveat, on the discharge bound to the token)."""
    macaroon = Macaroon.deserialize(vector["token"][len("capkit_"):])
    discharges = [Macaroon.deserialize(d[len("capkit_discharge_"):]) for d in vector.get("discharges", [])]
    verifier = PyVerifier()
    verifier.satisfy_general(lambda predicate: True)
    assert verifier.verify(macaroon, bytes.fromhex(vector["root_key"]), discharges)


AUDIT_VECTORS = json.loads((VECTOR_DIR / "audit.json").read_text(encoding="utf-8"))["vectors"]


def _audit_lines(vector: dict) -> list[bytes]:
    lines = [line.encode("utf-8") + b"\n" for line in vector["lines"]]
    if vector.get("last_line_complete") is False:
        lines[-1] = lines[-1][:-1]
    return lines


@pytest.mark.parametrize("vector", AUDIT_VECTORS, ids=[v["name"] for v in AUDIT_VECTORS])
def test_audit_vector(vector):
    from capkit.audit import verify_log
    from capkit.core.publickey import PublicKey

    report = verify_log(_audit_lines(vector), PublicKey.parse(vector["audit_public_key"]), origin=vector["origin"])
    expected = vector["expected"]
    assert report.intact == expected["intact"], report.summary()
    for field in ("records", "checkpoints", "bad_line"):
        if field in expected:
            assert getattr(report, field) == expected[field], report.summary()
    assert list(report.torn) == expected.get("torn", [])


def test_a_third_party_verifies_the_audit_log_with_sha256_and_ed25519_alone():
    """specs/AUDIT.md §3-4 with raw primitives: no capkit code (only json, hashlib, base64 and PyNaCl)."""
    import base64
    import hashlib

    from nacl.signing import VerifyKey

    vector = next(v for v in AUDIT_VECTORS if v["name"] == "intact")
    public = base64.urlsafe_b64decode(vector["audit_public_key"][len("capkit_pk_"):] + "=")
    origin = vector["origin"]
    prev, seq, checkpoints = bytes(32), 0, 0
    for text in vector["lines"]:
        line = text.encode("utf-8")
        doc = json.loads(line)
        assert json.dumps(doc["h"], separators=(",", ":"), sort_keys=True) == json.dumps(
            {"prev": base64.urlsafe_b64encode(prev).rstrip(b"=").decode(), "seq": seq}, separators=(",", ":"))
        if "c" in doc:
            body, _, signature_line = doc["c"].partition("\n\n")
            assert body.split("\n") == [origin, str(seq), base64.b64encode(prev).decode()]
            name, stamp = signature_line.removeprefix("\u2014 ").rstrip("\n").split(" ")
            blob = base64.b64decode(stamp)
            key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
            assert name == origin and blob[:4] == key_id
            VerifyKey(public).verify((body + "\n").encode(), blob[4:])  # raises if forged
            checkpoints += 1
        prev, seq = hashlib.sha256(line).digest(), seq + 1
    assert checkpoints == 2 and seq == 6


@pytest.mark.parametrize("name", [*FILES, "audit.json"])
def test_checked_in_vectors_match_the_generator(name):
    spec = importlib.util.spec_from_file_location("generate_vectors", ROOT / "specs" / "generate_vectors.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.render(name) == (VECTOR_DIR / name).read_text(encoding="utf-8"), (
        f"specs/vectors/{name} drifted from specs/generate_vectors.py; run it and review the diff"
    )


def _independent_proof_check(vector: dict) -> bool:
    """Check a vector's proof per SPEC §16.4 with raw primitives (no capkit.holder code)."""
    import base64
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    raw = b64(vector["proof"][len("capkit_proof_"):])
    assert len(raw) == 121 and raw[0] == 1
    public, at, nonce, signature = raw[1:33], raw[33:41], raw[41:57], raw[57:]
    tail = b64(vector["token"][len("capkit_"):])[-32:]
    inv = vector["invocation"]
    canonical = json.dumps({"args": inv["args"], "aud": inv["audience"], "tool": inv["tool"]},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    message = b"capkit/v1/proof\x00" + tail + hashlib.sha256(canonical).digest() + at + nonce
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["proof"] and v["expected"]["allowed"]
                                    and "verifier_proof_key_seed" not in v], ids=lambda v: v["name"])
def test_allowed_proofs_verify_from_the_spec_alone(vector):  # (MAC proofs: the test below)
    assert _independent_proof_check(vector)


def test_delegation_messages_verify_from_the_spec_alone():
    """Rebuild the 3-hop vector's delegation messages from SPEC §16.3 with hmac and cryptography only."""
    import base64
    import hmac

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization

    (vector,) = [v for v in VECTORS if v["name"] == "three-hops-allowed"]
    seeds = json.loads((VECTOR_DIR / "holder.json").read_text())["agent_seeds"]
    publics = {}
    for name, seed in seeds.items():
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key()
        publics[key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)] = key
    macaroon = Macaroon.deserialize(vector["token"][len("capkit_"):])
    signature = hmac.digest(hmac.digest(b"macaroons-key-generator", bytes.fromhex(vector["root_key"]), "sha256"),
                            macaroon.identifier_bytes, "sha256")
    holder, hop, checked = None, 0, 0
    for caveat in macaroon.caveats:
        body = json.loads(caveat.caveat_id_bytes)
        if body["k"] == "holder":
            holder = base64.urlsafe_b64decode(body["pk"] + "=")
        elif body["k"] == "delegate":
            to = base64.urlsafe_b64decode(body["to"] + "=")
            sig = base64.urlsafe_b64decode(body["sig"] + "==")
            message = b"capkit/v1/delegate\x00" + signature + to + (hop + 1).to_bytes(4, "big")
            assert len(message) == 87
            publics[holder].verify(sig, message)  # raises if it does not verify
            holder, hop, checked = to, hop + 1, checked + 1
        signature = hmac.digest(signature, caveat.caveat_id_bytes, "sha256")
    assert checked == 3 and signature.hex() == macaroon.signature


def test_a_mac_proof_vector_checks_with_x25519_and_hmac_alone():
    """SPEC §16.6 with raw primitives (PyNaCl's X25519 and the standard library), no capkit code."""
    import base64
    import hashlib
    import hmac

    from nacl.bindings import crypto_scalarmult, crypto_sign_ed25519_pk_to_curve25519, crypto_sign_ed25519_sk_to_curve25519
    from nacl.bindings import crypto_sign_seed_keypair

    vector = next(v for v in VECTORS if v["name"] == "mac-proof-allowed")
    raw = base64.urlsafe_b64decode(vector["proof"][len("capkit_proof_"):] + "==")
    assert raw[0] == 2 and len(raw) == 89
    agent_pk, at, nonce, mac = raw[1:33], raw[33:41], raw[41:57], raw[57:]
    verifier_pk, verifier_sk = crypto_sign_seed_keypair(bytes.fromhex(vector["verifier_proof_key_seed"]))
    shared = crypto_scalarmult(crypto_sign_ed25519_sk_to_curve25519(verifier_sk),
                               crypto_sign_ed25519_pk_to_curve25519(agent_pk))
    prk = hmac.new(b"capkit/v1/mac-proof", shared, hashlib.sha256).digest()
    key = hmac.new(prk, agent_pk + verifier_pk + b"\x01", hashlib.sha256).digest()
    from capkit import Token
    from capkit.core.invocation import canonical_invocation

    inv = vector["invocation"]
    digest = hashlib.sha256(canonical_invocation(Invocation(inv["tool"], inv["args"], inv["audience"]))).digest()
    message = b"capkit/v1/proof\x00" + Token.parse(vector["token"]).signature + digest + at + nonce
    assert hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), mac)
