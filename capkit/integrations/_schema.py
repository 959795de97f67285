"""Does a JSON value have the types a tool's JSON Schema declares? (So no validator will coerce it.)

Adapters that hand a model's arguments to a tool they do not control (an
OpenAI Agents function tool behind a guardrail, an upstream MCP server behind
the gateway) cannot see what the tool's own validation makes of them. When
every value already has its declared JSON type, a validator has nothing to
coerce: a list stays the list that was authorized, text stays text. A value of
another type (``"5"`` for an integer, a JSON string for an array) is refused.

Only types are checked (``type``, ``enum``, ``const``, ``anyOf``/``oneOf``,
``items``, ``properties``, ``additionalProperties: false``, local ``$ref``);
formats and ranges are the tool's business and cannot change a value.
"""

from __future__ import annotations

from typing import Any, Mapping

_JSON_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


#: The most schema nodes one check visits; a schema that needs more (``anyOf`` over recursive ``$ref``s can need
#: exponentially many) is refused rather than checked for ever.
MAX_SCHEMA_STEPS = 10_000


class _TooComplex(Exception):
    pass


def type_problem(value: Any, schema: Any, defs: Mapping[str, Any] | None = None, where: str = "",
                 depth: int = 0) -> str | None:
    """Why ``value`` does not have the types ``schema`` declares, or None when it does.

    A schema this cannot read (a ``$ref`` it cannot follow, ``properties`` that
    are not an object) or that takes more than ``MAX_SCHEMA_STEPS`` to check is
    a problem too: the caller refuses what it cannot check.
    """
    if defs is None and isinstance(schema, Mapping):
        defs = schema.get("$defs") or schema.get("definitions") or {}
    try:
        return _problem(value, schema, defs if isinstance(defs, Mapping) else {}, where, depth, [MAX_SCHEMA_STEPS])
    except _TooComplex:
        return "the tool's schema is too complex to check these arguments against"


def _problem(value: Any, schema: Any, defs: Mapping[str, Any], where: str, depth: int, budget: list[int]) -> str | None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooComplex
    if depth > 32:
        return f"{where or 'the arguments'} nest too deeply to check"
    if schema is True or schema == {} or schema is None:
        return None
    if schema is False or not isinstance(schema, Mapping):
        return f"{where or 'the arguments'}: the schema allows no value here"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/") or name not in defs:
            return f"{where or 'the arguments'}: the schema refers to {ref!r}, which cannot be checked"
        return _problem(value, defs[name], defs, where, depth + 1, budget)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if all(_problem(value, option, defs, where, depth + 1, budget) is not None for option in options):
                return f"{where or 'the arguments'} match none of the types the tool accepts"
            return None
    if "const" in schema and not _same(value, schema["const"]):
        return f"{where} is not the one value the tool accepts"
    if isinstance(schema.get("enum"), list) and not any(_same(value, option) for option in schema["enum"]):
        return f"{where} is not one of the values the tool accepts"
    declared = schema.get("type")
    if declared is not None:
        names = declared if isinstance(declared, list) else [declared]
        if not any(isinstance(name, str) and name in _JSON_TYPES and _JSON_TYPES[name](value) for name in names):
            return (f"{where or 'the arguments'} is a {_json_type(value)} where the tool declares "
                    f"{' or '.join(str(n) for n in names)}")
    if isinstance(value, list):
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                problem = _problem(item, items, defs, f"{where}[{i}]", depth + 1, budget)
                if problem:
                    return problem
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        if not isinstance(properties, Mapping):
            return f"{where or 'the arguments'}: the schema's properties cannot be read"
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            here = f"{where}.{name}" if where else name
            if name in properties:
                problem = _problem(item, properties[name], defs, here, depth + 1, budget)
                if problem:
                    return problem
            elif extra is False:
                return f"{name} is not an argument of this tool"
            elif isinstance(extra, Mapping):
                problem = _problem(item, extra, defs, here, depth + 1, budget)
                if problem:
                    return problem
    return None


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _JSON_TYPES[name](value):
            return name
    return type(value).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)
