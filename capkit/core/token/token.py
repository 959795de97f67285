"""``Token``: a parsed capkit token (not yet verified), and ``mint``.

A ``Token`` is what anyone holding the text can know: its location, key id,
token id and typed caveats. Nothing about it is trusted until a ``Verifier``
has checked its HMAC chain. ``attenuate`` needs no key: appending a caveat
extends the chain from the current tail signature.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Iterable

import attrs

from .. import b64 as _b64
from ..caveats import REGISTRY, Caveat, Delegate, Holder, MaxDepth, Registry, UnknownCaveat
from ..errors import BadDelegation, InvalidCaveat, KeyringError, MalformedKey, MalformedToken, TokenTooLarge
from ..limits import DEFAULT_LIMITS, Limits, require_limits
from ..messages import delegation_message
from ..publickey import PublicKey
from . import binary
from .decode import TEXT_PREFIX, decode_header, decode_text, tail_signature
from .. import chain
from ..keys import Keyring
from .identifier import Identifier, location_problem

if TYPE_CHECKING:
    from ..holder import AgentKey


@attrs.frozen(repr=False)
class Token:
    """An unverified capkit token. Build with ``mint``, ``Token.parse`` or ``attenuate``."""

    location: str
    identifier: Identifier
    caveats: tuple[Caveat, ...]
    #: The exact signed bytes of each caveat, in order.
    encoded_caveats: tuple[bytes, ...]
    #: The tail signature: as secret as the token itself (it lets anyone attenuate).
    signature: bytes

    @property
    def id(self) -> str:
        """The random token id (22 characters of base64url), used for revocation and audit."""
        return self.identifier.token_id

    @property
    def key_id(self) -> str:
        """Id of the keyring key whose root key starts the chain."""
        return self.identifier.key_id

    def __repr__(self) -> str:
        return f"Token(id={self.id!r}, key_id={self.key_id!r}, location={self.location!r}, caveats={len(self.caveats)})"

    @property
    def claimed_holder(self) -> "PublicKey | None":
        """The current holder *as the token claims it* (Holder, then each Delegate); None for a bearer token.

        A claim, not a fact: only a ``Verifier`` checks that each delegation is signed by the holder before it.
        """
        holder = None
        for caveat in self.caveats:
            if isinstance(caveat, Holder) and holder is None:
                holder = caveat.public_key
            elif isinstance(caveat, Delegate):
                holder = caveat.to
        return holder

    @property
    def depth(self) -> int:
        """How many delegations the token has been through."""
        return sum(isinstance(c, Delegate) for c in self.caveats)

    def delegate(self, holder_key: "AgentKey", to: "PublicKey | str", *caveats: Caveat,
                 limits: Limits = DEFAULT_LIMITS) -> "Token":
        """Hand the token to the agent ``to``, adding ``caveats`` first; needs the current holder's key.

        The new ``Delegate`` caveat carries ``holder_key``'s signature over the
        token's tail signature (after ``caveats``), ``to`` and the new hop number,
        so only the current holder can delegate, and only this token.
        """
        current = self.claimed_holder
        if current is None:
            raise BadDelegation("a bearer token has no holder to delegate it; mint it with a Holder caveat")
        holder_public = getattr(holder_key, "public_key", None)
        if not isinstance(holder_public, PublicKey) or not callable(getattr(holder_key, "sign", None)):
            raise BadDelegation(f"delegating needs the current holder's AgentKey, not {type(holder_key).__name__}")
        if holder_public != current:
            raise BadDelegation(
                f"only the current holder (agent {current.fingerprint}) can delegate this token, "
                f"not agent {holder_public.fingerprint}"
            )
        try:
            to_key = PublicKey.parse(to)
        except MalformedKey as exc:
            raise BadDelegation(f"the agent to delegate to: {exc.message}") from None
        hop = self.depth + 1
        limit = min((c.n for c in (*self.caveats, *caveats) if isinstance(c, MaxDepth)), default=None)
        if limit is not None and hop > limit:
            raise BadDelegation(f"the token allows at most {limit} delegation(s)")
        narrowed = self.attenuate(*caveats, limits=limits) if caveats else self
        signature = holder_key.sign(delegation_message(narrowed.signature, to_key, hop))
        return narrowed.attenuate(Delegate(to_key, signature), limits=limits)

    # ------------------------------------------------------------- attenuation

    def attenuate(self, *caveats: Caveat, limits: Limits = DEFAULT_LIMITS) -> "Token":
        """A token with ``caveats`` appended. It can only authorize less (conjunction)."""
        added, encoded, signature = _append(self.signature, caveats, require_limits(limits))
        if len(self.caveats) + len(caveats) > limits.max_caveats:
            raise TokenTooLarge(f"a token may hold at most {limits.max_caveats} caveats")
        token = Token(self.location, self.identifier, self.caveats + added, self.encoded_caveats + encoded, signature)
        _check_size(token, limits)
        return token

    @staticmethod
    def attenuate_serialized(data: "str | bytes", *caveats: Caveat, limits: Limits = DEFAULT_LIMITS) -> str:
        """``Token.parse(data).attenuate(*caveats).serialize()``, without decoding the caveats ``data`` holds.

        Wire to wire, for a holder narrowing a token it passes on: the framing,
        location and identifier are checked, the new caveats are validated and
        appended, the chain is extended from the tail signature. The result is
        byte-identical to the parse-attenuate-serialize route.
        """
        require_limits(limits)
        raw = binary.decode(decode_text(data, limits), limits)
        decode_header(raw)
        _, encoded, signature = _append(raw.signature, caveats, limits)
        if len(raw.caveats) + len(encoded) > limits.max_caveats:
            raise TokenTooLarge(f"a token may hold at most {limits.max_caveats} caveats")
        out = binary.encode(binary.RawMacaroon(raw.location, raw.identifier, raw.caveats + encoded, signature))
        if len(out) > limits.max_token_bytes:
            raise TokenTooLarge(f"the token would be larger than {limits.max_token_bytes} bytes")
        return TEXT_PREFIX + _b64.encode(out)

    # ----------------------------------------------------------- serialization

    def to_bytes(self) -> bytes:
        """The libmacaroons V2 binary form."""
        return binary.encode(
            binary.RawMacaroon(
                self.location.encode("utf-8"), self.identifier.encode(), self.encoded_caveats, self.signature
            )
        )

    def serialize(self) -> str:
        """The text form: ``capkit_`` followed by unpadded base64url of the V2 bytes."""
        return TEXT_PREFIX + _b64.encode(self.to_bytes())

    def __str__(self) -> str:  # never print a token by accident in a log line
        return repr(self)

    @classmethod
    def parse(cls, data: "str | bytes", *, limits: Limits = DEFAULT_LIMITS, registry: Registry = REGISTRY) -> "Token":
        """Parse the text form (``str`` or ASCII bytes starting with ``capkit_``) or V2 bytes.

        Raises ``MalformedToken`` (``TokenTooLarge`` for size limits) for anything
        that is not a well-formed token. Caveats this version cannot interpret
        become ``UnknownCaveat`` values, which deny every call.
        """
        require_limits(limits)
        if not isinstance(registry, Registry):
            raise InvalidCaveat(f"registry must be a capkit Registry, not {type(registry).__name__}")
        return cls._from_raw(binary.decode(decode_text(data, limits), limits), limits, registry)

    @classmethod
    def _from_raw(cls, raw: binary.RawMacaroon, limits: Limits, registry: Registry) -> "Token":
        location, identifier, caveats = decode_fields(raw, limits, registry)
        return cls(location, identifier, caveats, raw.caveats, raw.signature)


def decode_fields(
    raw: binary.RawMacaroon, limits: Limits = DEFAULT_LIMITS, registry: Registry = REGISTRY
) -> "tuple[str, Identifier, tuple[Caveat, ...]]":
    """Give meaning to the fields of a V2 macaroon: location, identifier, typed caveats.

    Raises ``MalformedToken`` for an invalid location or identifier; caveats
    that cannot be interpreted become ``UnknownCaveat`` values.
    """
    location, identifier = decode_header(raw)
    decode = registry.decode
    return location, identifier, tuple([decode(c, limits) for c in raw.caveats])


def _append(signature: bytes, caveats: Iterable[Caveat], limits: Limits) \
        -> "tuple[tuple[Caveat, ...], tuple[bytes | binary.RawThirdParty, ...], bytes]":
    """Append ``caveats`` to a chain ending in ``signature``: the caveats as added (a third-party caveat
    gets its verification id from the signature before it), their encodings, and the new tail."""
    added: list[Caveat] = []
    encoded: list["bytes | binary.RawThirdParty"] = []
    for caveat in caveats:
        if not isinstance(caveat, Caveat) or isinstance(caveat, UnknownCaveat):
            raise InvalidCaveat(f"{type(caveat).__name__} is not a capkit caveat that can be added to a token")
        if caveat.third_party:
            caveat = caveat.after(signature)  # type: ignore[attr-defined]
            raw = caveat.raw()  # type: ignore[attr-defined]
            size = len(raw.cid) + len(raw.vid)
        else:
            raw = caveat.encode()
            size = len(raw)
        if size > limits.max_caveat_bytes:
            raise TokenTooLarge(f"a {caveat.kind} caveat is longer than {limits.max_caveat_bytes} bytes")
        signature = chain.link(signature, raw)
        added.append(caveat)
        encoded.append(raw)
    return tuple(added), tuple(encoded), signature


def _check_size(token: Token, limits: Limits) -> None:
    if len(token.to_bytes()) > limits.max_token_bytes:
        raise TokenTooLarge(f"the token would be larger than {limits.max_token_bytes} bytes")


def _new_token_id() -> bytes:
    """16 random bytes whose text form does not start with '-' (so it is never read as a command-line flag)."""
    while True:
        candidate = secrets.token_bytes(16)
        if candidate[0] >> 2 != 62:  # base64url's 62nd character is '-'
            return candidate


def mint(
    keyring: "Keyring",
    *caveats: Caveat,
    location: str,
    unrestricted: bool = False,
    token_id: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Token:
    """A new token for ``location`` signed by the keyring's active key, carrying ``caveats``.

    A token without caveats grants every tool at its location; that must be
    asked for with ``unrestricted=True``. ``token_id`` (16 bytes) is for
    reproducible test vectors; leave it out to get a random one.
    """
    if not isinstance(keyring, Keyring):
        raise KeyringError(f"mint needs a capkit Keyring (Keyring.load(path)), not a {type(keyring).__name__}")
    require_limits(limits)
    if not caveats and not unrestricted:
        raise InvalidCaveat("a token without caveats grants every tool at its location; "
                            "add caveats or pass unrestricted=True")
    key_id = keyring.active_key_id
    if key_id is None:
        raise KeyringError("the keyring has no active key to mint with")
    problem = location_problem(location)
    if problem is not None:
        raise KeyringError(f"location {problem}")
    identifier = Identifier.new(key_id, _new_token_id() if token_id is None else token_id)
    start = chain.root_signature(keyring.root_key(key_id, location), identifier.encode())
    added, encoded, signature = _append(start, caveats, limits)
    if len(caveats) > limits.max_caveats:
        raise TokenTooLarge(f"a token may hold at most {limits.max_caveats} caveats")
    token = Token(location, identifier, added, encoded, signature)
    _check_size(token, limits)
    return token
