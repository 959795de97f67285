"""The libmacaroons V2 binary layout, strictly: encode and decode, nothing else.

Layout (specs/SPEC.md, "Binary format")::

    0x02
    LOCATION(1) varint-len bytes      capkit requires it
    IDENTIFIER(2) varint-len bytes
    EOS(0)
    for each caveat:
      first party:    IDENTIFIER(2) varint-len bytes  EOS(0)
      third party:    [LOCATION(1) bytes] IDENTIFIER(2) bytes  VID(4) bytes  EOS(0)
    EOS(0)
    SIGNATURE(6) varint-len=32 bytes

Decoding accepts only what ``encode`` produces: minimal varints, fields in this
order, no unknown fields, no trailing bytes. A third-party caveat (specs/SPEC.md
§19) is a ``RawThirdParty``; a location without a verification id is refused.
"""

from __future__ import annotations

import attrs

from ..errors import MalformedToken, TokenTooLarge
from ..limits import DEFAULT_LIMITS, Limits

VERSION = 2
EOS, LOCATION, IDENTIFIER, VID, SIGNATURE = 0, 1, 2, 4, 6
SIGNATURE_BYTES = 32
_TRUNCATED = "token is truncated: it ends before its last field (was it cut short when copied?)"


@attrs.frozen
class RawThirdParty:
    """A third-party caveat's fields: its id (what the discharge is named by), verification id, location."""

    cid: bytes
    vid: bytes = attrs.field(repr=False)
    location: bytes | None = None


#: One caveat of a chain: the bytes of a first-party caveat, or a third-party caveat's fields.
RawCaveat = "bytes | RawThirdParty"


@attrs.frozen
class RawMacaroon:
    """The fields of a V2 macaroon as bytes, before any meaning is given to them."""

    location: bytes
    identifier: bytes
    caveats: "tuple[bytes | RawThirdParty, ...]"
    signature: bytes = attrs.field(repr=False)


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _field(out: bytearray, field_type: int, data: bytes) -> None:
    out.append(field_type)
    _varint(out, len(data))
    out += data


def encode(raw: RawMacaroon) -> bytes:
    """The V2 bytes of ``raw``."""
    out = bytearray((VERSION,))
    _field(out, LOCATION, raw.location)
    _field(out, IDENTIFIER, raw.identifier)
    out.append(EOS)
    for caveat in raw.caveats:
        if type(caveat) is RawThirdParty:
            if caveat.location is not None:
                _field(out, LOCATION, caveat.location)
            _field(out, IDENTIFIER, caveat.cid)
            _field(out, VID, caveat.vid)
        else:
            _field(out, IDENTIFIER, caveat)
        out.append(EOS)
    out.append(EOS)
    _field(out, SIGNATURE, raw.signature)
    return bytes(out)


def _read_field(data: bytes, pos: int, expected: int, what: str, max_len: int) -> tuple[bytes, int]:
    """Read one field of type ``expected`` at ``pos``; return its payload and the next position."""
    try:
        if data[pos] != expected:
            raise MalformedToken(f"token has an unexpected field where its {what} should be")
        length = data[pos + 1]
        pos += 2
        if length >= 0x80:  # multi-byte varint (at most 3 bytes: lengths are capped far below 2**21)
            length &= 0x7F
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << 7
            if b >= 0x80:
                b = data[pos]
                pos += 1
                if b >= 0x80:
                    raise MalformedToken("token has an oversized length field")
                length |= b << 14
            if b == 0:
                raise MalformedToken("token has a non-minimal length encoding")
    except IndexError:
        raise MalformedToken(_TRUNCATED) from None
    if length > max_len:
        raise TokenTooLarge(f"token {what} is longer than {max_len} bytes")
    end = pos + length
    if end > len(data):
        raise MalformedToken(_TRUNCATED)
    return data[pos:end], end


def _read_third_party(data: bytes, pos: int, caveats: list, max_len: int) -> int:
    """Read LOCATION IDENTIFIER VID EOS at ``pos`` into a ``RawThirdParty``; return the next position."""
    location, pos = _read_field(data, pos, LOCATION, "caveat location", 255)
    cid, pos = _read_field(data, pos, IDENTIFIER, "caveat", max_len)
    if data[pos] != VID:
        raise MalformedToken("token has a caveat location without a verification id")
    vid, pos = _read_field(data, pos, VID, "verification id", max_len)
    if data[pos] != EOS:
        raise MalformedToken("token has an unexpected field in a caveat")
    caveats.append(RawThirdParty(cid, vid, location))
    return pos + 1


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> RawMacaroon:
    """Parse V2 bytes; raise ``MalformedToken`` (or ``TokenTooLarge``) for anything else."""
    if len(data) > limits.max_token_bytes:
        raise TokenTooLarge(f"token is larger than {limits.max_token_bytes} bytes")
    if not data:
        raise MalformedToken("token is empty")
    if data[0] != VERSION:
        raise MalformedToken("token is not a version 2 macaroon")
    location, pos = _read_field(data, 1, LOCATION, "location", 255)
    identifier, pos = _read_field(data, pos, IDENTIFIER, "identifier", limits.max_identifier_bytes)
    caveats: "list[bytes | RawThirdParty]" = []
    max_caveats, max_caveat_bytes = limits.max_caveats, limits.max_caveat_bytes
    try:
        if data[pos] != EOS:
            raise MalformedToken("token header has an unexpected extra field")
        pos += 1
        while True:
            field_type = data[pos]
            if field_type == EOS:
                pos += 1
                break
            if len(caveats) >= max_caveats:
                raise TokenTooLarge(f"token has more than {max_caveats} caveats")
            if field_type == LOCATION:
                pos = _read_third_party(data, pos, caveats, max_caveat_bytes)
                continue
            if field_type != IDENTIFIER:
                raise MalformedToken("token has an unexpected field in its caveats")
            length = data[pos + 1]
            if length < 0x80:  # the common case inline: a caveat shorter than 128 bytes
                end = pos + 2 + length
                if end > len(data):
                    raise MalformedToken(_TRUNCATED)
                caveats.append(data[pos + 2:end])
                pos = end
            else:
                caveat, pos = _read_field(data, pos, IDENTIFIER, "caveat", max_caveat_bytes)
                caveats.append(caveat)
            end = data[pos]
            if end == VID:  # a third-party caveat without a location
                vid, pos = _read_field(data, pos, VID, "verification id", max_caveat_bytes)
                caveats[-1] = RawThirdParty(caveats[-1], vid)  # type: ignore[arg-type]
                end = data[pos]
            if end != EOS:
                raise MalformedToken("token has an unexpected field in a caveat")
            pos += 1
    except IndexError:
        raise MalformedToken(_TRUNCATED) from None
    signature, pos = _read_field(data, pos, SIGNATURE, "signature", SIGNATURE_BYTES)
    if len(signature) != SIGNATURE_BYTES:
        raise MalformedToken("token signature is not 32 bytes")
    if pos != len(data):
        raise MalformedToken("token has trailing bytes after its signature")
    return RawMacaroon(location, identifier, tuple(caveats), signature)
