"""Replay a trace against a grant: which actions exceeded the authority granted?

``evaluate(grant, calls, at=...)`` decides every call with ``Verifier.authorize``,
the same decision point a tool backend runs; nothing here re-implements a
check. It measures the authority the grant *states*, as its holder would
exercise it:

* Holder-bound tokens need a proof per call, which a log cannot carry. The
  grant's caveats (without the structural holder and delegation caveats) are
  therefore minted afresh, under a throw-away key, as a bearer token that an
  evaluation-only verifier accepts. Each denial is reported with the caveat's
  position, hop and agent in the original grant.
* Budgets and call limits count in a fresh in-memory store per episode (one
  run of one task); nothing is written anywhere else. An allowed call is
  committed at once, a denied one spends nothing.
* A call without a time is decided at ``at``; a call without an audience is
  addressed to ``audience`` (by default the first audience the grant names).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import attrs

from ..core.caveats import Audience, Holder
from ..core.caveats.delegation import stated_hops
from ..core.caveats.base import Caveat
from ..core.decision import Reason
from ..core.errors import CapkitError
from ..grant import Grant, parse_grant
from ..core.invocation import Invocation
from ..core.keys import Keyring
from ..state import MemoryStore
from ..core.token.token import Token, mint
from ..core.verifier import Verifier
from .trace import TraceCall


@attrs.frozen
class GrantCaveat:
    """One caveat of the evaluated grant, where it sits in the original token."""

    index: int  # 1-based position in the original token
    caveat: Caveat
    hop: int
    agent: str | None

    def describe(self) -> str:
        return self.caveat.describe()


@attrs.frozen
class EvaluationGrant:
    """The authority under evaluation: the caveats of a grant file or a token, in order."""

    caveats: tuple[GrantCaveat, ...]
    location: str
    #: How the grant was checked, for the report ("grant file", "token, signature verified", ...).
    provenance: str
    #: Token-level failures found when its chain was verified (they deny every call).
    failures: tuple[Reason, ...] = ()

    @classmethod
    def from_grant(cls, grant: Grant, provenance: str = "grant file") -> "EvaluationGrant":
        return cls(tuple(GrantCaveat(i, c, 0, None) for i, c in enumerate(grant.caveats, start=1)),
                   grant.location or "eval", provenance)

    @classmethod
    def from_grant_file(cls, text: str, calls: Sequence[TraceCall], *, now: int) -> "EvaluationGrant":
        """A grant file read for replaying ``calls``: its relative times (``expires = "1h"``) count from the
        first timed call, as if minted when the run began; ``now`` if no call has a time."""
        times = [c.at for c in calls if c.at is not None]
        return cls.from_grant(parse_grant(text, now=int(min(times)) if times else now))

    @classmethod
    def from_token(cls, token: Token, verifier: Verifier | None = None) -> "EvaluationGrant":
        """The token's caveats; with a ``verifier`` its chain must verify (raises the typed error if not)."""
        if verifier is not None:
            chain = verifier.verify_chain(token)
            items = tuple(GrantCaveat(i, c, h, a) for i, (c, h, a)
                          in enumerate(zip(chain.caveats, chain.hops, chain.agents), start=1))
            return cls(items, token.location, "token (signature and delegations verified)", chain.failures)
        items = tuple(GrantCaveat(i, c, hop, agent) for i, (c, (hop, agent))
                      in enumerate(zip(token.caveats, stated_hops(token.caveats)), start=1))
        return cls(items, token.location, "token (signature NOT checked: no keyring given)")

    @property
    def holder(self) -> str | None:
        holders = [g.caveat.public_key.fingerprint for g in self.caveats if isinstance(g.caveat, Holder)]
        return holders[0] if holders else None

    def default_audience(self) -> str | None:
        for item in self.caveats:
            if isinstance(item.caveat, Audience):
                return item.caveat.names[0]
        return None


@attrs.frozen
class CallOutcome:
    """The verdict on one traced call."""

    call: TraceCall
    allowed: bool
    reasons: tuple[Reason, ...]

    @property
    def deciding(self) -> Reason | None:
        """The first failed check (None when allowed)."""
        return self.reasons[0] if self.reasons else None

    def explain(self) -> str:
        return "allowed" if self.allowed else "denied: " + "; ".join(str(r) for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {"line": self.call.line, **self.call.to_json(), "allowed": self.allowed,
                "reasons": [r.to_json() for r in self.reasons], "explanation": self.explain()}


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@attrs.frozen
class Figures:
    """Counts of one evaluation (or several, added up) and the rates computed from them."""

    calls: int = 0
    denied: int = 0
    benign: int = 0
    benign_allowed: int = 0
    attack: int = 0
    attack_denied: int = 0
    attack_episodes: int = 0
    attack_episodes_blocked: int = 0
    attack_episodes_fully_blocked: int = 0

    @property
    def allowed(self) -> int:
        return self.calls - self.denied

    @property
    def unlabeled(self) -> int:
        return self.calls - self.benign - self.attack

    @property
    def exceedance_rate(self) -> float | None:
        """Calls outside the granted authority over all calls."""
        return _ratio(self.denied, self.calls)

    @property
    def utility_kept(self) -> float | None:
        """Benign calls allowed over benign calls."""
        return _ratio(self.benign_allowed, self.benign)

    @property
    def attacks_blocked(self) -> float | None:
        """Attack calls denied over attack calls."""
        return _ratio(self.attack_denied, self.attack)

    @property
    def attack_episodes_blocked_rate(self) -> float | None:
        """Attack episodes with at least one attack call denied, over attack episodes."""
        return _ratio(self.attack_episodes_blocked, self.attack_episodes)

    @property
    def confusion(self) -> dict[str, dict[str, int]]:
        """Labels against verdicts: a denied attack is caught, an allowed benign call is kept."""
        return {"benign": {"allowed": self.benign_allowed, "denied": self.benign - self.benign_allowed},
                "attack": {"allowed": self.attack - self.attack_denied, "denied": self.attack_denied}}

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(*(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other))))

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "allowed": self.allowed, "unlabeled": self.unlabeled,
                "exceedance_rate": self.exceedance_rate, "utility_kept": self.utility_kept,
                "attacks_blocked": self.attacks_blocked,
                "attack_episodes_blocked_rate": self.attack_episodes_blocked_rate, "confusion": self.confusion}


