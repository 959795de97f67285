"""The stable reason codes of a denial, each with one line saying what it means (specs/SPEC.md §12).

Caveats, the verifier and the stores use these constants; ``capkit codes``
prints the table. A code never changes meaning; new codes may be added.
"""

from __future__ import annotations


class Code:
    """The stable reason codes."""

    # the token itself
    MALFORMED_TOKEN = "malformed_token"
    TOO_LARGE = "too_large"
    WRONG_LOCATION = "wrong_location"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    # caveats that cannot be interpreted
    UNKNOWN_CAVEAT = "unknown_caveat"
    MALFORMED_CAVEAT = "malformed_caveat"
    # the call
    BAD_INVOCATION = "bad_invocation"
    TOOL_NOT_GRANTED = "tool_not_granted"
    ARG_MISSING = "arg_missing"
    ARG_UNEXPECTED = "arg_unexpected"
    ARG_INVALID = "arg_invalid"
    ARG_NOT_ALLOWED = "arg_not_allowed"
    ARG_OUT_OF_RANGE = "arg_out_of_range"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    # holders, proofs, delegation
    BEARER_NOT_ALLOWED = "bearer_not_allowed"
    PROOF_MISSING = "proof_missing"
    BAD_PROOF = "bad_proof"
    WRONG_HOLDER = "wrong_holder"
    PROOF_STALE = "proof_stale"
    PROOF_REPLAYED = "proof_replayed"
    PROOF_MODE_NOT_ACCEPTED = "proof_mode_not_accepted"
    BAD_DELEGATION = "bad_delegation"
    DEPTH_EXCEEDED = "depth_exceeded"
    # approvals and other third parties
    APPROVAL_REQUIRED = "approval_required"
    BAD_DISCHARGE = "bad_discharge"
    # shared state
    REVOKED = "revoked"
    BUDGET_EXCEEDED = "budget_exceeded"
    CALLS_EXCEEDED = "calls_exceeded"
    STATE_UNAVAILABLE = "state_unavailable"
    AUDIT_UNAVAILABLE = "audit_unavailable"
    # the verifier
    INTERNAL_ERROR = "internal_error"


#: What each code means, in one line (the table of specs/SPEC.md §12).
MEANINGS: dict[str, str] = {
    Code.MALFORMED_TOKEN: "not a well-formed token (text, binary, identifier, location)",
    Code.TOO_LARGE: "a size, count, length or work limit was exceeded",
    Code.WRONG_LOCATION: "the token is for a location this verifier does not serve",
    Code.UNKNOWN_KEY: "the key id is not in the verifier's keyring (or not for this location)",
    Code.BAD_SIGNATURE: "the HMAC chain does not verify: altered, reordered, truncated caveats, or another key",
    Code.UNKNOWN_CAVEAT: "a caveat of a kind this verifier does not know",
    Code.MALFORMED_CAVEAT: "a caveat of a known kind with invalid or non-canonical content",
    Code.BAD_INVOCATION: "the call is not a well-formed invocation",
    Code.ARG_UNEXPECTED: "the call has an argument the grant's closed argument list (args_only) does not name",
    Code.TOOL_NOT_GRANTED: "the tool matches no granted pattern",
    Code.ARG_MISSING: "a constrained argument is absent",
    Code.ARG_INVALID: "a constrained argument has the wrong type or cannot be read (not a number, not an address)",
    Code.ARG_NOT_ALLOWED: "a value outside a set, prefix, pattern, directory, domain or time window",
    Code.ARG_OUT_OF_RANGE: "a number outside its bound",
    Code.EXPIRED: "the call is at or after the expiry",
    Code.NOT_YET_VALID: "the call is before the not-before time",
    Code.WRONG_AUDIENCE: "the call names another audience, or none",
    Code.BEARER_NOT_ALLOWED: "the token names no holder and the verifier requires holder-bound tokens",
    Code.PROOF_MISSING: "the token is holder-bound and the call carries no proof",
    Code.BAD_PROOF: "the proof cannot be read, or it does not cover this call and token",
    Code.WRONG_HOLDER: "the proof is made by an agent other than the token's current holder",
    Code.PROOF_STALE: "the proof's time is outside the freshness window (either direction)",
    Code.PROOF_REPLAYED: "the proof's nonce was already accepted",
    Code.PROOF_MODE_NOT_ACCEPTED: "the proof is of a kind (signature or MAC) this verifier does not accept",
    Code.BAD_DELEGATION: "a holder or delegation caveat is misplaced, or a delegation is not signed by the holder before it",
    Code.DEPTH_EXCEEDED: "the token went through more delegations than a max_depth caveat allows",
    Code.REVOKED: "a hop of the token (or the whole grant) was revoked",
    Code.BUDGET_EXCEEDED: "the call's amount does not fit in what is left of a budget",
    Code.CALLS_EXCEEDED: "a call limit is used up",
    Code.STATE_UNAVAILABLE: "the shared store could not be reached, timed out, or answered something unusable",
    Code.APPROVAL_REQUIRED: "the call needs a person's approval (a discharge of an approval caveat); it was requested",
    Code.BAD_DISCHARGE: "a discharge is missing, not for this call or token, expired, reused or not signed by its party",
    Code.AUDIT_UNAVAILABLE: "the audit record of the call could not be written; the call is denied",
    Code.INTERNAL_ERROR: "the verifier failed unexpectedly; the call is denied",
}

ALL_CODES = frozenset(v for k, v in vars(Code).items() if k.isupper())
assert ALL_CODES == frozenset(MEANINGS), "every code has a meaning"
