"""Message streams for the gateway: JSON-RPC messages as dicts, over stdio pipes or the SDK's HTTP client.

The stdio streams read and write newline-delimited JSON on non-blocking pipes
(the MCP stdio transport), without a thread per line: a relay reads and writes
four pipes per call. A line that is not a JSON object is dropped (as the SDK's
transport drops it); every other message is relayed as parsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any, AsyncIterator, Protocol

__all__ = ["MessageStream", "PipeStream", "SdkStream", "child_process", "own_stdio"]

_log = logging.getLogger("capkit.gateway")
#: The longest line a peer may send (a tool result holding a large file is a long line).
MAX_LINE = 64 * 1024 * 1024


class MessageStream(Protocol):
    """One side of the relay: an async iterator of messages (dicts) and ``send``."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def send(self, message: dict[str, Any]) -> None: ...


class PipeStream:
    """Newline-delimited JSON over an asyncio reader and writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: "asyncio.StreamWriter | Any") -> None:
        self._reader = reader
        self._writer = writer

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                line = await self._reader.readline()
            except (ValueError, asyncio.LimitOverrunError):  # a line beyond MAX_LINE
                _log.warning("capkit gateway: dropped a message longer than %d bytes", MAX_LINE)
                continue
            except ConnectionError:
                return
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                yield message

    async def send(self, message: dict[str, Any]) -> None:
        self._writer.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        await self._writer.drain()

    async def aclose(self) -> None:
        try:
            self._writer.close()
        except (ConnectionError, RuntimeError):
            pass


async def own_stdio() -> PipeStream:
    """This process's stdin and stdout as a message stream (the host's side, over stdio)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(os.dup(1), "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    # From here on nothing else may write to the real stdout: it is the wire.
    sys.stdout = sys.stderr
    return PipeStream(reader, writer)


async def child_process(command: list[str], env: dict[str, str] | None = None) -> tuple[Any, PipeStream]:
    """Start the upstream server as a child over stdio; its stderr goes to ours."""
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, env=env, limit=MAX_LINE)
    assert process.stdout is not None and process.stdin is not None
    return process, PipeStream(process.stdout, process.stdin)


class SdkStream:
    """A transport of the MCP SDK (read and write streams of ``SessionMessage``) seen as dicts."""

    def __init__(self, read: Any, write: Any) -> None:
        self._read = read
        self._write = write

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for item in self._read:
            if not isinstance(item, Exception):
                yield self._message(item)

    def _message(self, item: Any) -> dict[str, Any]:
        """One ``SessionMessage`` as the dict the relay handles."""
        return item.message.model_dump(by_alias=True, exclude_unset=True, mode="json")

    async def send(self, message: dict[str, Any]) -> None:
        from mcp.shared.message import SessionMessage
        from mcp.types import jsonrpc_message_adapter

        await self._write.send(SessionMessage(jsonrpc_message_adapter.validate_python(message, by_name=False)))

    async def aclose(self) -> None:
        await self._write.aclose()
