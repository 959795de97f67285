"""``Credentials``: what an agent runtime holds to present a token (the token and the holder's key).

The runtime, not the model, holds them: pass them explicitly, or bind them for
a block of work with ``acting_as`` (a context variable, so concurrent tasks
each see their own). ``present`` makes the token text and a fresh proof of
possession for one exact invocation; ``meta`` wraps them as MCP ``_meta``.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator

import attrs

from ..core.discharge import Discharge
from ..core.errors import CapkitError
from ..core.publickey import PublicKey
from ..core.holder import AgentKey
from ..core.proof import Proof
from ..core.invocation import Invocation
from ..core.token.token import Token

#: The prefix of every ``_meta`` key capkit reads or writes (a reverse-DNS prefix, as MCP's naming rules ask).
META_PREFIX = "dev.capkit/"
#: Where capkit's token and proof travel in an MCP request's ``_meta``.
META_KEY = META_PREFIX + "credentials"
#: Where a denial's decision (codes, caveats, hops) travels in a tool error result's ``_meta``.
DECISION_META = META_PREFIX + "decision"
#: A tool result whose ``_meta`` holds this key with the value ``"nothing_spent"`` gives its budget room back.
OUTCOME_META = META_PREFIX + "outcome"
NOTHING_SPENT = "nothing_spent"
#: Where a denial for lack of approval carries the approval request (tool error result's ``_meta``).
APPROVAL_META = META_PREFIX + "approval"

_current: contextvars.ContextVar["Credentials | None"] = contextvars.ContextVar("capkit_credentials", default=None)


@attrs.frozen(repr=False)
class Credentials:
    """A token and (for a holder-bound token) the holder's key, plus the audience calls go to."""

    token: "Token | str"
    key: AgentKey | None = None
    audience: str | None = None
    #: Discharges (approvals) bound to the token, sent with every call until replaced.
    discharges: tuple[str, ...] = ()
    #: The verifier's proof key (``Verifier.proof_public_key``): proofs are then designated-verifier MACs
    #: (about 2 µs instead of an Ed25519 signature; they convince only that verifier, see SECURITY.md).
    verifier_key: "PublicKey | str | None" = None
    _mac_key: "bytes | None" = attrs.field(init=False, repr=False, eq=False, default=None)
    #: The token's text form, computed once.
    token_text: str = attrs.field(init=False, repr=False, eq=False)
    _parsed: Token = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        parsed = self.token if isinstance(self.token, Token) else Token.parse(self.token)
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "token_text", parsed.serialize() if isinstance(self.token, Token) else self.token)
        if self.verifier_key is not None:
            if self.key is None:
                raise CapkitError("MAC proofs need the agent's key: Credentials(token, key, verifier_key=...)")
            object.__setattr__(self, "_mac_key", self.key.mac_key(PublicKey.parse(self.verifier_key), agent=True))

    def __repr__(self) -> str:  # never show the token
        key = "" if self.key is None else f", key={self.key!r}"
        return f"Credentials(<token>{key}, audience={self.audience!r})"

    def present(self, tool: str, args: dict[str, Any]) -> tuple[str, str | None]:
        """The token text and a fresh proof for calling ``tool`` with exactly ``args`` (no proof without a key)."""
        if self.key is None:
            return self.token_text, None
        invocation = Invocation(tool, args, self.audience)
        return self.token_text, Proof.create(self.key, self._parsed, invocation, mac_key=self._mac_key).serialize()

    def approved(self, discharge: "Discharge | str") -> "Credentials":
        """These credentials with ``discharge`` (an approval for one call) bound to the token, to retry with."""
        bound = Discharge.parse(discharge).bind(self._parsed.signature).serialize()
        return attrs.evolve(self, token=self._parsed, discharges=self.discharges + (bound,))

    def meta(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """MCP request ``_meta`` carrying the token, a proof for this exact call, and any discharges."""
        token, proof = self.present(tool, args)
        body: dict[str, Any] = {"token": token}
        if proof is not None:
            body["proof"] = proof
        if self.discharges:
            body["discharges"] = list(self.discharges)
        return {META_KEY: body}


@contextmanager
def acting_as(credentials: Credentials) -> Iterator[Credentials]:
    """Bind ``credentials`` for the calls made inside the block (by this task or thread)."""
    reset = _current.set(credentials)
    try:
        yield credentials
    finally:
        _current.reset(reset)


def current_credentials() -> Credentials | None:
    """The credentials bound by the innermost ``acting_as``, if any."""
    return _current.get()
