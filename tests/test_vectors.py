"""Conformance: every vector in specs/vectors passes, and the checked-in file matches its generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from pymacaroons import Macaroon
from pymacaroons import Verifier as PyVerifier

from capkit import Invocation, Keyring, Verifier
from capkit.keys import _Key

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
    verifier = Verifier(_keyring(vector["verifier_keys"]), allow_bearer=vector["allow_bearer"],
                        proof_window=vector["proof_window"])
    decision = verifier.authorize(
        vector["token"], Invocation(inv["tool"], inv["args"], inv["audience"], vector["at"]), vector["proof"]
    )
    assert decision.allowed is vector["expected"]["allowed"]
    assert list(decision.codes) == vector["expected"]["codes"]
    assert [r.caveat_index for r in decision.reasons] == vector["expected"]["caveats"]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["root_key"] and not CHAIN_FAILURES & set(v["expected"]["codes"])],
    ids=lambda v: v["name"],
)
def test_vector_chain_verifies_in_pymacaroons(vector):
    """An independent implementation agrees on the HMAC chain of every vector whose chain is valid."""
    macaroon = Macaroon.deserialize(vector["token"][len("capkit_"):])
    verifier = PyVerifier()
    verifier.satisfy_general(lambda predicate: True)
    assert verifier.verify(macaroon, bytes.fromhex(vector["root_key"]))


@pytest.mark.parametrize("name", FILES)
def test_checked_in_vectors_match_the_generator(name):
    spec = importlib.util.spec_from_file_location("generate_vectors", ROOT / "specs" / "generate_vectors.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.render(name) == (VECTOR_DIR / name).read_text(encoding="utf-8"), (
        f"specs/vectors/{name} drifted from specs/generate_vectors.py; run it and review the diff"
    )
