"""``Invocation``: one tool call as the tool backend sees it, and its validation.

An Invocation is built by the tool backend (or its adapter) from the request,
never by the model: ``audience`` names this backend and ``at`` is the
backend's clock. Arguments are JSON-like: dict, list/tuple, str, int, float,
``Decimal``, bool, None. ``Invocation`` stores what it is given; the verifier
validates it and denies (``bad_invocation``) what is not a well-formed call.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, Mapping

import attrs

from . import canonical
from .caveats import Call, Work
from .caveats._fields import TOOL_NAME
from .errors import InvalidInvocation
from .limits import DEFAULT_LIMITS, Limits
from .timefmt import MAX_SECONDS, unix_seconds

#: Largest decimal exponent (either sign) of a number in arguments.
MAX_NUMBER_EXPONENT = 400


@attrs.frozen(eq=True, hash=False)
class Invocation:
    """A tool call: tool name, arguments, the audience (backend) it is addressed to, and its time."""

    tool: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    audience: str | None = None
    #: Unix seconds (int/float) or an aware datetime; None: the verifier's clock.
    at: "float | int | _dt.datetime | None" = None


def _seconds(at: object) -> float:
    return float(unix_seconds(at, "the call time", InvalidInvocation))


class _Budget:
    __slots__ = ("nodes", "chars")

    def __init__(self, limits: Limits) -> None:
        self.nodes = limits.max_arg_nodes
        self.chars = limits.max_arg_chars


def _check_value(value: Any, depth: int, budget: _Budget, limits: Limits) -> None:
    budget.nodes -= 1
    if budget.nodes < 0:
        raise InvalidInvocation(f"the arguments hold more than {limits.max_arg_nodes} values")
    if isinstance(value, str):
        budget.chars -= len(value)
        if budget.chars < 0:
            raise InvalidInvocation(f"the arguments hold more than {limits.max_arg_chars} characters")
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if value.bit_length() > 256:
            raise InvalidInvocation("an argument is an integer too large to handle")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInvocation("an argument is NaN or infinite")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInvocation("an argument is NaN or infinite")
        if value and abs(value.adjusted()) > MAX_NUMBER_EXPONENT:
            raise InvalidInvocation("an argument is a number too large or too small to handle")
        return
    if depth >= limits.max_arg_depth:
        raise InvalidInvocation(f"the arguments are nested deeper than {limits.max_arg_depth} levels")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, depth + 1, budget, limits)
        return
    if isinstance(value, Mapping):
        _check_object(value, depth + 1, budget, limits)
        return
    raise InvalidInvocation(f"an argument is a {type(value).__name__}, which is not a JSON value")


def _is_flat(args: Mapping[Any, Any], limits: Limits) -> bool:
    """True if ``args`` is a small object of text, whole numbers, booleans and nulls within every limit
    (the common call, checked without the general walk); False: let ``_check_object`` decide."""
    chars = 0
    for key, item in args.items():
        kind = type(item)
        if type(key) is not str:
            return False
        if kind is str:
            chars += len(key) + len(item)
        elif (kind is int and item.bit_length() <= 256) or kind is bool or item is None:
            chars += len(key)
        else:
            return False
    return len(args) <= limits.max_arg_nodes and chars <= limits.max_arg_chars


def _check_object(obj: Mapping[Any, Any], depth: int, budget: _Budget, limits: Limits) -> None:
    for key, item in obj.items():
        if type(key) is not str:
            raise InvalidInvocation("an argument name is not text")
        kind = type(item)
        if kind is str and budget.nodes > 0 and budget.chars > len(key) + len(item):
            budget.nodes -= 1  # the common case, inline: a short text argument
            budget.chars -= len(key) + len(item)
            continue
        budget.chars -= len(key)
        _check_value(item, depth, budget, limits)


def validate(invocation: object, now: float, limits: Limits = DEFAULT_LIMITS) -> Call:
    """The ``Call`` that caveats check, or ``InvalidInvocation`` saying why there is none.

    ``now`` is used when the invocation carries no time.
    """
    if not isinstance(invocation, Invocation):
        raise InvalidInvocation("the call is not a capkit Invocation")
    tool = invocation.tool
    if not isinstance(tool, str) or not TOOL_NAME.fullmatch(tool):
        raise InvalidInvocation("the tool name is not 1-128 characters of A-Z a-z 0-9 _ . : / -")
    args = invocation.args
    if type(args) is not dict and not isinstance(args, Mapping):
        raise InvalidInvocation("the arguments are not a JSON object")
    if not _is_flat(args, limits):
        _check_object(args, 0, _Budget(limits), limits)
    audience = invocation.audience
    if audience is not None and (not isinstance(audience, str) or not audience or len(audience) > 1024):
        raise InvalidInvocation("the audience is not a non-empty string")
    at = invocation.at
    at = now if at is None else (float(at) if type(at) is int and abs(at) <= MAX_SECONDS else _seconds(at))
    return Call(tool, args, audience, at, Work(limits.max_match_work, limits.max_match_chars))


# ------------------------------------------------------------------ digest


def number_text(value: "int | float | Decimal") -> str:
    """A number's canonical text: positional decimal, no exponent, no trailing zeros, no '-0'.

    ints as written; floats by their shortest repr (12.5, 1e16 -> 10000000000000000);
    Decimals by value (Decimal('12.50') -> 12.5). So 12, 12.0 and Decimal('12.00') agree.
    """
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise InvalidInvocation("an argument is NaN or infinite")
    if not number:
        return "0"
    if abs(number.adjusted()) > MAX_NUMBER_EXPONENT:
        raise InvalidInvocation("an argument is a number too large or too small to handle")
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


#: Nesting levels ``_encode`` accepts in the arguments of a call (the validated call has fewer).
_ARG_LEVELS = DEFAULT_LIMITS.max_arg_depth + 2
#: ... and in an audit record, which holds the arguments a few levels down.
_RECORD_LEVELS = _ARG_LEVELS + 4


def _encode(value: Any, out: list[str], levels: int) -> None:
    if levels <= 0:
        raise InvalidInvocation("the arguments are nested too deeply")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, (int, float, Decimal)):
        out.append(number_text(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out, levels - 1)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise InvalidInvocation("an argument name is not text")
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(encode_basestring(key))
            out.append(":")
            _encode(value[key], out, levels - 1)
        out.append("}")
    else:
        raise InvalidInvocation(f"an argument is a {type(value).__name__}, which is not a JSON value")


def canonical_text(value: Any) -> str:
    """The canonical JSON text of any JSON-like value (keys sorted by code point, no white space,
    numbers by ``number_text``); the encoding of proofs and audit records. Raises ``InvalidInvocation``."""
    if type(value) is dict and _is_flat(value, DEFAULT_LIMITS):
        return canonical.dumps_text(value)
    out: list[str] = []
    _encode(value, out, _RECORD_LEVELS)
    return "".join(out)


def canonical_invocation(invocation: Invocation) -> bytes:
    """The bytes a proof binds: ``{"args":ARGS,"aud":AUDIENCE,"tool":TOOL}`` in canonical form.

    Objects have keys sorted by code point, no white space; strings are UTF-8
    escaped as JSON (RFC 8785 style: only ``"``, ``\\`` and control characters);
    numbers use ``number_text``. The time of the call is not included (the
    proof carries its own). Raises ``InvalidInvocation``.
    """
    if not isinstance(invocation, Invocation):
        raise InvalidInvocation("not a capkit Invocation")
    if type(invocation.tool) is not str or (type(invocation.args) is not dict
                                            and not isinstance(invocation.args, Mapping)):
        raise InvalidInvocation("an invocation has a text tool name and an object of arguments")
    if invocation.audience is not None and not isinstance(invocation.audience, str):
        raise InvalidInvocation("the audience is not text")
    args = invocation.args
    if type(args) is dict and _is_flat(args, DEFAULT_LIMITS):
        # The common flat call: the C encoder writes exactly what ``_encode`` writes for text, whole
        # numbers, booleans and null (same string escaping, keys sorted by code point, no spaces).
        try:
            return canonical.dumps({"args": args, "aud": invocation.audience, "tool": invocation.tool})
        except UnicodeEncodeError:
            raise InvalidInvocation("an argument contains a lone surrogate") from None
    out = ['{"args":']
    _encode(args, out, _ARG_LEVELS)
    out.append(',"aud":')
    _encode(invocation.audience, out, _ARG_LEVELS)
    out.append(',"tool":')
    _encode(invocation.tool, out, _ARG_LEVELS)
    out.append("}")
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInvocation("an argument contains a lone surrogate") from None


def invocation_digest(invocation: Invocation) -> bytes:
    """SHA-256 of ``canonical_invocation``: what a proof of possession signs."""
    return hashlib.sha256(canonical_invocation(invocation)).digest()
