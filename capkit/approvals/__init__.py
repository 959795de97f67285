"""Human approval of one exact call (specs/SPEC.md §19): the approver's side, and the agent's binding.

A token may carry ``Approval`` caveats (``capkit.caveats.Approval``). A call
that needs one is denied with ``approval_required`` and ``Decision.approval``
holds an ``ApprovalRequest``. The approver is shown the request
(``describe``), and ``approve`` issues a discharge for exactly that call: its
invocation digest recomputed from the call shown (never taken from the
request), the exact token, a short lifetime (default 5 minutes) and a nonce
the verifier accepts once. The agent binds the discharge to its token
(``bind``) and sends it with the retried call.

    decision = verifier.authorize(token, call, proof)
    if decision.codes == ("approval_required",):
        discharge = approve(decision.approval, approver_key, now=time.time())   # the person said yes
        decision = verifier.authorize(token, call, new_proof, [bind(token, discharge)])
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Mapping

from ..core import b64 as _b64
from ..core import chain
from ..core.caveats import REGISTRY, Approval, Approved, Expires, Once
from ..core.discharge import DISCHARGE_PREFIX, ApprovalRequest, ApprovalTicket, Discharge
from ..core.errors import ApprovalError, CapkitError, MalformedKey
from ..core.invocation import Invocation, invocation_digest
from ..core.publickey import PublicKey
from ..core.token import binary
from ..core.token.decode import tail_signature
from ..core.caveats._fields import TOOL_NAME

__all__ = ["DEFAULT_LIFETIME", "DISCHARGE_PREFIX", "ApprovalRequest", "Discharge", "approve", "bind",
           "describe", "mint_discharge", "parse_request"]

#: How long an approval's discharge lives by default (seconds).
DEFAULT_LIFETIME = 300


def parse_request(data: "str | bytes | Mapping[str, Any] | ApprovalRequest") -> ApprovalRequest:
    """An approval request from its JSON (text or parsed); ``ApprovalError`` saying what is wrong."""
    if isinstance(data, ApprovalRequest):
        return data
    try:
        doc = json.loads(data) if isinstance(data, (str, bytes)) else data
    except (ValueError, RecursionError):
        raise ApprovalError("the approval request is not JSON") from None
    if not isinstance(doc, Mapping) or doc.get("type") != "capkit-approval-request" or doc.get("v") != 1:
        raise ApprovalError("this is not a capkit approval request (version 1)")
    try:
        call = doc["call"]
        tool, args, audience = call["tool"], call["args"], call.get("audience")
        if not isinstance(tool, str) or not TOOL_NAME.fullmatch(tool) or not isinstance(args, dict) or \
                not (audience is None or isinstance(audience, str)):
            raise ApprovalError("the request's call is not a tool name, an object of arguments and an audience")
        hops = tuple(doc["hops"])
        if not all(isinstance(h, str) for h in hops) or not isinstance(doc["token_id"], str):
            raise ApprovalError("the request's token id and hops are text")
        agent = doc.get("agent")
        if agent is not None and not isinstance(agent, str):
            raise ApprovalError("the request's agent is a fingerprint")
        token = doc["token"]
        if not isinstance(token, str) or len(_b64.decode(token)) != 16:
            raise ApprovalError("the request's token is 16 bytes of base64url")
        tickets = tuple(
            ApprovalTicket(PublicKey.parse(t["approver"]), t.get("location"), _b64.decode(t["cid"]), int(t["caveat"]))
            for t in doc["tickets"])
    except ApprovalError:
        raise
    except (KeyError, TypeError, ValueError, CapkitError):
        raise ApprovalError("the approval request is missing a field or has one of the wrong kind") from None
    if not tickets:
        raise ApprovalError("the approval request asks no approver")
    return ApprovalRequest(tool, args, audience, doc["token_id"], hops, agent, token, tickets)


def describe(request: ApprovalRequest) -> str:
    """What the approver must read before saying yes: the exact call, who makes it, with which token."""
    args = json.dumps(dict(request.args), ensure_ascii=False, sort_keys=True, indent=2)
    agent = f"agent {request.agent}" if request.agent else "a bearer token (no agent key)"
    delegated = f", delegated {len(request.hops) - 1} time(s)" if len(request.hops) > 1 else ""
    audience = f" at {request.audience}" if request.audience else ""
    return (f"{agent} asks to call {request.tool}{audience} with:\n{args}\n"
            f"using token {request.token_id}{delegated}.")


def _ticket_for(request: ApprovalRequest, approver: Any) -> tuple[ApprovalTicket, Approval]:
    public = getattr(approver, "public_key", None)
    if not isinstance(public, PublicKey) or not callable(getattr(approver, "unseal", None)):
        raise ApprovalError("approving needs the approver's AgentKey")
    for ticket in request.tickets:
        if ticket.approver != public:
            continue
        caveat = REGISTRY.decode(binary.RawThirdParty(ticket.cid, b"\x00", None))
        if not isinstance(caveat, Approval) or caveat.approver != public:
            raise ApprovalError("the request's ticket is not an approval caveat for this approver")
        return ticket, caveat
    names = ", ".join(t.approver.fingerprint for t in request.tickets)
    raise ApprovalError(f"this request asks approver(s) {names}, not {public.fingerprint}")


def mint_discharge(root_key: bytes, cid: bytes, *caveats: Any, location: str = "approval") -> Discharge:
    """A discharge of the third-party caveat ``cid`` whose root key is ``root_key``, carrying ``caveats``
    (unbound: the agent binds it to its token). For any third party, not only approvals."""
    if not isinstance(root_key, bytes) or not isinstance(cid, bytes) or not cid:
        raise ApprovalError("a discharge needs the caveat's root key and id (bytes)")
    encoded = tuple(c.encode() for c in caveats)
    signature = chain.extend(chain.root_signature(root_key, cid), encoded)
    return Discharge(binary.RawMacaroon(location.encode("utf-8"), cid, encoded, signature))


def approve(request: "ApprovalRequest | str | Mapping[str, Any]", approver: Any, *, now: float,
            lifetime: int = DEFAULT_LIFETIME, nonce: bytes | None = None) -> Discharge:
    """The discharge approving exactly the request's call, by ``approver`` (an ``AgentKey``), valid for
    ``lifetime`` seconds from ``now`` and usable once. Raises ``ApprovalError``."""
    request = parse_request(request)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= 3600:
        raise ApprovalError("an approval lives 1 to 3600 seconds")
    ticket, caveat = _ticket_for(request, approver)
    try:
        root_key = approver.unseal(caveat.sealed)
    except MalformedKey as exc:
        raise ApprovalError(f"the approval caveat cannot be opened: {exc.message}") from None
    try:
        digest = invocation_digest(Invocation(request.tool, dict(request.args), request.audience))
    except CapkitError as exc:
        raise ApprovalError(f"the request's call cannot be approved: {exc.message}") from None
    return mint_discharge(root_key, ticket.cid, Approved(digest, _b64.decode(request.token)),
                          Expires(int(now) + lifetime), Once(secrets.token_bytes(16) if nonce is None else nonce),
                          location=ticket.location or "approval")


def bind(token: Any, discharge: "Discharge | str") -> str:
    """The text of ``discharge`` bound to ``token`` (a ``Token`` or its text): what the agent sends."""
    return Discharge.parse(discharge).bind(tail_signature(token)).serialize()
