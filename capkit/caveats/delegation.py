"""Caveats that shape the chain of holders: Holder, Delegate, MaxDepth.

They say nothing about a call's tool or arguments, so their ``check`` is
never what decides: the verifier enforces them when it analyses the chain
(specs/SPEC.md §16). Called directly, ``check`` fails closed, so a consumer
that does not understand holders (such as a plain macaroon satisfier) denies.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable, Mapping

import attrs

from .. import _b64
from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from ..publickey import MalformedKey, PublicKey
from .base import Call, Caveat, Failure, build_validated

#: The most delegations a MaxDepth caveat may allow.
MAX_DEPTH_LIMIT = 64


def _key(value: object, what: str) -> PublicKey:
    if isinstance(value, bytes):
        try:
            return PublicKey(value)
        except MalformedKey:
            raise InvalidCaveat(f"{what} must be a 32-byte Ed25519 public key") from None
    try:
        return PublicKey.parse(value)  # type: ignore[arg-type]
    except MalformedKey as exc:
        raise InvalidCaveat(f"{what}: {exc.message}") from None


def _b64_field(value: object, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidCaveat(f"{what} must be base64url text")
    try:
        raw = _b64.decode(value)
    except ValueError:
        raise InvalidCaveat(f"{what} must be unpadded base64url") from None
    if len(raw) != size:
        raise InvalidCaveat(f"{what} must be {size} bytes")
    return raw


class _Structural(Caveat):
    __slots__ = ()
    structural: ClassVar[bool] = True

    def check(self, call: Call) -> Failure:
        return Failure("bad_delegation", f"a {self.kind} caveat is enforced by the verifier's chain analysis")


@attrs.frozen(init=False)
class Holder(_Structural):
    """Only the agent with ``public_key`` may use the token (each call needs its proof)."""

    public_key: PublicKey

    kind: ClassVar[str] = "holder"
    json_fields: ClassVar[frozenset[str]] = frozenset({"pk"})

    def __init__(self, public_key: "PublicKey | str | bytes") -> None:
        self.__attrs_init__(_key(public_key, "holder key"))

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "pk": _b64.encode(self.public_key.raw)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Holder":
        return build_validated(cls, PublicKey(_b64_field(obj["pk"], "holder pk", 32)))

    def describe(self) -> str:
        return f"held by agent {self.public_key.fingerprint} (each call needs its proof)"


@attrs.frozen(init=False)
class Delegate(_Structural):
    """The holder hands the token to ``to``; ``signature`` is the holder's over the delegation message."""

    to: PublicKey
    signature: bytes = attrs.field(repr=False)

    kind: ClassVar[str] = "delegate"
    json_fields: ClassVar[frozenset[str]] = frozenset({"to", "sig"})

    def __init__(self, to: "PublicKey | str | bytes", signature: bytes) -> None:
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise InvalidCaveat("a delegation signature is 64 bytes")
        self.__attrs_init__(_key(to, "delegate key"), signature)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "sig": _b64.encode(self.signature), "to": _b64.encode(self.to.raw)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Delegate":
        return build_validated(cls, PublicKey(_b64_field(obj["to"], "delegate to", 32)),
                               _b64_field(obj["sig"], "delegate sig", 64))

    def describe(self) -> str:
        return f"delegated to agent {self.to.fingerprint}"


@attrs.frozen(init=False)
class MaxDepth(_Structural):
    """The token may pass through at most ``n`` delegations in all."""

    n: int

    kind: ClassVar[str] = "max_depth"
    json_fields: ClassVar[frozenset[str]] = frozenset({"n"})

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_DEPTH_LIMIT:
            raise InvalidCaveat(f"max depth must be an integer from 0 to {MAX_DEPTH_LIMIT}")
        self.__attrs_init__(n)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "n": self.n}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "MaxDepth":
        return cls(obj["n"])

    def describe(self) -> str:
        return f"at most {self.n} delegation{'s' if self.n != 1 else ''}"


def stated_hops(caveats: "Iterable[Caveat]") -> list[tuple[int, str | None]]:
    """(hop, agent fingerprint) of each caveat as the caveats state it, signatures NOT verified.

    A caveat's hop is the number of delegations before it; its agent is the
    holder those delegations name (None at hop 0), matching what the verifier
    reports for a chain that does verify. For display of unverified tokens only.
    """
    out: list[tuple[int, str | None]] = []
    hop, agent = 0, None
    for caveat in caveats:
        out.append((hop, agent))
        if isinstance(caveat, Delegate):
            hop, agent = hop + 1, caveat.to.fingerprint
    return out
