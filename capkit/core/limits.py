"""Size and count caps, in one place, with safe defaults.

Every parser in capkit takes a ``Limits``; exceeding one yields the reason code
``too_large`` (or ``TokenTooLarge`` where an exception is the contract). The
defaults are generous for real grants and small enough that a hostile token
cannot make a verifier do unbounded work.
"""

from __future__ import annotations

import attrs

from .errors import InvalidCaveat


def _positive(instance: object, attribute: "attrs.Attribute[int]", value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 40:
        raise InvalidCaveat(f"Limits.{attribute.name} must be a positive integer")


@attrs.frozen(field_transformer=lambda cls, fields: [f.evolve(validator=_positive) for f in fields])
class Limits:
    """Caps applied when tokens are parsed and invocations are checked (each a positive integer)."""

    #: Bytes of the binary (V2) token.
    max_token_bytes: int = 8192
    #: First-party caveats in one token (all hops together).
    max_caveats: int = 64
    #: Bytes of one encoded caveat.
    max_caveat_bytes: int = 2048
    #: Bytes of the identifier field.
    max_identifier_bytes: int = 256
    #: Characters of any one string inside a caveat (names, patterns, paths).
    max_string_chars: int = 1024
    #: Members of any one set inside a caveat (tool names, one-of values, audiences).
    max_set_items: int = 256
    #: Nesting depth of invocation arguments.
    max_arg_depth: int = 16
    #: JSON values (scalars, lists, objects) in one invocation's arguments.
    max_arg_nodes: int = 10_000
    #: Characters of all strings in one invocation's arguments together.
    max_arg_chars: int = 1 << 20
    #: Characters of one argument value that a pattern caveat (prefix, glob, path_under, domain, date)
    #: examines; a longer value is denied (``too_large``), never scanned.
    max_match_chars: int = 8192
    #: Characters of argument text that all pattern caveats of one call examine together (each
    #: element of a list counts): the bound on the work one ``authorize`` does on argument values.
    max_match_work: int = 32768

    @property
    def max_token_text(self) -> int:
        """Characters of the text form (prefix + unpadded base64url) of the largest token."""
        return len("capkit_") + (self.max_token_bytes * 4 + 2) // 3


DEFAULT_LIMITS = Limits()


def require_limits(limits: object) -> Limits:
    """``limits`` itself if it is a ``Limits``; ``InvalidCaveat`` otherwise (a wrong object is refused, not used)."""
    if not isinstance(limits, Limits):
        raise InvalidCaveat(f"limits must be a capkit Limits, not {type(limits).__name__}")
    return limits
