"""Keyrings: the root secrets that mint and verify tokens, by key id.

A keyring holds one or more keys; one is active and signs new tokens, the
others still verify tokens they signed until they are removed (rotation).
A *master* key serves every location: the root key of a token for location L
is ``HKDF-SHA256(ikm=secret, salt=b"capkit/v1/location-key", info=L)``.
``Keyring.for_location(L)`` holds only those derived keys, so a tool backend
given it verifies (and mints) tokens for L and nothing else.

Key files are JSON, written with mode 0600 and refused, as ssh does, when
group or others can read or write them. Secrets never appear in ``repr``,
messages or logs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from typing import Iterable

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import b64 as _b64
from .errors import KeyringError, UnknownKey
from .secretfile import read_json, write_json
from .timefmt import unix_seconds
from . import chain
from .token.identifier import KEY_ID, location_problem

SECRET_BYTES = 32
LOCATION_SALT = b"capkit/v1/location-key"
FILE_FORMAT = "capkit-keyring"
FILE_VERSION = 1


def check_location(location: object) -> str:
    """Validate a token location; raise ``KeyringError``."""
    problem = location_problem(location)
    if problem is not None:
        raise KeyringError(f"location {problem}")
    return location  # type: ignore[return-value]


def derive_location_key(secret: bytes, location: str) -> bytes:
    """The root key for tokens of ``location`` under a master ``secret``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=SECRET_BYTES, salt=LOCATION_SALT,
                info=location.encode("utf-8"))
    return hkdf.derive(secret)


@attrs.frozen
class KeyInfo:
    """What may be shown about a key: never its secret."""

    key_id: str
    location: str | None
    created: int | None
    active: bool


@attrs.frozen(repr=False, eq=False)
class _Key:
    key_id: str
    secret: bytes
    location: str | None  # None: a master key for every location
    created: int | None


def _new_key_id() -> str:
    return secrets.token_hex(6)


