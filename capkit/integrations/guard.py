"""``@guard``: require a capkit token on every call of a plain Python tool (sync or async).

    @guard(verifier, tool="bank.transfer")
    def transfer(recipient: str, amount: Decimal) -> str: ...

    with acting_as(Credentials(token, agent_key)):   # in the agent runtime
        transfer("landlord", Decimal("1250"))

The call's arguments (bound to the function's signature, defaults applied)
are the invocation's arguments. The credentials come from the keyword-only
argument ``capkit`` (a ``Credentials``), else from ``acting_as``; never from
the tool's other arguments, which a model fills. A denial raises
``AuthorizationDenied`` carrying the decision (``ApprovalRequired``, with the approval request, when a
person's approval is all it lacks), and the body does not run.
What the call reserved is committed whatever the body does (returns, raises:
the outcome is not known), except when it raises ``capkit.errors.NothingSpent``,
which gives its budget room back (call limits still count).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

from ..core.errors import CapkitError, denial
from ..core.invocation import Invocation
from ..core.verifier import Verifier
from ._boundary import authorize_async, call_of, run_allowed, run_allowed_sync
from .credentials import Credentials, current_credentials

F = TypeVar("F", bound=Callable[..., Any])
CREDENTIALS_ARGUMENT = "capkit"


def _credentials(explicit: object) -> Credentials:
    credentials = explicit if explicit is not None else current_credentials()
    if not isinstance(credentials, Credentials):
        raise CapkitError("no capkit credentials: pass capkit=Credentials(...) or call inside acting_as(...)")
    return credentials


def guard(verifier: Verifier, *, tool: str | None = None, audience: str | None = None) -> Callable[[F], F]:
    """Wrap a tool so that every call is authorized by ``verifier`` first (see the module docstring)."""

    def decorate(fn: F) -> F:
        name = tool or fn.__name__
        signature = inspect.signature(fn)
        if CREDENTIALS_ARGUMENT in signature.parameters:
            raise CapkitError(f"a guarded tool may not have a parameter named {CREDENTIALS_ARGUMENT!r}")

        def prepare(args: tuple, kwargs: dict) -> tuple[Invocation, str, str | None, tuple[str, ...]]:
            credentials = _credentials(kwargs.pop(CREDENTIALS_ARGUMENT, None))
            invocation = call_of(signature, name, audience if audience is not None else credentials.audience,
                                     args, kwargs)
            token, proof = credentials.present(invocation.tool, dict(invocation.args))
            return invocation, token, proof, credentials.discharges

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                invocation, token, proof, discharges = prepare(args, kwargs)
                decision = await authorize_async(verifier, token, invocation, proof, discharges)
                if not decision.allowed:
                    raise denial(decision)
                return await run_allowed(verifier, decision, lambda: fn(*args, **kwargs))

            return async_guarded  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            invocation, token, proof, discharges = prepare(args, kwargs)
            decision = verifier.authorize(token, invocation, proof, discharges)
            if not decision.allowed:
                raise denial(decision)
            return run_allowed_sync(verifier, decision, lambda: fn(*args, **kwargs))

        return guarded  # type: ignore[return-value]

    return decorate
