"""The one sequence every adapter follows: authorize, run only if allowed, then commit or release."""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, TypeVar

from ..decision import Decision
from ..invocation import Invocation
from ..state import MemoryStore
from ..verifier import Verifier

T = TypeVar("T")


def denial_text(decision: Decision) -> str:
    """What a model (or a person) is told about a denial: every reason, no secret."""
    return "capkit " + decision.explain().replace("denied: ", "denied this call: ", 1)


def call_of(signature: inspect.Signature, tool: str, audience: str | None, args: tuple, kwargs: dict) -> Invocation:
    """The invocation of a Python tool called with ``args`` and ``kwargs``: its bound arguments, defaults applied."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return Invocation(tool, dict(bound.arguments), audience)


def store_does_io(verifier: Verifier) -> bool:
    """True when the verifier's store talks to a file or a server (so async callers should not block on it)."""
    return not isinstance(verifier.store, MemoryStore)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking ``fn`` in a worker thread, on whichever async library is running."""
    try:
        import anyio  # the MCP SDKs and Starlette run on anyio (asyncio or trio)
    except ImportError:  # pragma: no cover - plain asyncio
        import asyncio

        return await asyncio.to_thread(fn, *args)
    return await anyio.to_thread.run_sync(fn, *args)


async def authorize_async(verifier: Verifier, token: Any, invocation: Invocation, proof: Any) -> Decision:
    """``authorize`` without blocking the event loop on a store that does I/O."""
    if store_does_io(verifier):
        return await _in_thread(verifier.authorize, token, invocation, proof)
    return verifier.authorize(token, invocation, proof)


async def complete_async(verifier: Verifier, decision: Decision, ok: bool) -> None:
    if decision.reservation is None:
        return
    if store_does_io(verifier):
        await _in_thread(verifier.complete, decision, ok)
    else:
        verifier.complete(decision, ok)


async def run_allowed(verifier: Verifier, decision: Decision, call: Callable[[], Awaitable[T]],
                      succeeded: Callable[[T], bool] = lambda result: True) -> T:
    """Run an allowed call; commit if it returned a success, release if it failed or raised."""
    try:
        result = await call()
    except BaseException:
        await complete_async(verifier, decision, ok=False)
        raise
    await complete_async(verifier, decision, ok=succeeded(result))
    return result
