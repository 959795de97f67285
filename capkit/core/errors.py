"""The one exception root of capkit, with stable codes.

A policy denial is never an exception: ``Verifier.authorize`` returns a
``Decision``. Exceptions are for programming and configuration errors and for
inputs handed to functions that construct things (parse a token, load a key
file, build a caveat). Every exception capkit defines is here and derives from
``CapkitError``; its ``code`` is stable and its message is one sentence for a
person. Messages never contain token text, signatures or key material.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmountError",
    "ApprovalError",
    "ApprovalRequired",
    "AuditError",
    "AuthorizationDenied",
    "BadDelegation",
    "BadDischarge",
    "BadSignature",
    "CapkitError",
    "GrantError",
    "InsecureKeyFile",
    "InvalidCaveat",
    "InvalidInvocation",
    "KeyringError",
    "MalformedKey",
    "MalformedProof",
    "MalformedToken",
    "MatchError",
    "NotCanonical",
    "NothingSpent",
    "StoreUnavailable",
    "StrictJSONError",
    "TimeFormatError",
    "TokenTooLarge",
    "TraceError",
    "UnknownKey",
    "UnmappableRoute",
    "UnsafeRoutes",
    "UnsafeStore",
    "WrongLocation",
    "all_error_classes",
]


class CapkitError(Exception):
    """Root of every error capkit raises on purpose.

    ``token_id`` is set when the error concerns a token whose id could be read.
    """

    code = "capkit_error"

    def __init__(self, message: str, *, token_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token_id = token_id


# ------------------------------------------------------------------ tokens


class MalformedToken(CapkitError):
    """The bytes or text are not a well-formed capkit token."""

    code = "malformed_token"


class TokenTooLarge(MalformedToken):
    """The token exceeds a size, count or length limit."""

    code = "too_large"


class WrongLocation(CapkitError):
    """The token is for a location this verifier does not serve."""

    code = "wrong_location"


class BadSignature(CapkitError):
    """The token's HMAC chain does not verify under the keyring: altered, or minted with another key."""

    code = "bad_signature"


class BadDelegation(CapkitError):
    """A delegation is not signed by the holder it comes from, or cannot be made (wrong key, bearer, depth)."""

    code = "bad_delegation"


class BadDischarge(CapkitError):
    """A discharge of a third-party caveat cannot be read, or does not discharge what it should."""

    code = "bad_discharge"


class NotCanonical(CapkitError):
    """The bytes are not the canonical JSON encoding of any value."""

    code = "not_canonical"


# ----------------------------------------------------------------- caveats


class InvalidCaveat(CapkitError):
    """A caveat was constructed or decoded with values outside its grammar."""

    code = "invalid_caveat"


class AmountError(InvalidCaveat):
    """A value is not an acceptable amount; the message says why in a few words."""

    code = "bad_amount"


class MatchError(CapkitError):
    """A value cannot be matched (wrong shape): a path, address or pattern; the message says why."""

    code = "cannot_match"


# -------------------------------------------------------------------- keys


class KeyringError(CapkitError):
    """A keyring or key file is unusable (missing, corrupt, wrong format)."""

    code = "keyring_error"


class InsecureKeyFile(KeyringError):
    """A key or state file is readable or writable by group or others, or owned by another user; it is refused."""

    code = "insecure_key_file"


class UnknownKey(KeyringError):
    """The keyring holds no key with the requested id (or not for that location)."""

    code = "unknown_key"


class MalformedKey(KeyringError):
    """A public key, agent key or key file is not in capkit's format."""

    code = "malformed_key"


# ------------------------------------------------------------ calls, proofs


class InvalidInvocation(CapkitError):
    """An invocation is not a well-formed tool call."""

    code = "bad_invocation"


class MalformedProof(CapkitError):
    """A proof is not in capkit's format."""

    code = "bad_proof"


class StrictJSONError(CapkitError):
    """Text is not one strict JSON value (duplicate keys, NaN, trailing data); never quotes the input."""

    code = "bad_json"


class TimeFormatError(CapkitError):
    """A time or duration is not in an accepted form."""

    code = "bad_time"


# ------------------------------------------------------------------- state


class StoreUnavailable(CapkitError):
    """The store could not be reached, timed out, or answered something unusable; calls are denied."""

    code = "state_unavailable"


class UnsafeStore(StoreUnavailable):
    """A store's file or schema was not made by capkit (wrong owner or mode, unexpected triggers); it is refused."""

    code = "unsafe_store"


# ------------------------------------------------------- files and services


class GrantError(CapkitError):
    """A grant file is not valid; the message names the offending key."""

    code = "bad_grant"


class TraceError(CapkitError):
    """A trace (or a log to import) cannot be read; the message names the line."""

    code = "bad_trace"


class UnmappableRoute(CapkitError):
    """A request path that cannot name a tool unambiguously."""

    code = "bad_route"


class UnsafeRoutes(CapkitError):
    """Routes read arguments from places capkit's HTTP middleware does not authorize."""

    code = "unsafe_routes"


class AuditError(CapkitError):
    """An audit record could not be written, or an audit log or checkpoint is unusable."""

    code = "audit_unavailable"


class ApprovalError(CapkitError):
    """An approval request, discharge or approver key is unusable."""

    code = "bad_approval"


# ------------------------------------------------------------ the boundary


class AuthorizationDenied(CapkitError):
    """A call was denied where the caller asked for an exception (``Verifier.authorized``, integrations).

    ``decision`` carries every reason; the message is its explanation.
    """

    code = "denied"

    def __init__(self, decision: Any) -> None:
        super().__init__(decision.explain())
        self.decision = decision
        self.token_id = getattr(decision, "token_id", None)


class ApprovalRequired(AuthorizationDenied):
    """A call was denied only because it needs a person's approval; ``request`` says what to ask for
    (``capkit.approvals.approve`` turns it into a discharge)."""

    code = "approval_required"

    def __init__(self, decision: Any) -> None:
        super().__init__(decision)
        self.request = decision.approval


def denial(decision: Any) -> AuthorizationDenied:
    """The exception of a denied decision: ``ApprovalRequired`` when approval is all it lacks."""
    if getattr(decision, "approval", None) is not None:
        return ApprovalRequired(decision)
    return AuthorizationDenied(decision)


class NothingSpent(CapkitError):
    """Raised by a tool to say, explicitly, that it spent nothing: its budget reservation is given back.

    Only this gives a budget back. Any other error, an error result or an
    ambiguous outcome commits the spend (call limits always count).
    """

    code = "nothing_spent"

    def __init__(self, message: str = "the tool spent nothing") -> None:
        super().__init__(message)


def all_error_classes() -> tuple[type[CapkitError], ...]:
    """Every exception class defined here (for tests and ``capkit codes``)."""
    out: list[type[CapkitError]] = []
    pending: list[type[CapkitError]] = [CapkitError]
    while pending:
        cls = pending.pop()
        out.append(cls)
        pending.extend(cls.__subclasses__())
    return tuple(c for c in out if c.__module__ == __name__)
