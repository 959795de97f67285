"""Reading a token's text and frame, without giving meaning to its caveats: what a verifier reads first.

``decode_text`` turns the text form into V2 bytes; ``decode_header`` reads the
location and identifier of decoded fields; ``tail_signature`` reads only the
last field (what a holder's proof binds).
"""

from __future__ import annotations

from .. import b64 as _b64
from ..errors import MalformedToken, TokenTooLarge
from ..limits import DEFAULT_LIMITS, Limits
from . import binary
from .identifier import Identifier, location_problem

#: Every token's text form starts with this, so secret scanners can find leaked tokens.
TEXT_PREFIX = "capkit_"
_TEXT_PREFIX_BYTES = TEXT_PREFIX.encode("ascii")

__all__ = ["TEXT_PREFIX", "decode_header", "decode_text", "tail_signature"]


def decode_header(raw: binary.RawMacaroon) -> "tuple[str, Identifier]":
    """The location and identifier of a V2 macaroon; raise ``MalformedToken``."""
    try:
        location = raw.location.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedToken("token location is not UTF-8") from None
    if location_problem(location) is not None:
        raise MalformedToken("token location is not valid location text")
    return location, Identifier.decode(raw.identifier)


def decode_text(data: "str | bytes", limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The V2 bytes of a token given as text, ASCII text bytes, or V2 bytes; raise ``MalformedToken``."""
    if type(data) is not str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedToken("a token must be text or bytes")
        data = bytes(data)
        if not data.startswith(_TEXT_PREFIX_BYTES):
            return data
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("token text is not ASCII") from None
    if len(data) > limits.max_token_text + 64:
        raise TokenTooLarge(f"token text is longer than {limits.max_token_text} characters")
    text = data.strip(" \t\r\n")
    if len(text) > limits.max_token_text:
        raise TokenTooLarge(f"token text is longer than {limits.max_token_text} characters")
    if not text.startswith(TEXT_PREFIX):
        hint = ""
        if text.startswith("capkit_proof_"):
            hint = "; this is a proof, not a token"
        elif text.startswith("capkit_pk_"):
            hint = "; this is an agent public key, not a token"
        elif text.startswith("Token(id="):
            hint = "; this is the repr of a Token: pass the Token itself, or token.serialize()"
        raise MalformedToken("token text does not start with 'capkit_'" + hint)
    for prefix, what in (("capkit_proof_", "proof"), ("capkit_pk_", "agent public key"),
                         ("capkit_discharge_", "discharge (send it with the token, not as one)")):
        if text.startswith(prefix):
            raise MalformedToken(f"this is a capkit {what}, not a token")
    try:
        return _b64.decode(text[7:])
    except ValueError:
        body = text[7:]
        if body.isascii() and not body.encode("ascii").translate(None, _ALPHABET):
            why = "it was cut short or changed (was it cut short when copied?)"
        else:
            bad = next(ch for ch in body if not (ch.isascii() and ch.encode() in _ALPHABET))
            why = f"it holds {bad!r}, which is not one of A-Z a-z 0-9 - _ (was something pasted into it?)"
        raise MalformedToken(f"token text is not valid unpadded base64url: {why}") from None


_SIGNATURE_FIELD = bytes((binary.SIGNATURE, binary.SIGNATURE_BYTES))
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TAIL_GROUPS = 14  # 42 bytes: the final EOS, the signature field and more


def _head_and_tail(text: str, limits: Limits) -> "bytes | None":
    """The first 3 and last 42+ bytes of a long token text, decoding only those characters (a proof
    needs the version byte and the tail); the whole text's alphabet and length are still checked.
    None: not a long, well-formed token text (the caller decodes it in full, with its errors)."""
    body = text[len(TEXT_PREFIX):]
    groups = len(body) // 4
    if (not text.startswith(TEXT_PREFIX) or groups <= _TAIL_GROUPS + 1 or len(text) > limits.max_token_text
            or len(body) % 4 == 1 or not body.isascii() or body.encode("ascii").translate(None, _ALPHABET)):
        return None
    try:
        return _b64.decode(body[:4]) + _b64.decode(body[(groups - _TAIL_GROUPS) * 4:])
    except ValueError:
        return None


def tail_signature(token: object, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The tail signature of a token (what a proof binds), reading only the token's frame and last field.

    For a holder signing a proof over its own token: the caveats are not decoded (the verifier does that).
    Raises ``MalformedToken`` for anything that does not end like a V2 macaroon.
    """
    if not isinstance(token, (str, bytes, bytearray, memoryview)):
        signature = getattr(token, "signature", None)  # a Token
        if isinstance(signature, bytes) and len(signature) == binary.SIGNATURE_BYTES:
            return signature
        raise MalformedToken(f"a token must be a Token, its text or its bytes, not a {type(token).__name__}")
    data = _head_and_tail(token, limits) if isinstance(token, str) else None
    if data is None:
        data = decode_text(token, limits)
    if len(data) < 3 + len(_SIGNATURE_FIELD) + binary.SIGNATURE_BYTES or data[0] != binary.VERSION:
        raise MalformedToken("token is not a version 2 macaroon")
    tail = data[-(len(_SIGNATURE_FIELD) + binary.SIGNATURE_BYTES):]
    if tail[:2] != _SIGNATURE_FIELD or data[-(binary.SIGNATURE_BYTES + 3)] != binary.EOS:
        raise MalformedToken("token does not end with a signature field")
    return tail[2:]
