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
from .shape import ArgsOnly, DateWindow
from .thirdparty import Approval, Approved, Once, ThirdParty

_FIRST_PARTY = (Tools, Eq, OneOf, Max, Min, Range, Prefix, PathUnder, Glob, Domain, Expires, NotBefore, Audience,
                Holder, Delegate, MaxDepth, Budget, CallLimit, ArgsOnly, DateWindow)
REGISTRY = Registry(_FIRST_PARTY + (Approval,), third_party=ThirdParty)
#: What a discharge may carry: every first-party kind, and the terms of an approval.
DISCHARGE_REGISTRY = Registry(_FIRST_PARTY + (Approved, Once))

__all__ = [
    "REGISTRY",
    "Approval",
    "ArgsOnly",
    "Audience",
    "Budget",
    "Call",
    "CallLimit",
    "Caveat",
    "DateWindow",
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
    "ThirdParty",
    "Tools",
    "UnknownCaveat",
]
