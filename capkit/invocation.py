"""``Invocation``: one tool call as the tool backend sees it, and its validation.

An Invocation is built by the tool backend (or its adapter) from the request,
never by the model: ``audience`` names this backend and ``at`` is the
backend's clock. Arguments are JSON-like: dict, list/tuple, str, int, float,
``Decimal``, bool, None. ``Invocation`` stores what it is given; the verifier
validates it and denies (``bad_invocation``) what is not a well-formed call.
"""

from __future__ import annotations

import datetime as _dt
import math
from decimal import Decimal
from typing import Any, Mapping

import attrs

from .caveats import Call
from .caveats._fields import TOOL_NAME
from .limits import DEFAULT_LIMITS, Limits


@attrs.frozen(eq=True, hash=False)
class Invocation:
    """A tool call: tool name, arguments, the audience (backend) it is addressed to, and its time."""

    tool: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    audience: str | None = None
    #: Unix seconds (int/float) or an aware datetime; None: the verifier's clock.
    at: "float | int | _dt.datetime | None" = None


class InvocationProblem(ValueError):
    """Why an invocation is not well-formed (a sentence for a person)."""


def _seconds(at: object) -> float:
    if isinstance(at, _dt.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvocationProblem("the call time is a datetime without a timezone")
        return at.timestamp()
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise InvocationProblem("the call time is not Unix seconds or an aware datetime")
    return float(at)


class _Budget:
    __slots__ = ("nodes", "chars")

    def __init__(self, limits: Limits) -> None:
        self.nodes = limits.max_arg_nodes
        self.chars = limits.max_arg_chars


def _check_value(value: Any, depth: int, budget: _Budget, limits: Limits) -> None:
    budget.nodes -= 1
    if budget.nodes < 0:
        raise InvocationProblem(f"the arguments hold more than {limits.max_arg_nodes} values")
    if isinstance(value, str):
        budget.chars -= len(value)
        if budget.chars < 0:
            raise InvocationProblem(f"the arguments hold more than {limits.max_arg_chars} characters")
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if value.bit_length() > 256:
            raise InvocationProblem("an argument is an integer too large to handle")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvocationProblem("an argument is NaN or infinite")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvocationProblem("an argument is NaN or infinite")
        return
    if depth >= limits.max_arg_depth:
        raise InvocationProblem(f"the arguments are nested deeper than {limits.max_arg_depth} levels")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, depth + 1, budget, limits)
        return
    if isinstance(value, Mapping):
        _check_object(value, depth + 1, budget, limits)
        return
    raise InvocationProblem(f"an argument is a {type(value).__name__}, which is not a JSON value")


def _check_object(obj: Mapping[Any, Any], depth: int, budget: _Budget, limits: Limits) -> None:
    for key, item in obj.items():
        if type(key) is not str:
            raise InvocationProblem("an argument name is not text")
        budget.chars -= len(key)
        _check_value(item, depth, budget, limits)


def validate(invocation: object, now: float, limits: Limits = DEFAULT_LIMITS) -> Call:
    """The ``Call`` that caveats check, or ``InvocationProblem`` saying why there is none.

    ``now`` is used when the invocation carries no time.
    """
    if not isinstance(invocation, Invocation):
        raise InvocationProblem("the call is not a capkit Invocation")
    tool = invocation.tool
    if not isinstance(tool, str) or not TOOL_NAME.fullmatch(tool):
        raise InvocationProblem("the tool name is not 1-128 characters of A-Z a-z 0-9 _ . : / -")
    args = invocation.args
    if not isinstance(args, Mapping):
        raise InvocationProblem("the arguments are not a JSON object")
    _check_object(args, 0, _Budget(limits), limits)
    audience = invocation.audience
    if audience is not None and (not isinstance(audience, str) or not audience or len(audience) > 1024):
        raise InvocationProblem("the audience is not a non-empty string")
    at = now if invocation.at is None else _seconds(invocation.at)
    return Call(tool, args, audience, at)
