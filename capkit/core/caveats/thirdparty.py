"""Third-party caveats (specs/SPEC.md §19): satisfied only by a discharge macaroon from another party.

A third-party caveat has an id (``cid``), a verification id (``vid``: the
caveat key, encrypted under the chain's signature before the caveat, as
libmacaroons and pymacaroons do) and a location hint. The discharge is a
macaroon whose identifier is the ``cid``, minted under the caveat key, bound to
the token it is presented with. The verifier checks it (``core/discharge.py``);
``check`` here only fails closed for a consumer that does not understand them.

Two kinds:

* ``ThirdParty``: any third-party caveat (one a pymacaroons user adds, with a
  key shared with the third party out of band);
* ``Approval``: capkit's human approval. Its ``cid`` is canonical JSON naming
  the approver's public key and holding the caveat's root key sealed to it
  (NaCl sealed box on the key's X25519 form), so only that approver can
  discharge it; an optional tool scope and threshold (``arg`` above ``above``)
  say which calls need it. A discharge for it must approve the exact call.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any, ClassVar

import attrs
from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import CryptoError
from nacl.public import PublicKey as BoxPublicKey
from nacl.public import SealedBox
from nacl.secret import SecretBox

from .. import chain
from ..codes import Code
from ..errors import InvalidCaveat
from ..limits import Limits
from ..publickey import PublicKey
from ..text import require_text
from ..token.binary import RawThirdParty
from ._fields import ARG, SCOPE, show
from .amounts import parse_amount
from .base import Amount, Call, Caveat, Failure, Key, Raw, Spec, caveat, field
from .matching import GlobPattern

__all__ = ["ROOT_KEY_BYTES", "Approval", "Approved", "Once", "ThirdParty", "caveat_key"]

#: Bytes of a third-party caveat's root key.
ROOT_KEY_BYTES = 32
_SEALED_BYTES = ROOT_KEY_BYTES + 48  # ephemeral X25519 key (32) + MAC (16)
_MAX_CID = 1024


def caveat_key(signature: bytes, vid: bytes) -> bytes | None:
    """The caveat key a ``vid`` holds, opened with the chain's signature before the caveat; None if it does not open."""
    try:
        key = SecretBox(signature).decrypt(vid)
    except (CryptoError, ValueError, TypeError):
        return None
    return key if len(key) == 32 else None


def _seal_vid(signature: bytes, root_key: bytes) -> bytes:
    """The ``vid`` of a caveat whose root key is ``root_key``, appended after ``signature``."""
    return bytes(SecretBox(signature).encrypt(chain.generator_key(root_key)))


