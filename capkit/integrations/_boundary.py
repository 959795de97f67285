"""The one sequence every adapter follows: authorize, run only if allowed, then settle what was reserved.

Settling follows one rule (specs/SPEC.md §17.3): authority is never given
back on an ambiguous outcome. A tool that returns, returns an error, or
raises has its spend committed; only an explicit "nothing was spent" (the
tool raised ``NothingSpent``, or its result carries the adapter's
nothing-spent marker) gives budget room back, and call limits count every
allowed call whatever happened.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from ..core.caveats.base import Caveat
from ..core.decision import Decision
from ..core.errors import CapkitError, NothingSpent, StoreUnavailable
from ..core.invocation import Invocation
from ..state import MemoryStore
from ..core.verifier import Verifier

T = TypeVar("T")
_log = logging.getLogger("capkit.integrations")

#: Characters of argument text times pattern caveats above which ``authorize`` runs off the event loop.
INLINE_WORK = 4096


def denial_text(decision: Decision) -> str:
    """What a model (or a person) is told about a denial: every reason, no secret."""
    return "capkit " + decision.explain().replace("denied: ", "denied this call: ", 1)


def call_of(signature: inspect.Signature, tool: str, audience: str | None, args: tuple, kwargs: dict) -> Invocation:
    """The invocation of a Python tool called with ``args`` and ``kwargs``: its bound arguments, defaults applied."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise CapkitError(f"the call does not fit the tool's parameters: {exc}") from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and isinstance(arguments.get(name), dict):
            arguments.update(arguments.pop(name))  # **kwargs are arguments of their own names
    return Invocation(tool, arguments, audience)


def store_does_io(verifier: Verifier) -> bool:
    """True when the verifier's store talks to a file or a server (so async callers should not block on it)."""
    return not isinstance(verifier.store, MemoryStore)


def _text_size(value: Any, budget: int) -> int:
    """Characters of text in ``value`` (strings and names), counting at most to ``budget``."""
    if isinstance(value, str):
        return len(value)
    total = 0
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((None, v) for v in value)
    else:
        return 0
    for key, item in items:
        total += (len(key) if isinstance(key, str) else 0) + _text_size(item, budget - total)
        if total > budget:
            return total
    return total


def may_be_slow(verifier: Verifier, token: Any, invocation: Invocation) -> bool:
    """True when deciding this call could take more than about a millisecond (argument text × pattern caveats)."""
    try:
        verified = verifier.verify_chain(token)
    except CapkitError:
        return False  # a denial without argument checks: fast
    except Exception:
        return True
    examiners = sum(1 for c in verified.caveats if isinstance(c, Caveat) and c.examines_text)
    if not examiners:
        return False
    budget = INLINE_WORK // examiners
    return _text_size(getattr(invocation, "args", {}), budget) > budget


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking ``fn`` in a worker thread, on whichever async library is running."""
    try:
        import anyio  # the MCP SDKs and Starlette run on anyio (asyncio or trio)
    except ImportError:  # pragma: no cover - plain asyncio
        import asyncio

        return await asyncio.to_thread(fn, *args)
    return await anyio.to_thread.run_sync(fn, *args)


async def authorize_async(verifier: Verifier, token: Any, invocation: Invocation, proof: Any,
                          discharges: Any = ()) -> Decision:
    """``authorize`` without blocking the event loop: in a thread when the store does I/O or the call is large."""
    if store_does_io(verifier) or may_be_slow(verifier, token, invocation):
        return await in_thread(verifier.authorize, token, invocation, proof, discharges)
    return verifier.authorize(token, invocation, proof, discharges)


def settle(verifier: Verifier, decision: Decision, *, spent: bool) -> None:
    """``verifier.complete``; a store failure is logged, and the reservation lapses as spent (never refunded)."""
    try:
        verifier.complete(decision, spent=spent)
    except StoreUnavailable:
        pass  # complete() logged it; the reservation stays counted and lapses into a committed spend


async def settle_async(verifier: Verifier, decision: Decision, *, spent: bool) -> None:
    if decision.reservation is None and decision.record_id is None:
        return  # nothing to settle and no audit record to write
    if store_does_io(verifier):
        await in_thread(lambda: settle(verifier, decision, spent=spent))
    else:
        settle(verifier, decision, spent=spent)


async def run_allowed(verifier: Verifier, decision: Decision, call: Callable[[], Awaitable[T]],
                      nothing_spent: Callable[[T], bool] = lambda result: False) -> T:
    """Run an allowed call, then settle: committed unless the tool said explicitly that it spent nothing."""
    try:
        result = await call()
    except NothingSpent:
        await settle_async(verifier, decision, spent=False)
        raise
    except BaseException:
        await settle_async(verifier, decision, spent=True)
        raise
    await settle_async(verifier, decision, spent=not nothing_spent(result))
    return result


def run_allowed_sync(verifier: Verifier, decision: Decision, call: Callable[[], T]) -> T:
    """The synchronous ``run_allowed``."""
    try:
        result = call()
    except NothingSpent:
        settle(verifier, decision, spent=False)
        raise
    except BaseException:
        settle(verifier, decision, spent=True)
        raise
    settle(verifier, decision, spent=True)
    return result


# --------------------------------------------------- arguments as the tool sees them


def _number(value: Any) -> bool:
    from decimal import Decimal

    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A validated Python value as JSON-like data, keeping numbers as numbers (for ``transformed_arguments``)."""
    from enum import Enum

    if value is None or isinstance(value, (bool, str)) or _number(value):
        return value
    if isinstance(value, Enum):
        return _plain(value.value)
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return _plain(value.model_dump(mode="python", by_alias=True))
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return ("\x00set", sorted({repr(_plain(v)) for v in value}))
    try:
        from pydantic_core import to_jsonable_python

        return to_jsonable_python(value)
    except Exception:  # not JSON-representable: never equal to an argument
        return ("\x00opaque", id(value))


def _same(raw: Any, seen: Any) -> bool:
    from ..core.invocation import number_text

    if isinstance(seen, tuple) and seen and seen[0] == "\x00set":  # a set: the same members, duplicates merged
        return isinstance(raw, list) and sorted({repr(v) for v in raw}) == seen[1]
    if isinstance(raw, bool) or isinstance(seen, bool):
        return raw is seen
    if _number(raw) or _number(seen):
        if not (_number(raw) and _number(seen)):
            return False
        try:
            return number_text(raw) == number_text(seen)
        except CapkitError:
            return False
    if isinstance(raw, str) or isinstance(seen, str) or raw is None or seen is None:
        return type(raw) is type(seen) and raw == seen
    if isinstance(raw, Mapping):
        if not isinstance(seen, Mapping):
            return False
        if not set(raw) <= set(seen):
            return False  # the tool would not receive an argument the call holds
        return all(_same(raw[k], seen[k]) for k in raw)  # keys only the tool has are its defaults
    if isinstance(raw, (list, tuple)):
        return isinstance(seen, list) and len(raw) == len(seen) and all(_same(a, b) for a, b in zip(raw, seen))
    return False


def transformed_arguments(raw: Mapping[str, Any], validated: Mapping[str, Any]) -> list[str]:
    """The names of arguments a framework's validation would hand the tool as other values than the call holds.

    ``validated`` is what the tool receives (defaults may fill arguments the
    call left out: those are the tool's own, not the caller's). A JSON string
    turned into a list, ``"5"`` turned into 5, a float rounded to an int:
    each is a value nobody authorized, so the adapter refuses the call.
    """
    return sorted(name for name, value in raw.items() if name not in validated or not _same(value, _plain(
        validated[name])))
