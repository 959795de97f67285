"""Canonical JSON: the one byte encoding of caveats and token identifiers.

Canonical form (specs/SPEC.md, "Canonical JSON"): objects with keys sorted by
code point and unique, no insignificant whitespace, strings as raw UTF-8 with
only ``"`` and ``\\`` escaped, integers only (no floats, no exponents), and the
literals ``true``, ``false``, ``null``. ``loads`` accepts exactly the bytes
that ``dumps`` produces for the value it returns, so every value has one
encoding and a re-encoded caveat is byte-identical to the signed one.
"""

from __future__ import annotations

import json
import json.encoder as _json_encoder
from typing import Any

from .errors import NotCanonical

#: Integers must be exactly representable as IEEE doubles so that other
#: languages decode them without loss.
MAX_SAFE_INTEGER = (1 << 53) - 1

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


# The C encoder built once (``JSONEncoder.encode`` rebuilds it on every call); same output as ``_encoder``.
# No cycle markers: ``dumps`` is given caveat JSON, which is acyclic by construction.
_c_encode = None if _json_encoder.c_make_encoder is None else _json_encoder.c_make_encoder(
    None, _encoder.default, _json_encoder.encode_basestring, None, ":", ",", True, False, False
)


def dumps_text(value: Any) -> str:
    """The canonical text of ``value`` (acyclic dict/list/str/int/bool/None, as caveats produce)."""
    if _c_encode is None or type(value) is not dict:
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


def dumps(value: Any) -> bytes:
    """Encode ``value`` (acyclic dict/list/str/int/bool/None, as caveats produce) canonically."""
    return dumps_text(value).encode("utf-8")


def _reject_float(text: str) -> Any:
    raise NotCanonical("numbers must be integers")


def _reject_constant(text: str) -> Any:
    raise NotCanonical(f"{text} is not allowed")


def _safe_int(text: str) -> int:
    if len(text) > 17 or abs(int(text)) > MAX_SAFE_INTEGER:
        raise NotCanonical("an integer is outside the safe range")
    return int(text)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise NotCanonical("an object has a duplicate key")
    return obj


_decoder = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_float=_reject_float,
    parse_int=_safe_int,
    parse_constant=_reject_constant,
)


#: For callers that compare their own canonical re-encoding with the input
#: byte for byte (caveat decoding): that comparison refuses duplicate keys
#: (the re-encoding is shorter), so no hook is needed for them, and integer
#: ranges are the typed fields' business. Floats and NaN are still refused.
FAST_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)


def loads(data: bytes, *, verify: bool = True) -> Any:
    """Decode canonical JSON bytes; raise ``NotCanonical`` for anything else.

    With ``verify=False`` the byte-exact re-encoding check is skipped; the
    caller must then compare its own canonical re-encoding with ``data``
    (caveat decoding does, after building the typed value), which also
    refuses duplicate keys, whitespace, escapes and key order.
    """
    try:
        text = data.decode("utf-8")
        # raw_decode parses one value from position 0 without skipping white
        # space; anything after it is refused here.
        value, end = (_decoder if verify else FAST_DECODER).raw_decode(text)
        if end != len(text):
            raise NotCanonical("data follows the JSON value")
        if verify and dumps(value) != data:
            raise NotCanonical("not in canonical form")
    except NotCanonical:
        raise
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; a lone
        # surrogate fails in dumps with UnicodeEncodeError (also a ValueError).
        raise NotCanonical("not valid JSON text") from exc
    return value
