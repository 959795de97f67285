"""Tool schemas for ``suggest``: what each argument is, from the tool's own definition (issue 17).

Accepted documents (JSON): an MCP ``tools/list`` result ``{"tools": [{"name",
"inputSchema"}]}`` (or its list of tools); OpenAI Chat Completions tool
definitions ``[{"type": "function", "function": {"name", "parameters"}}]``;
and the Responses API form ``[{"type": "function", "name", "parameters"}]``.
``load_tool_schemas`` returns ``{tool name: JSON Schema of its arguments}``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..core.errors import TraceError

__all__ = ["FREE_TEXT_NAMES", "enum_of", "is_free_text", "load_tool_schemas", "number_bounds", "property_of", "required_of"]

#: Argument names that hold free text whatever a value looks like (a summary may be one word).
FREE_TEXT_NAMES = frozenset({
    "body", "subject", "message", "content", "query", "title", "description", "notes", "note", "text",
    "comment", "comments", "summary", "prompt", "reason", "caption", "html", "markdown", "reply", "answer",
})


#: Phrases in an argument's description that say it is prose ("Free-form notes for the driver").
_FREE_TEXT_WORDS = re.compile(r"\b(free[- ]?(form|text)|human[- ]readable|natural language|markdown|plain text)\b",
                              re.IGNORECASE)


def is_free_text(name: str, prop: Mapping[str, Any] | None = None) -> bool:
    """True if argument ``name`` (with its schema ``prop``) is free text: a caveat cannot bound what it means."""
    if prop and (isinstance(prop.get("enum"), list) or "const" in prop):
        return False  # a closed set of values is an identifier whatever its name or description says
    base = name.lower().replace("-", "_")
    if base in FREE_TEXT_NAMES or any(base.endswith("_" + word) for word in ("body", "message", "text", "notes",
                                                                            "description", "summary", "content")):
        return True
    description = prop.get("description") if prop else None
    return isinstance(description, str) and _FREE_TEXT_WORDS.search(description) is not None


def _entries(doc: Any) -> list[Any]:
    if isinstance(doc, Mapping):
        if isinstance(doc.get("tools"), list):
            return doc["tools"]
        if isinstance(doc.get("result"), Mapping) and isinstance(doc["result"].get("tools"), list):
            return doc["result"]["tools"]  # a whole JSON-RPC response
        raise TraceError("a tools file is an MCP tools/list result ({\"tools\": [...]}) or a list of tool "
                         "definitions")
    if isinstance(doc, list):
        return doc
    raise TraceError("a tools file is a JSON object or a list")


def load_tool_schemas(doc: Any) -> dict[str, Any]:
    """``{tool: argument schema}`` from an MCP or OpenAI tools document; ``TraceError`` for anything else."""
    schemas: dict[str, Any] = {}
    for entry in _entries(doc):
        if not isinstance(entry, Mapping):
            raise TraceError("every tool definition is an object")
        if isinstance(entry.get("function"), Mapping):  # Chat Completions
            entry = entry["function"]
        name = entry.get("name")
        schema = entry.get("inputSchema", entry.get("parameters", entry.get("input_schema")))
        if not isinstance(name, str) or not name:
            raise TraceError("a tool definition has no name")
        if schema is not None and not isinstance(schema, Mapping):
            raise TraceError(f"tool {name}'s argument schema is not a JSON object")
        schemas[name] = dict(schema or {})
    if not schemas:
        raise TraceError("the tools file defines no tool")
    return schemas


def property_of(schema: Mapping[str, Any] | None, arg: str) -> dict[str, Any] | None:
    """The JSON Schema of argument ``arg`` in a tool's argument schema (local ``$ref`` followed), or None."""
    if not isinstance(schema, Mapping):
        return None
    props = schema.get("properties")
    prop = props.get(arg) if isinstance(props, Mapping) else None
    defs = schema.get("$defs") or schema.get("definitions") or {}
    for _ in range(8):
        if isinstance(prop, Mapping) and isinstance(prop.get("$ref"), str) and prop["$ref"].startswith("#/"):
            prop = defs.get(prop["$ref"].rsplit("/", 1)[-1]) if isinstance(defs, Mapping) else None
        else:
            break
    return dict(prop) if isinstance(prop, Mapping) else None


def required_of(schema: Mapping[str, Any] | None) -> list[str]:
    """The argument names a tool's schema marks required."""
    required = schema.get("required") if isinstance(schema, Mapping) else None
    return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []


def enum_of(prop: Mapping[str, Any] | None) -> list[Any] | None:
    """The values an argument's schema allows (``enum``, or ``const`` as a one-value enum), or None."""
    if not prop:
        return None
    if isinstance(prop.get("enum"), list):
        return list(prop["enum"])
    if "const" in prop:
        return [prop["const"]]
    return None


def number_bounds(prop: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """(minimum, maximum) a number argument's schema states (inclusive forms only), each None if absent."""
    def bound(key: str) -> Any:
        value = (prop or {}).get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return bound("minimum"), bound("maximum")