def figures_of(outcomes: Sequence[CallOutcome]) -> Figures:
    """The counts of ``outcomes`` (attack episodes are grouped by the calls' ``episode``)."""
    attack_episodes = blocked = fully = 0
    by_episode: dict[str | None, list[CallOutcome]] = {}
    for outcome in outcomes:
        by_episode.setdefault(outcome.call.episode, []).append(outcome)
    for group in by_episode.values():
        attacks = [o for o in group if o.call.label == "attack"]
        if attacks:
            attack_episodes += 1
            blocked += any(not o.allowed for o in attacks)
            fully += all(not o.allowed for o in attacks)
    return Figures(
        calls=len(outcomes),
        denied=sum(not o.allowed for o in outcomes),
        benign=sum(o.call.label == "benign" for o in outcomes),
        benign_allowed=sum(o.call.label == "benign" and o.allowed for o in outcomes),
        attack=sum(o.call.label == "attack" for o in outcomes),
        attack_denied=sum(o.call.label == "attack" and not o.allowed for o in outcomes),
        attack_episodes=attack_episodes, attack_episodes_blocked=blocked, attack_episodes_fully_blocked=fully)


@attrs.frozen
class Evaluation:
    """Every call's verdict and the figures, for one grant and one trace."""

    grant: EvaluationGrant
    outcomes: tuple[CallOutcome, ...]
    figures: Figures
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "grant": {"provenance": self.grant.provenance, "location": self.grant.location,
                      "holder": self.grant.holder,
                      "caveats": [{"index": g.index, "kind": g.caveat.kind, "hop": g.hop, "agent": g.agent,
                                   "text": g.describe()} for g in self.grant.caveats]},
            "figures": self.figures.to_json(),
            "calls": [o.to_json() for o in self.outcomes],
            "notes": list(self.notes),
        }


class _Replayer:
    """The grant as a bearer token under a throw-away key, and the map back to the original caveats."""

    def __init__(self, grant: EvaluationGrant) -> None:
        kept = [g for g in grant.caveats if not g.caveat.structural]
        if not kept:
            raise CapkitError("the grant states no caveat that limits calls; it would allow every call")
        self.keyring = Keyring.generate()
        self.token = mint(self.keyring, *(g.caveat for g in kept), location=grant.location)
        self.origin = kept
        self.failures = grant.failures

    def decide(self, verifier: Verifier, invocation: Invocation) -> tuple[bool, tuple[Reason, ...]]:
        decision = verifier.authorize(self.token, invocation)
        if decision.allowed and not self.failures:
            verifier.complete(decision, spent=True)  # the tool ran: the spend counts for later calls
            return True, ()
        if decision.allowed:  # pragma: no cover - chain failures without other reasons
            verifier.complete(decision, spent=False)
        reasons = tuple(self._original(r) for r in decision.reasons)
        return False, self.failures + reasons

    def _original(self, reason: Reason) -> Reason:
        if reason.caveat_index is None:
            return reason
        source = self.origin[reason.caveat_index - 1]
        return attrs.evolve(reason, caveat_index=source.index, hop=source.hop, agent=source.agent)


def evaluate(grant: EvaluationGrant, calls: Iterable[TraceCall], *, at: float,
             audience: str | None = None, progress: Callable[[], None] | None = None) -> Evaluation:
    """Decide every call of ``calls`` under ``grant`` (see the module docstring); never writes anywhere.

    ``progress``, if given, is called once after each call is decided (for a progress bar).
    """
    replayer = _Replayer(grant)
    audience = audience if audience is not None else grant.default_audience()
    notes = []
    if grant.holder is not None:
        notes.append(f"the grant is bound to agent {grant.holder}; calls are replayed as that holder would make "
                     "them, without proofs")
    if audience is not None:
        notes.append(f"calls without an audience are addressed to {audience!r}")
    ordered = list(calls)
    by_episode: dict[str | None, list[int]] = {}
    for index, call in enumerate(ordered):
        by_episode.setdefault(call.episode, []).append(index)
    outcomes: list[CallOutcome | None] = [None] * len(ordered)
    for indices in by_episode.values():  # each episode is a run of its own: a fresh store
        verifier = Verifier(replayer.keyring, location=grant.location, allow_bearer=True, store=MemoryStore(),
                            clock=lambda: at)
        for index in indices:
            call = ordered[index]
            invocation = Invocation(call.tool, call.args, call.audience or audience,
                                    call.at if call.at is not None else at)
            allowed, reasons = replayer.decide(verifier, invocation)
            outcomes[index] = CallOutcome(call, allowed, reasons)
            if progress is not None:
                progress()
    result = tuple(o for o in outcomes if o is not None)
    return Evaluation(grant, result, figures_of(result), tuple(notes))
