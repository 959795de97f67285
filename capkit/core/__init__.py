"""The trusted core: everything a verifier must trust, and nothing else.

The flow, one module per step::

    mint ──> attenuate / delegate ──> present ──> verify ──> decide
    token/token.py                    holder.py   token/    verifier.py, decision.py
    (mint, attenuate, delegate)       invocation.py verify.py

Underneath: ``token/binary.py`` and ``token/chain.py`` (the macaroon wire
format and HMAC chain), ``caveats/`` (typed caveats), ``keys.py`` (keyrings,
HKDF per location), ``messages.py`` (what agents sign), ``ed25519.py``,
``publickey.py``, ``canonical.py``, ``b64.py``, ``text.py``, ``limits.py``,
``errors.py`` (the one error root) and ``codes.py``, and ``state/`` (the
ledger algorithm and the memory store). The core imports nothing outside
itself but the standard library, ``attrs``, ``cryptography``, ``PyNaCl`` and
``idna``; ``tests/test_layout.py`` holds it to that.
"""
