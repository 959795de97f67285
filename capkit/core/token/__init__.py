"""Tokens: the V2 wire format (``binary``), reading text and frames (``decode``), the typed token with
``mint``, ``attenuate`` and ``delegate`` (``token``), and verification of its chain (``verify``).

Nothing is imported here, so a verifier loads only the modules it uses.
"""
