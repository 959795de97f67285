"""Typed caveats: each a frozen value whose fields are declared once, with one encoding and one check.

``REGISTRY`` lists the kinds this version understands; a token caveat of any
other kind decodes to ``UnknownCaveat`` and denies every call.
"""

from __future__ import annotations

from .arguments import Domain, Eq, Glob, Max, Min, OneOf, PathUnder, Prefix, Range
from .base import Call, Caveat, Failure, Registry, UnknownCaveat, Work
from .delegation import Delegate, Holder, MaxDepth
from .limits import Budget, CallLimit
from .scope import Audience, Expires, NotBefore, Tools

REGISTRY = Registry(
    (Tools, Eq, OneOf, Max, Min, Range, Prefix, PathUnder, Glob, Domain, Expires, NotBefore, Audience,
     Holder, Delegate, MaxDepth, Budget, CallLimit)
)

__all__ = [
    "REGISTRY",
    "Audience",
    "Budget",
    "Call",
    "CallLimit",
    "Caveat",
    "Delegate",
    "Domain",
    "Eq",
    "Expires",
    "Failure",
    "Glob",
    "Holder",
    "Max",
    "MaxDepth",
    "Min",
    "NotBefore",
    "OneOf",
    "PathUnder",
    "Prefix",
    "Range",
    "Registry",
    "Tools",
    "UnknownCaveat",
]