class _ThirdPartyCaveat(Caveat):
    """What the two kinds share: the raw fields, the chain link, and failing closed when checked alone."""

    __slots__ = ()
    third_party: ClassVar[bool] = True
    location: "str | None"
    vid: "bytes | None"

    @property
    def cid(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def raw(self) -> RawThirdParty:
        """The V2 fields of the caveat (it must have been added to a chain: ``vid`` known)."""
        if self.vid is None:
            raise InvalidCaveat("a third-party caveat gets its verification id when it is added to a token")
        return RawThirdParty(self.cid, self.vid, None if self.location is None else self.location.encode())

    def after(self, signature: bytes) -> "_ThirdPartyCaveat":  # pragma: no cover - abstract
        """This caveat with the ``vid`` it has when appended to a chain ending in ``signature``."""
        raise NotImplementedError

    def needed_for(self, call: Call) -> bool:
        """True if ``call`` needs a discharge of this caveat (always, but an approval may be scoped)."""
        return True

    def check(self, call: Call) -> Failure:
        return Failure(Code.APPROVAL_REQUIRED if isinstance(self, Approval) else Code.BAD_DISCHARGE,
                       "a third-party caveat is satisfied only by a discharge the verifier checks")


def _location(value: object) -> str | None:
    if value is None:
        return None
    return require_text(value, "a third-party caveat's location", 255)


@attrs.frozen(repr=False)
class ThirdParty(_ThirdPartyCaveat):
    """A third-party caveat: a discharge named ``cid``, minted under ``root_key`` by the third party, is needed.

    Build it with the root key shared with the third party, then add it to a token
    (``attenuate``); a decoded one has no root key.
    """

    cid_bytes: bytes
    location: "str | None" = None
    vid: "bytes | None" = attrs.field(default=None, repr=False)
    root_key: "bytes | None" = attrs.field(default=None, repr=False, eq=False)

    kind: ClassVar[str] = "third_party"

    @classmethod
    def new(cls, location: str, root_key: bytes, cid: bytes) -> "ThirdParty":
        """A third-party caveat to add: ``root_key`` (32+ bytes) is shared with the third party, ``cid`` names it."""
        if not isinstance(root_key, bytes) or len(root_key) < 16:
            raise InvalidCaveat("a third-party caveat's root key is at least 16 bytes")
        if not isinstance(cid, bytes) or not 0 < len(cid) <= _MAX_CID:
            raise InvalidCaveat(f"a third-party caveat id is 1-{_MAX_CID} bytes")
        return cls(cid, _location(location), None, root_key)

    @property
    def cid(self) -> bytes:
        return self.cid_bytes

    def after(self, signature: bytes) -> "ThirdParty":
        if self.root_key is None:
            raise InvalidCaveat("this third-party caveat has no root key: only its creator can add it")
        return ThirdParty(self.cid_bytes, self.location, _seal_vid(signature, self.root_key), self.root_key)

    def encode(self) -> Any:
        return self.raw()

    def to_json(self) -> dict[str, Any]:
        return {"k": "third_party", "cid": self.cid_bytes.decode("utf-8", "backslashreplace"),
                "location": self.location}

    def describe(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"needs a discharge from the third party{where}"

    def __repr__(self) -> str:
        return f"ThirdParty(location={self.location!r})"


class _OptionalArg(Spec):
    key = "arg"
    required = False

    def convert(self, value: Any, limits: Limits) -> Any:
        return None if value is None else ARG.convert(value, limits)


class _OptionalAmount(Amount):
    required = False

    def convert(self, value: Any, limits: Limits) -> Any:
        return None if value is None else super().convert(value, limits)

    def dump(self, value: Any) -> dict[str, Any]:
        return {} if value is None else super().dump(value)


def _box_key(public_key: PublicKey) -> BoxPublicKey:
    try:
        return BoxPublicKey(crypto_sign_ed25519_pk_to_curve25519(public_key.raw))
    except (CryptoError, ValueError, TypeError):
        raise InvalidCaveat("the approver key has no X25519 form (not a valid Ed25519 public key)") from None


@caveat("approval")
class Approval(_ThirdPartyCaveat):
    """A call needs the approval of ``approver`` (for calls of ``tool``, and only when ``arg`` is above ``above``)."""

    approver: PublicKey = field(Key("a", "approver key"))
    #: The caveat's root key sealed to the approver (only the approver can open it).
    sealed: bytes = field(Raw("s", "a sealed approval key", _SEALED_BYTES), repr=False)
    tool: "str | None" = field(SCOPE, default=None)
    arg: "str | None" = field(_OptionalArg(), default=None)
    above: "Decimal | None" = field(_OptionalAmount("above", "approval threshold"), default=None)
    location: "str | None" = attrs.field(default=None, eq=False)
    vid: "bytes | None" = attrs.field(default=None, eq=False, repr=False)
    _root: "bytes | None" = attrs.field(default=None, eq=False, repr=False)

    def __init__(self, approver: "PublicKey | str | bytes", *, tool: str | None = None, arg: str | None = None,
                 above: "int | Decimal | str | None" = None, location: str | None = "approval") -> None:
        """A new approval caveat to add to a token (``attenuate`` or ``mint``): a fresh root key is sealed
        to ``approver``. With ``arg`` and ``above``, only calls whose ``arg`` exceeds ``above`` need it."""
        approver_key = Key("a", "approver key").convert(approver, Limits())
        root = secrets.token_bytes(ROOT_KEY_BYTES)
        sealed = bytes(SealedBox(_box_key(approver_key)).encrypt(root))
        self._init(approver=approver_key, sealed=sealed, tool=tool, arg=arg, above=above)
        object.__setattr__(self, "location", _location(location))
        object.__setattr__(self, "_root", root)

    def _validate(self) -> None:
        if (self.arg is None) != (self.above is None):
            raise InvalidCaveat("an approval threshold names both the argument and the amount above which it applies")
        _box_key(self.approver)

    @property
    def cid(self) -> bytes:
        return Caveat.encode(self)

    def encode(self) -> Any:
        return self.raw()

    def after(self, signature: bytes) -> "Approval":
        if self._root is None:
            raise InvalidCaveat("this approval caveat was read from a token: only its creator can add it")
        added = object.__new__(Approval)
        for name in ("approver", "sealed", "tool", "arg", "above", "location", "_root", "_memo"):
            object.__setattr__(added, name, getattr(self, name))
        object.__setattr__(added, "_encoded", self._encoded)
        object.__setattr__(added, "vid", _seal_vid(signature, self._root))
        return added

    def needed_for(self, call: Call) -> bool:
        if self.tool is not None and not self.memo("scope", lambda: GlobPattern(self.tool)).match(call.tool):
            return False
        if self.arg is None:
            return True
        try:
            value = call.args[self.arg]
            return parse_amount(value) > self.above  # type: ignore[operator]
        except Exception:  # missing, not a number: the threshold cannot be shown to be met, so ask
            return True

    def describe(self) -> str:
        when = f" when {self.arg} is above {show(self.above)}" if self.arg is not None else ""
        scope = f" for tool {self.tool}" if self.tool is not None else ""
        return f"needs the approval of approver {self.approver.fingerprint}{scope}{when}"


# ------------------------------------------------------- in an approval's discharge


class _InDischarge(Caveat):
    __slots__ = ()

    def check(self, call: Call) -> Failure:
        return Failure(Code.BAD_DISCHARGE, f"a {self.kind} caveat belongs in an approval's discharge")


@caveat("approves")
class Approved(_InDischarge):
    """The approved call: its invocation digest and the exact token (``token_tail_id``) it is made with."""

    digest: bytes = field(Raw("d", "an invocation digest", 32))
    token: bytes = field(Raw("t", "a token tail id", 16))

    def __init__(self, digest: bytes, token: bytes) -> None:
        self._init(digest=digest, token=token)

    def describe(self) -> str:
        return "approves one exact call with one exact token"


@caveat("once")
class Once(_InDischarge):
    """The discharge may be used once (its nonce goes through the verifier's store)."""

    nonce: bytes = field(Raw("n", "a discharge nonce", 16), repr=False)

    def __init__(self, nonce: bytes) -> None:
        self._init(nonce=nonce)

    def describe(self) -> str:
        return "may be used once"
