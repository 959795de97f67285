"""Caveats that shape the chain of holders: Holder, Delegate, MaxDepth.

They say nothing about a call's tool or arguments, so their ``check`` is
never what decides: the verifier enforces them when it walks the chain
(specs/SPEC.md §16). Called directly, ``check`` fails closed, so a consumer
that does not understand holders (such as a plain macaroon satisfier) denies.
"""

from __future__ import annotations

from typing import ClassVar, Iterable

from ..codes import Code
from ..publickey import PublicKey
from .base import Call, Caveat, Failure, Integer, Key, Raw, caveat, field

#: The most delegations a MaxDepth caveat may allow.
MAX_DEPTH_LIMIT = 64


class _Structural(Caveat):
    __slots__ = ()
    structural: ClassVar[bool] = True

    def check(self, call: Call) -> Failure:
        return Failure(Code.BAD_DELEGATION, f"a {self.kind} caveat is enforced by the verifier's chain analysis")


@caveat("holder")
class Holder(_Structural):
    """Only the agent with ``public_key`` may use the token (each call needs its proof)."""

    public_key: PublicKey = field(Key("pk", "holder key"))

    def __init__(self, public_key: "PublicKey | str | bytes") -> None:
        self._init(public_key=public_key)

    def describe(self) -> str:
        return f"held by agent {self.public_key.fingerprint} (each call needs its proof)"


@caveat("delegate")
class Delegate(_Structural):
    """The holder hands the token to ``to``; ``signature`` is the holder's over the delegation message."""

    to: PublicKey = field(Key("to", "delegate key"))
    signature: bytes = field(Raw("sig", "a delegation signature", 64), repr=False)

    def __init__(self, to: "PublicKey | str | bytes", signature: bytes) -> None:
        self._init(to=to, signature=signature)

    def describe(self) -> str:
        return f"delegated to agent {self.to.fingerprint}"


@caveat("max_depth")
class MaxDepth(_Structural):
    """The token may pass through at most ``n`` delegations in all."""

    n: int = field(Integer("n", "max depth", 0, MAX_DEPTH_LIMIT))

    def __init__(self, n: int) -> None:
        self._init(n=n)

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
    for item in caveats:
        out.append((hop, agent))
        if isinstance(item, Delegate):
            hop, agent = hop + 1, item.to.fingerprint
    return out
