"""capkit: capability tokens for AI agents, verified at the tool boundary.

A person mints a token scoped to tools, argument values and time; agents
attenuate it for sub-agents; the tool backend's ``Verifier`` decides every
call with no model involved and explains every denial.

The public names are below (``capkit.caveats`` holds the caveat kinds,
``capkit.errors`` every exception); the code a verifier must trust is
``capkit.core`` and nothing else. Names are imported when first used, so a
tool backend that imports only ``capkit.core.verifier`` loads only the core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

#: Every public name and the module that defines it.
_EXPORTS = {
    "AgentKey": "capkit.core.holder",
    "AuthorizationDenied": "capkit.core.errors",
    "BadDelegation": "capkit.core.errors",
    "BadSignature": "capkit.core.errors",
    "CapkitError": "capkit.core.errors",
    "Code": "capkit.core.codes",
    "Decision": "capkit.core.decision",
    "InvalidCaveat": "capkit.core.errors",
    "Invocation": "capkit.core.invocation",
    "Keyring": "capkit.core.keys",
    "KeyringError": "capkit.core.errors",
    "Limits": "capkit.core.limits",
    "MalformedToken": "capkit.core.errors",
    "NothingSpent": "capkit.core.errors",
    "Proof": "capkit.core.proof",
    "PublicKey": "capkit.core.publickey",
    "Reason": "capkit.core.decision",
    "StoreUnavailable": "capkit.core.errors",
    "Token": "capkit.core.token.token",
    "Verifier": "capkit.core.verifier",
    "mint": "capkit.core.token.token",
    "open_store": "capkit.state",
}
_MODULES = ("caveats", "errors")

__all__ = sorted([*_EXPORTS, *_MODULES, "__version__"])

if TYPE_CHECKING:  # what type checkers and editors see
    from . import caveats, errors
    from .core.codes import Code
    from .core.decision import Decision, Reason
    from .core.errors import (
        AuthorizationDenied,
        BadDelegation,
        BadSignature,
        CapkitError,
        InvalidCaveat,
        KeyringError,
        MalformedToken,
        NothingSpent,
        StoreUnavailable,
    )
    from .core.holder import AgentKey
    from .core.invocation import Invocation
    from .core.keys import Keyring
    from .core.limits import Limits
    from .core.proof import Proof
    from .core.publickey import PublicKey
    from .core.token.token import Token, mint
    from .core.verifier import Verifier
    from .state import open_store


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"capkit.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capkit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
