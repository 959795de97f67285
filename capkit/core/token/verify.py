"""Verify a token's chain: HMAC under the keyring, then the chain of holders; the result is a ``VerifiedToken``.

``verify_token`` is steps 1-6 of specs/SPEC.md §11 (and §16.3): it needs no
call. A token it returns is one whose every caveat the keyring's owner (or a
holder it names) really added: a ``Token`` is only what its text claims.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import attrs

from .. import b64 as _b64
from ..caveats import Caveat, Delegate, Holder, MaxDepth, Tools, UnknownCaveat
from ..caveats.arguments import ScopedCaveat
from ..caveats.base import Call
from ..caveats.thirdparty import caveat_key
from ..codes import Code
from ..decision import Hop, Reason
from ..errors import BadDelegation, BadSignature, UnknownKey, WrongLocation
from ..keys import Keyring
from ..messages import delegation_message
from ..publickey import PublicKey
from ..state.types import StateRequest
from .. import chain
from .identifier import Identifier

#: Checks one delegation signature (holder, delegate caveat, its bytes, the tail before it, the hop); may cache.
DelegationCheck = Callable[[PublicKey, Delegate, bytes, bytes, int], bool]


def hop_id(token_id: str, delegation_signature: bytes) -> str:
    """The id of the hop a delegation starts: ``TOKENID.SUFFIX`` (8 characters derived from its signature)."""
    return token_id + "." + _b64.encode(hashlib.sha256(b"capkit/v1/hop\x00" + delegation_signature).digest()[:6])


def meter_key(token_id: str, signature_after: bytes) -> str:
    """The id of a budget or call counter: unique to the exact chain prefix that ends with its caveat."""
    return _b64.encode(hashlib.sha256(b"capkit/v1/meter\x00" + token_id.encode() + signature_after).digest()[:18])


@attrs.frozen
class MeteredCaveat:
    """A budget or call limit of a verified token, with the id of its counter."""

    index: int
    caveat: Caveat
    key: str


@attrs.frozen
class PendingDischarge:
    """A third-party caveat of a verified token, with the caveat key its vid holds (None: it does not open)."""

    index: int
    caveat: Caveat
    key: bytes | None = attrs.field(repr=False)


@attrs.frozen
class VerifiedToken:
    """A token whose HMAC chain and delegations verified under a keyring: its caveats can be trusted."""

    token_id: str
    key_id: str
    location: str
    caveats: tuple[Caveat, ...]
    #: Delegation hop of each caveat: how many delegations precede it.
    hops: tuple[int, ...]
    #: Fingerprint of the agent that held the token when each caveat was added (None at hop 0).
    agents: tuple[str | None, ...]
    #: The holder at each hop, from the grant to the current holder.
    chain: tuple[Hop, ...]
    #: The current holder; None for a bearer token.
    holder: PublicKey | None
    #: Token-level failures found in the chain (delegation depth beyond a MaxDepth).
    failures: tuple[Reason, ...]
    #: The tail signature, which proofs bind.
    signature: bytes = attrs.field(repr=False)
    #: Budgets and call limits, with their counters' ids.
    metered: tuple[MeteredCaveat, ...] = ()
    #: Third-party caveats (approvals): each needs a discharge when it applies to a call.
    third_party: tuple[PendingDischarge, ...] = ()
    _revocation_check: "StateRequest | None" = attrs.field(default=None, init=False, repr=False, eq=False)
    _checked: "tuple[tuple[int, Caveat], ...] | None" = attrs.field(default=None, init=False, repr=False, eq=False)

    @property
    def hop_ids(self) -> tuple[str, ...]:
        """The id of every hop, from the grant's token id to the current holder's."""
        return self.revocation_check.revocation_ids

    @property
    def revocation_check(self) -> StateRequest:
        """The store request of a call that reserves nothing and carries no proof: the revocation check only."""
        request = self._revocation_check
        if request is None:  # built on first use, then kept with the cached token
            request = StateRequest(self.token_id, tuple(h.id for h in self.chain), None, 0.0, (), 0.0)
            object.__setattr__(self, "_revocation_check", request)
        return request

    @property
    def depth(self) -> int:
        """How many delegations the token has been through."""
        return len(self.chain) - 1

    def check(self, call: Call, *, listing: bool = False) -> list[Reason]:
        """Every non-structural caveat that ``call`` (a validated ``Call``) fails, in order, without shared state.

        With ``listing`` the caveats about tools and arguments are skipped: what
        is left (time, audience, unreadable caveats) decides whether the token may
        list at all; ``grants_tool`` then decides what the listing shows.
        """
        checked = self._checked
        if checked is None:  # built on first use, then kept with the cached token
            checked = tuple((i, c) for i, c in enumerate(self.caveats) if not c.structural and not c.third_party)
            object.__setattr__(self, "_checked", checked)
        reasons = []
        for index, caveat in checked:
            if listing and isinstance(caveat, (Tools, ScopedCaveat)):
                continue
            failure = caveat.check(call)
            if failure is not None:
                reasons.append(self.reason(failure.code, failure.message, index))
        return reasons

    def reason(self, code: str, message: str, index: int) -> Reason:
        """The Reason of a failure of caveat ``index`` (0-based): its position, hop, who added it and who vouched."""
        hop = self.hops[index]
        vouched = self.chain[0].holder if hop == 0 and len(self.chain) > 1 else None
        return Reason(code, message, index + 1, self.caveats[index], hop, self.agents[index], vouched)

    def grants_tool(self, tool: str) -> bool:
        """True if every ``Tools`` caveat grants ``tool`` (and no caveat is unreadable): what a listing may show."""
        for caveat in self.caveats:
            if isinstance(caveat, UnknownCaveat) or (isinstance(caveat, Tools) and not caveat.grants(tool)):
                return False
        return True


def verify_token(location: str, identifier: Identifier, identifier_bytes: bytes, caveats: tuple[Caveat, ...],
                 encoded: tuple[bytes, ...], signature: bytes, keyring: Keyring,
                 locations: "frozenset[str] | None", delegation_signed: DelegationCheck) -> VerifiedToken:
    """Verify a decoded token (specs/SPEC.md §11 steps 3-6); raise its ``CapkitError`` (with its code) otherwise.

    ``locations`` are the locations the caller serves (None: every location);
    ``delegation_signed`` checks one delegation signature (the caller may cache it).
    """
    token_id = identifier.token_id
    if locations is not None and location not in locations:
        served = ", ".join(sorted(locations))
        raise WrongLocation(f"the token is for location {location!r}; this verifier serves {served}",
                            token_id=token_id)
    try:
        k0 = keyring.chain_key(identifier.key_id, location)
    except UnknownKey as exc:
        raise UnknownKey(exc.message, token_id=token_id) from None
    structural = any(c.structural or c.metered or c.third_party for c in caveats)
    if structural:  # delegations and counters use the chain's intermediate signatures: keep them all
        signatures = chain.signatures(k0, identifier_bytes, encoded)
        valid = chain.matches(signatures[-1], signature)
    else:
        signatures = []
        valid = chain.verify(k0, identifier_bytes, encoded, signature)
    if not valid:
        raise BadSignature("the token's signature does not verify: it was altered or not minted with this key",
                           token_id=token_id)
    if not structural:
        return VerifiedToken(token_id, identifier.key_id, location, caveats, (0,) * len(caveats),
                             (None,) * len(caveats), (Hop(0, None, token_id),), None, (), signature)
    return _walk_holders(token_id, identifier.key_id, location, caveats, encoded, signatures, signature,
                         delegation_signed)


def _walk_holders(token_id: str, key_id: str, location: str, caveats: tuple[Caveat, ...],
                  encoded: tuple[bytes, ...], signatures: list[bytes], signature: bytes,
                  delegation_signed: DelegationCheck) -> VerifiedToken:
    """Specs/SPEC.md §16.3: every delegation signed by the holder before it; hops, agents and meters."""
    holder: PublicKey | None = None
    hop = 0
    hops: list[int] = []
    agents: list[str | None] = []
    links = [Hop(0, None, token_id)]
    depth_caveats: list[tuple[int, int, int]] = []
    metered: list[MeteredCaveat] = []
    third_party: list[PendingDischarge] = []
    for index, caveat in enumerate(caveats):
        hops.append(hop)
        agents.append(holder.fingerprint if holder is not None and hop > 0 else None)
        if isinstance(caveat, Holder):
            if holder is not None:
                raise BadDelegation(
                    f"caveat {index + 1} names another holder; a holder changes only through a signed delegation",
                    token_id=token_id)
            holder = caveat.public_key
            links[0] = Hop(0, holder.fingerprint, token_id)
        elif isinstance(caveat, Delegate):
            if holder is None:
                raise BadDelegation(f"caveat {index + 1} delegates a token that has no holder", token_id=token_id)
            if not delegation_signed(holder, caveat, encoded[index], signatures[index], hop + 1):
                raise BadDelegation(
                    f"caveat {index + 1}: the delegation to agent {caveat.to.fingerprint} is not signed by the "
                    f"token's holder at that point (agent {holder.fingerprint})", token_id=token_id)
            hop += 1
            holder = caveat.to
            links.append(Hop(hop, holder.fingerprint, hop_id(token_id, caveat.signature)))
        elif isinstance(caveat, MaxDepth):
            depth_caveats.append((index, caveat.n, hop))
        elif caveat.metered:
            metered.append(MeteredCaveat(index, caveat, meter_key(token_id, signatures[index + 1])))
        elif caveat.third_party:
            third_party.append(PendingDischarge(index, caveat, caveat_key(signatures[index], caveat.vid)))
    failures = tuple(
        Reason(Code.DEPTH_EXCEEDED,
               f"the token went through {hop} delegation{'s' if hop != 1 else ''}; at most {limit} allowed",
               index + 1, caveats[index], at_hop, agents[index])
        for index, limit, at_hop in depth_caveats if hop > limit
    )
    return VerifiedToken(token_id, key_id, location, caveats, tuple(hops), tuple(agents), tuple(links),
                         holder, failures, signature, tuple(metered), tuple(third_party))


def check_delegation(holder: PublicKey, caveat: Delegate, previous: bytes, hop: int) -> bool:
    """True if ``caveat``'s signature is ``holder``'s over the delegation message for ``hop``."""
    return holder.verify(caveat.signature, delegation_message(previous, caveat.to, hop))
