"""Checkpoints as C2SP signed notes (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint).

A checkpoint's text is::

    <origin>
    <size>
    <base64 head hash>

    — <origin> <base64(key id || Ed25519 signature)>

``size`` is the number of chained lines before the checkpoint and the head
hash is the SHA-256 of the last of them (standard base64, as C2SP writes
hashes). The head is a hash chain's head, not an RFC 6962 Merkle root: the
note is C2SP's, the log is a chain (specs/AUDIT.md §4). The key id is the
first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key), as signed
notes define for Ed25519; the signature is over the note's body (the first
three lines and their newlines).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

import attrs

from ..core.errors import AuditError
from ..core.publickey import PublicKey

__all__ = ["Checkpoint", "key_id", "parse_checkpoint", "sign_checkpoint", "vkey"]

_ALG_ED25519 = b"\x01"
_SIGNATURE_LINE = re.compile(r"\u2014 ([^\s+\u2014]+) ([A-Za-z0-9+/]+={0,2})\n")
_ORIGIN = re.compile(r"[!-~]{1,255}", re.ASCII)
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)


def key_id(name: str, public_key: PublicKey) -> bytes:
    """The 4-byte signed-note key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ALG_ED25519 + public_key.raw).digest()[:4]


def vkey(name: str, public_key: PublicKey) -> str:
    """The signed-note verifier key text ``name+keyid+base64(0x01||key)`` (what note tools take)."""
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(_ALG_ED25519 + public_key.raw).decode()}"


@attrs.frozen
class Checkpoint:
    """A parsed checkpoint: what it says, and whether it is signed by a given key."""

    origin: str
    size: int
    head: bytes = attrs.field(repr=False)
    body: str = attrs.field(repr=False)
    signatures: tuple[tuple[str, bytes, bytes], ...] = attrs.field(repr=False)
    text: str = attrs.field(repr=False)

    def signed_by(self, public_key: PublicKey) -> bool:
        """True if one signature line is ``public_key``'s (under the origin's name) over the body."""
        wanted = key_id(self.origin, public_key)
        return any(name == self.origin and kid == wanted and public_key.verify(sig, self.body.encode("utf-8"))
                   for name, kid, sig in self.signatures)


def _body(origin: str, size: int, head: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(head).decode('ascii')}\n"


def sign_checkpoint(origin: str, size: int, head: bytes, signer: object) -> str:
    """The signed note of a checkpoint; ``signer`` has ``public_key`` and ``sign`` (an ``AgentKey``)."""
    if not _ORIGIN.fullmatch(origin) or len(head) != 32 or size < 0:
        raise AuditError("a checkpoint has a printable origin without spaces, a size and a 32-byte head")
    public_key = getattr(signer, "public_key", None)
    if not isinstance(public_key, PublicKey) or not callable(getattr(signer, "sign", None)):
        raise AuditError("a checkpoint is signed with an AgentKey (the audit key)")
    body = _body(origin, size, head)
    signature = signer.sign(body.encode("utf-8"))
    stamp = base64.b64encode(key_id(origin, public_key) + signature).decode("ascii")
    return f"{body}\n\u2014 {origin} {stamp}\n"


def parse_checkpoint(text: object) -> Checkpoint:
    """A checkpoint from its note text; ``AuditError`` saying what is wrong with it."""
    if not isinstance(text, str) or len(text) > 4096:
        raise AuditError("a checkpoint is the text of a signed note")
    body, sep, rest = text.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) != 3 or not _ORIGIN.fullmatch(lines[0]) or not _SIZE.fullmatch(lines[1]):
        raise AuditError("a checkpoint begins with its origin, its size and its head hash on three lines")
    try:
        head = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        head = b""
    if len(head) != 32 or base64.b64encode(head).decode("ascii") != lines[2]:
        raise AuditError("a checkpoint's third line is a 32-byte hash in base64")
    signatures = []
    position = 0
    while position < len(rest):
        match = _SIGNATURE_LINE.match(rest, position)
        if match is None:
            raise AuditError("a checkpoint's signature lines are '\u2014 NAME BASE64'")
        try:
            blob = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise AuditError("a checkpoint signature is not base64") from None
        if len(blob) == 68:
            signatures.append((match.group(1), blob[:4], blob[4:]))
        position = match.end()
    if not signatures:
        raise AuditError("a checkpoint carries no Ed25519 signature")
    return Checkpoint(lines[0], int(lines[1]), head, body + "\n", tuple(signatures), text)
