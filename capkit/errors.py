"""The one exception root of capkit, with stable codes.

A policy denial is never an exception: ``Verifier.authorize`` returns a
``Decision``. Exceptions are for programming and configuration errors and for
inputs handed to functions that construct things (parse a token, load a key
file, build a caveat). Every exception capkit raises on purpose is a
``CapkitError``; its ``code`` is stable and its message is one sentence for a
person. Messages never contain token text, signatures or key material.
"""

from __future__ import annotations


class CapkitError(Exception):
    """Root of every error capkit raises on purpose.

    ``token_id`` is set when the error concerns a token whose id could be read.
    """

    code = "capkit_error"

    def __init__(self, message: str, *, token_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token_id = token_id


class MalformedToken(CapkitError):
    """The bytes or text are not a well-formed capkit token."""

    code = "malformed_token"


class TokenTooLarge(MalformedToken):
    """The token exceeds a size, count or length limit."""

    code = "too_large"


class BadSignature(CapkitError):
    """The token's HMAC chain does not verify under the keyring: altered, or minted with another key."""

    code = "bad_signature"


class BadDelegation(CapkitError):
    """A delegation in the token's chain is not signed by the holder it claims to come from."""

    code = "bad_delegation"


class InvalidCaveat(CapkitError):
    """A caveat was constructed or decoded with values outside its grammar."""

    code = "invalid_caveat"


class KeyringError(CapkitError):
    """A keyring or key file is unusable (missing, corrupt, wrong format)."""

    code = "keyring_error"


class InsecureKeyFile(KeyringError):
    """A key file is readable or writable by group or others; it is refused."""

    code = "insecure_key_file"


class UnknownKey(KeyringError):
    """The keyring holds no key with the requested id (or not for that location)."""

    code = "unknown_key"


class InvalidInvocation(CapkitError):
    """An invocation is not a well-formed tool call (used when one must be digested)."""

    code = "bad_invocation"


class AuthorizationDenied(CapkitError):
    """A call was denied where the caller asked for an exception (``Verifier.authorized``, integrations).

    ``decision`` carries every reason; the message is its explanation.
    """

    code = "denied"

    def __init__(self, decision: "object") -> None:
        super().__init__(decision.explain())  # type: ignore[attr-defined]
        self.decision = decision
        self.token_id = getattr(decision, "token_id", None)