class Keyring:
    """An immutable set of keys by id, one of them active. Methods return new keyrings."""

    __slots__ = ("_keys", "_active", "_state", "_derived")

    def __init__(self, keys: Iterable[_Key], active: str | None) -> None:
        table: dict[str, _Key] = {}
        for key in keys:
            if key.key_id in table:
                raise KeyringError(f"key id {key.key_id} appears twice")
            table[key.key_id] = key
        if active is not None and active not in table:
            raise KeyringError(f"the active key {active} is not in the keyring")
        self._keys = table
        self._active = active
        digest = hashlib.sha256(b"capkit keyring state v1")
        for key in sorted(table.values(), key=lambda k: k.key_id):
            for part in (key.key_id.encode(), key.secret, (key.location or "\x00").encode("utf-8")):
                digest.update(len(part).to_bytes(4, "big") + part)
        self._state = digest.digest()
        # Memo of derived location keys; a pure function of the immutable keys.
        self._derived: dict[tuple[str, ...], bytes] = {}

    # ---------------------------------------------------------------- building

    @classmethod
    def generate(cls, *, key_id: str | None = None, now: float | None = None) -> "Keyring":
        """A new keyring with one fresh random master key, active."""
        created = int(time.time() if now is None else unix_seconds(now, "the creation time", KeyringError))
        key = _Key(_check_key_id(key_id or _new_key_id()), secrets.token_bytes(SECRET_BYTES), None, created)
        return cls((key,), key.key_id)

    @classmethod
    def from_secret(cls, secret: bytes, *, key_id: str, location: str | None = None,
                    created: int | None = None) -> "Keyring":
        """A keyring of one given key (for tests, vectors and secret managers); it is active.

        With ``location`` the secret is that location's root key, not a master key.
        """
        if not isinstance(secret, bytes) or len(secret) < SECRET_BYTES:
            raise KeyringError(f"a key secret must be at least {SECRET_BYTES} bytes")
        key = _Key(_check_key_id(key_id), secret, None if location is None else check_location(location), created)
        return cls((key,), key.key_id)

    def rotate(self, *, key_id: str | None = None, now: float | None = None) -> "Keyring":
        """A keyring with a new master key that is active; old keys still verify."""
        new = Keyring.generate(key_id=key_id, now=now)._keys.popitem()[1]
        if new.key_id in self._keys:
            raise KeyringError(f"key id {new.key_id} is already in the keyring")
        return Keyring((*self._keys.values(), new), new.key_id)

    def remove(self, key_id: str) -> "Keyring":
        """A keyring without ``key_id``; tokens it signed stop verifying. The active key cannot be removed."""
        if _check_key_id(key_id) not in self._keys:
            raise UnknownKey(f"the keyring has no key {key_id}")
        if key_id == self._active:
            raise KeyringError(f"key {key_id} is active; rotate to a new key before removing it")
        return Keyring((k for k in self._keys.values() if k.key_id != key_id), self._active)

    def for_location(self, location: str) -> "Keyring":
        """The keys a backend serving only ``location`` needs: derived from every master key."""
        check_location(location)
        keys = []
        for key in self._keys.values():
            if key.location is None:
                keys.append(_Key(key.key_id, derive_location_key(key.secret, location), location, key.created))
            elif key.location == location:
                keys.append(key)
        active = self._active if any(k.key_id == self._active for k in keys) else None
        return Keyring(keys, active)

    # ----------------------------------------------------------------- reading

    @property
    def active_key_id(self) -> str | None:
        """Id of the key that signs new tokens (None if no key is active)."""
        return self._active

    @property
    def keys(self) -> tuple[KeyInfo, ...]:
        """Public information about every key, sorted by id."""
        return tuple(
            KeyInfo(k.key_id, k.location, k.created, k.key_id == self._active)
            for k in sorted(self._keys.values(), key=lambda k: k.key_id)
        )

    @property
    def has_master_key(self) -> bool:
        """True if a key of this keyring serves every location (a master key)."""
        return any(k.location is None for k in self._keys.values())

    @property
    def locations(self) -> tuple[str, ...]:
        """The locations of the keyring's location keys (a master key serves every location besides)."""
        return tuple(sorted({k.location for k in self._keys.values() if k.location is not None}))

    @property
    def state(self) -> bytes:
        """A digest of the keyring's contents; changes whenever a key is added or removed."""
        return self._state

    def chain_key(self, key_id: str, location: str) -> bytes:
        """HMAC key of the chain's first link (see ``token.chain``); memoized. Raises ``UnknownKey``."""
        memo = self._derived.get((key_id, "\x00chain", location))
        if memo is None:
            memo = chain.generator_key(self.root_key(key_id, location))
            self._derived[(key_id, "\x00chain", location)] = memo
        return memo

    def root_key(self, key_id: str, location: str) -> bytes:
        """The macaroon root key for tokens of ``location`` signed by ``key_id``; raise ``UnknownKey``."""
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(f"the keyring has no key {key_id}")
        if key.location is None:
            derived = self._derived.get((key_id, location))
            if derived is None:
                if len(self._derived) >= 1024:
                    self._derived.clear()
                derived = self._derived[(key_id, location)] = derive_location_key(key.secret, location)
            return derived
        if key.location != location:
            raise UnknownKey(f"key {key_id} in this keyring serves location {key.location!r}, not {location!r}")
        return key.secret

    def __repr__(self) -> str:
        ids = ", ".join(k.key_id + ("*" if k.key_id == self._active else "") for k in self._keys.values())
        return f"Keyring([{ids}])"

    # -------------------------------------------------------------------- files

    def to_json(self) -> dict:
        """The key file document (contains secrets: handle as one)."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "active": self._active,
            "keys": [
                {"id": k.key_id, "secret": _b64.encode(k.secret), "location": k.location, "created": k.created}
                for k in self._keys.values()
            ],
        }

    def save(self, path: "str | os.PathLike[str]", *, overwrite: bool = False) -> None:
        """Write the keyring to ``path`` with mode 0600, atomically.

        Refuses to replace an existing file unless ``overwrite`` is true: losing a
        key silently invalidates every token it signed.
        """
        write_json(path, self.to_json(), overwrite=overwrite)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "Keyring":
        """Read a key file; refuse one that group or others may read or write."""
        return cls.from_json(read_json(path), source=str(path))

    @classmethod
    def from_json(cls, doc: object, *, source: str = "key document") -> "Keyring":
        """Build a keyring from a key file document; raise ``KeyringError`` naming ``source``."""
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise KeyringError(f"{source} is not a capkit keyring")
        if doc.get("version") != FILE_VERSION:
            raise KeyringError(f"{source} has an unsupported version")
        entries = doc.get("keys")
        if not isinstance(entries, list) or not entries:
            raise KeyringError(f"{source} holds no keys")
        keys = []
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) != {"id", "secret", "location", "created"}:
                raise KeyringError(f"{source} has a malformed key entry")
            try:
                secret = _b64.decode(entry["secret"]) if isinstance(entry["secret"], str) else b""
            except ValueError:
                secret = b""
            if len(secret) < SECRET_BYTES:
                raise KeyringError(f"{source} has a key whose secret is not {SECRET_BYTES}+ bytes of base64url")
            created = entry["created"]
            if created is not None and (isinstance(created, bool) or not isinstance(created, int)):
                raise KeyringError(f"{source} has a key with an invalid creation time")
            location = entry["location"]
            keys.append(_Key(_check_key_id(entry["id"], source), secret,
                             None if location is None else check_location(location), created))
        active = doc.get("active")
        if active is not None and not isinstance(active, str):
            raise KeyringError(f"{source} has an invalid active key id")
        return cls(keys, active)


def _check_key_id(key_id: object, source: str = "") -> str:
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        where = f"{source}: " if source else ""
        raise KeyringError(f"{where}key id must be 1-64 characters of A-Z a-z 0-9 _ -")
    return key_id


