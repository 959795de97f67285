"""capkit: capability tokens for AI agents, verified at the tool boundary.

A person mints a token scoped to tools, argument values and time; agents
attenuate it for sub-agents; the tool backend's ``Verifier`` decides every
call with no model involved and explains every denial.
"""

from __future__ import annotations

from . import caveats
from .core.decision import ALL_CODES, Code, Decision, Hop, Reason
from .core.errors import (
    AuthorizationDenied,
    BadDelegation,
    BadSignature,
    CapkitError,
    InsecureKeyFile,
    InvalidCaveat,
    InvalidInvocation,
    KeyringError,
    MalformedToken,
    TokenTooLarge,
    UnknownKey,
)
from .core.holder import AgentKey, Proof
from .core.invocation import Invocation
from .core.publickey import PublicKey
from .state import StoreUnavailable, open_store
from .core.keys import KeyInfo, Keyring
from .core.limits import DEFAULT_LIMITS, Limits
from .core.token import Token, mint
from .core.verifier import VerifiedChain, Verifier

__version__ = "0.1.0"

__all__ = [
    "ALL_CODES",
    "AgentKey",
    "AuthorizationDenied",
    "BadDelegation",
    "BadSignature",
    "DEFAULT_LIMITS",
    "CapkitError",
    "Code",
    "Decision",
    "Hop",
    "InsecureKeyFile",
    "InvalidCaveat",
    "InvalidInvocation",
    "Invocation",
    "KeyInfo",
    "Keyring",
    "KeyringError",
    "Limits",
    "MalformedToken",
    "Proof",
    "PublicKey",
    "Reason",
    "StoreUnavailable",
    "Token",
    "TokenTooLarge",
    "UnknownKey",
    "VerifiedChain",
    "Verifier",
    "__version__",
    "caveats",
    "mint",
    "open_store",
]
