"""Turn agent logs into traces: OpenAI Chat Completions, OpenAI Responses, and MCP ``tools/call`` logs.

Each importer reads one JSON document or JSON Lines (one document per line)
and returns the tool calls in order. What they accept:

* ``openai-chat``: a chat completion (``choices[].message.tool_calls``), a
  list of messages or ``{"messages": [...]}`` (assistant messages'
  ``tool_calls``, and the legacy ``function_call``). Tool arguments arrive as
  JSON text and are parsed strictly. ``created`` becomes the calls' time; in
  JSON Lines each conversation (a list of messages) is its own episode.
* ``openai-responses``: a response (``output[]`` items of type
  ``function_call``), a list of input/output items or ``{"input": [...]}``.
  ``created_at`` becomes the calls' time.
* ``mcp``: JSON-RPC messages, one per line or as a list (batches too);
  every request with method ``tools/call`` is a call (``params.name``,
  ``params.arguments``); other messages are skipped. A line may wrap its
  message as ``{"timestamp": ..., "message": {...}}`` (how proxies log).
  Credentials under ``params._meta`` are never copied into the trace.

``import_tool_schemas`` reads the tool definitions the same logs hold, for
``suggest --tools``: an MCP ``tools/list`` response (``result.tools``), a
Chat Completions or Responses request's ``tools`` (a Responses response
echoes them too). A tool defined twice with different schemas is an error:
which one the agent saw cannot be told.

Anything malformed is a ``TraceError`` naming where it is; nothing is guessed.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .schemas import load_tool_schemas
from .trace import TraceCall, TraceError, _time, strict_json

FORMATS = ("openai-chat", "openai-responses", "mcp")


def _documents(text: str, source: str) -> Iterator[tuple[str, Any, bool]]:
    """(where, value, one_of_many) for the whole text as one JSON value, else for each JSON line."""
    stripped = text.strip()
    if not stripped:
        raise TraceError(f"{source}: the log is empty")
    try:
        yield source, strict_json(stripped, source), False
        return
    except TraceError:
        if "\n" not in stripped:
            raise
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip(" \t\r"):
            where = f"{source} line {number}"
            yield where, strict_json(line, where), True


def _arguments(raw: object, where: str) -> dict[str, Any]:
    if isinstance(raw, dict):  # some SDKs log arguments already decoded
        return raw
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise TraceError(f"{where}: tool arguments must be JSON text")
    value = strict_json(raw, f"{where} arguments")
    if not isinstance(value, dict):
        raise TraceError(f"{where}: tool arguments must be a JSON object")
    return value


def _name(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise TraceError(f"{where}: a tool call has no name")
    return raw


def _call_id(raw: object) -> str | None:
    return raw if isinstance(raw, str) and 0 < len(raw) <= 1000 else None


# ------------------------------------------------------------ chat completions


def _chat_message_calls(message: object, where: str, at: float | None, episode: str | None) -> Iterator[TraceCall]:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise TraceError(f"{where}: tool_calls must be a list")
    for i, item in enumerate(tool_calls):
        here = f"{where} tool_calls[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("function"), dict):
            raise TraceError(f"{here}: a tool call needs a function object")
        if item.get("type", "function") != "function":
            continue  # custom (free-form) tools carry no JSON arguments
        function = item["function"]
        yield TraceCall(_name(function.get("name"), here), _arguments(function.get("arguments"), here), at,
                        episode=episode, id=_call_id(item.get("id")))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        yield TraceCall(_name(legacy.get("name"), where), _arguments(legacy.get("arguments"), where), at,
                        episode=episode)


def _openai_chat(doc: Any, where: str, many: bool) -> Iterator[TraceCall]:
    if isinstance(doc, dict) and "choices" in doc:
        at = _time(doc.get("created"), where)
        choices = doc["choices"]
        if not isinstance(choices, list):
            raise TraceError(f"{where}: choices must be a list")
        for i, choice in enumerate(choices):
            message = choice.get("message") if isinstance(choice, dict) else None
            yield from _chat_message_calls(message, f"{where} choices[{i}]", at, None)
        return
    messages = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(messages, list):
        raise TraceError(f"{where}: expected a chat completion, a list of messages or {{\"messages\": [...]}}")
    episode = where if many else None
    for i, message in enumerate(messages):
        yield from _chat_message_calls(message, f"{where} messages[{i}]", None, episode)


# ------------------------------------------------------------------- responses


def _openai_responses(doc: Any, where: str, many: bool) -> Iterator[TraceCall]:
    at = None
    if isinstance(doc, dict) and "output" in doc:
        at, items, field = _time(doc.get("created_at"), where), doc["output"], "output"
    elif isinstance(doc, dict) and "input" in doc:
        items, field = doc["input"], "input"
    else:
        items, field = doc, "items"
    if not isinstance(items, list):
        raise TraceError(f"{where}: expected a response, a list of items or {{\"input\": [...]}}")
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "function_call":
            here = f"{where} {field}[{i}]"
            yield TraceCall(_name(item.get("name"), here), _arguments(item.get("arguments"), here), at,
                            id=_call_id(item.get("call_id") or item.get("id")))


# ------------------------------------------------------------------------- MCP


def _mcp_messages(doc: Any, where: str) -> Iterator[tuple[dict[str, Any], float | None]]:
    if isinstance(doc, list):
        for item in doc:
            yield from _mcp_messages(item, where)
        return
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: an MCP log line is a JSON-RPC message")
    if "jsonrpc" not in doc and isinstance(doc.get("message"), (dict, list)):
        at = _time(doc.get("timestamp"), where)
        for message, _ in _mcp_messages(doc["message"], where):
            yield message, at
        return
    yield doc, None


def _mcp(doc: Any, where: str, many: bool) -> Iterator[TraceCall]:
    for message, at in _mcp_messages(doc, where):
        if message.get("method") != "tools/call":
            continue
        params = message.get("params")
        if not isinstance(params, dict):
            raise TraceError(f"{where}: tools/call has no params object")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise TraceError(f"{where}: tools/call arguments must be a JSON object")
        request_id = message.get("id")
        yield TraceCall(_name(params.get("name"), where), arguments, at,
                        id=None if request_id is None else _call_id(str(request_id)))


_READERS: dict[str, Callable[[Any, str, bool], Iterator[TraceCall]]] = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "mcp": _mcp,
}


def import_log(kind: str, text: str, *, source: str = "log") -> tuple[TraceCall, ...]:
    """The tool calls in log ``text`` of format ``kind`` (one of ``FORMATS``), in order."""
    reader = _READERS.get(kind)
    if reader is None:
        raise TraceError(f"unknown log format {kind!r}; known: {', '.join(FORMATS)}")
    calls: list[TraceCall] = []
    for where, doc, many in _documents(text, source):
        calls.extend(reader(doc, where, many))
    return tuple(calls)


# --------------------------------------------------------------- tool schemas


def _schema_documents(kind: str, doc: Any, where: str) -> Iterator[Any]:
    """The tool-definition documents (what ``load_tool_schemas`` reads) one log document holds."""
    if kind == "mcp":
        for message, _ in _mcp_messages(doc, where):
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("tools"), list):
                yield result["tools"]
        return
    if isinstance(doc, dict) and isinstance(doc.get("tools"), list) and doc["tools"]:
        # Chat Completions and Responses requests; a Responses response echoes its tools.
        yield [t for t in doc["tools"] if not isinstance(t, dict) or t.get("type", "function") == "function"]


def import_tool_schemas(kind: str, text: str, *, source: str = "log") -> dict[str, Any]:
    """``{tool: argument schema}`` from the tool definitions log ``text`` holds (empty if none).

    Pages of one listing (MCP ``nextCursor``) and repeated identical
    definitions merge; the same tool defined with two different schemas is a
    ``TraceError``.
    """
    if kind not in _READERS:
        raise TraceError(f"unknown log format {kind!r}; known: {', '.join(FORMATS)}")
    schemas: dict[str, Any] = {}
    first_seen: dict[str, str] = {}
    for where, doc, _many in _documents(text, source):
        for definitions in _schema_documents(kind, doc, where):
            if not definitions:
                continue
            try:
                found = load_tool_schemas(definitions)
            except TraceError as exc:
                raise TraceError(f"{where}: {exc.message}") from None
            for name, schema in found.items():
                if name in schemas and schemas[name] != schema:
                    raise TraceError(f"{where}: tool {name[:80]!r} is defined again with another schema "
                                     f"(first at {first_seen[name]}); which one the agent saw cannot be told")
                schemas.setdefault(name, schema)
                first_seen.setdefault(name, where)
    return schemas
