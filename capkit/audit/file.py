"""``AuditLog``: the embedded audit sink, a hash-chained JSONL file (specs/AUDIT.md §3-5).

Many processes may append to one file: each write takes an exclusive
``flock`` on it, finds the chain's head (from memory when the file has not
grown since this process last wrote, otherwise by reading the file's tail),
and appends one line with a single ``write``. A writer that dies mid-line
leaves a torn fragment; the next writer ends it with a newline and chains to
the last complete line, so ``capkit audit verify`` reports it as torn, not
as tampering. Every ``checkpoint_every`` lines, and on ``close``, the writer
appends a checkpoint signed with the audit key.

Durability (``sync``): ``"checkpoint"`` (the default) hands each line to the
operating system before ``write`` returns, so it survives the process being
killed, and ``fsync``s at each checkpoint; a power cut can lose the lines
written since the last checkpoint that the kernel had not yet flushed (Linux
flushes dirty pages within about 30 s). ``"every"`` fsyncs every line (no
loss on a power cut, at the cost of a disk flush per call).
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import AuditError
from .lines import GENESIS, checkpoint_line, encode_record, head_of, line_hash, parse_line, record_line
from .note import sign_checkpoint

__all__ = ["AuditLog", "SYNC_POLICIES"]

SYNC_POLICIES = ("checkpoint", "every")
_CHUNK = 1 << 16
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class AuditLog:
    """An append-only, hash-chained, checkpointed audit log in a file. Thread- and process-safe."""

    def __init__(self, path: "str | os.PathLike[str]", signer: Any, *, origin: str,
                 checkpoint_every: int = 1000, sync: str = "checkpoint") -> None:
        """Open (or create, mode 0600) the log at ``path``.

        ``signer`` is the audit key (an ``AgentKey``) that signs checkpoints;
        ``origin`` names the log in its checkpoints (e.g. ``bank.example/audit``).
        """
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise AuditError("checkpoint_every is a positive number of lines")
        if sync not in SYNC_POLICIES:
            raise AuditError(f"sync is one of {', '.join(SYNC_POLICIES)}")
        sign_checkpoint(origin, 0, bytes(32), signer)  # refuses a bad origin or signer now, not at the first checkpoint
        self.path = Path(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else None
        if self.path is None:
            raise AuditError("an audit log path is text")
        self.origin = origin
        self._signer = signer
        self._every = checkpoint_every
        self._sync = sync
        self._lock = threading.Lock()
        try:
            self._fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}") from None
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022 or info.st_uid not in (os.getuid(), 0):
            os.close(self._fd)
            raise AuditError(f"the audit log {self.path} is not a regular file that only its owner may write")
        self._end = -1  # size of the file after this process's last line; -1: unknown
        self._prev = GENESIS
        self._seq = 0
        self._since_checkpoint = 0
        self._closed = False

    # ------------------------------------------------------------------ sink API

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record``; the line is in the file (per ``sync``) when this returns. ``AuditError`` otherwise."""
        text = encode_record(record)
        with self._lock:
            if self._closed:
                raise AuditError(f"the audit log {self.path} is closed")
            self._locked_append(text)

    def checkpoint(self) -> str:
        """Append a signed checkpoint of the chain as it stands; return its note text."""
        with self._lock:
            if self._closed:
                raise AuditError(f"the audit log {self.path} is closed")
            return self._locked_append(None)

    def close(self) -> None:
        """Append a final checkpoint, flush to disk and close. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self._locked_append(None)
            finally:
                self._closed = True
                os.close(self._fd)

    # ----------------------------------------------------------------- internals

    def _locked_append(self, record_text: "str | None") -> str:
        """Under the file lock: find the head, append the record's line (a checkpoint if ``record_text`` is None)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise AuditError(f"cannot lock the audit log {self.path}: {exc.strerror}") from None
        try:
            size = os.fstat(self._fd).st_size
            if size != self._end:
                size = self._find_head(size)
            note = ""
            if record_text is None:
                note = self._note()
                line = checkpoint_line(note, self._prev, self._seq)
            else:
                line = record_line(record_text, self._prev, self._seq)
            self._append(line, size)
            if record_text is None or self._sync == "every":
                os.fsync(self._fd)
            if record_text is None:
                self._since_checkpoint = 0
            else:
                self._since_checkpoint += 1
                if self._since_checkpoint >= self._every:
                    note = self._note()
                    self._append(checkpoint_line(note, self._prev, self._seq), self._end)
                    os.fsync(self._fd)
                    self._since_checkpoint = 0
            return note
        except OSError as exc:
            self._end = -1  # a partial line may be in the file: find the head again next time
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}") from None
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _note(self) -> str:
        return sign_checkpoint(self.origin, self._seq, head_of(self._prev), self._signer)

    def _append(self, line: bytes, size: int) -> None:
        data = line + b"\n"
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a signal, a full disk): write the rest
            data = data[written:]
            written = os.write(self._fd, data)
        self._end = size + len(line) + 1
        self._prev = line_hash(line)
        self._seq += 1

    def _find_head(self, size: int) -> int:
        """Set the head from the file's last well-formed line; end a torn last line. Returns the file size."""
        self._prev, self._seq = GENESIS, 0
        if size == 0:
            return 0
        with open(self.path, "rb") as reader:  # the path, re-checked: the same file as the descriptor
            if os.fstat(reader.fileno()).st_ino != os.fstat(self._fd).st_ino:
                raise AuditError(f"the audit log {self.path} was replaced while open")
            reader.seek(size - 1)
            if reader.read(1) != b"\n":  # a writer died mid-line: end its fragment
                os.write(self._fd, b"\n")
                size += 1
            for line in _lines_backwards(reader, size):
                chain = parse_line(line)
                if chain is not None:
                    self._prev, self._seq = line_hash(line), chain.seq + 1
                    break
        self._end = size
        return size


def _lines_backwards(reader: Any, size: int):  # type: ignore[no-untyped-def]
    """The complete lines of a file (without newlines), last first."""
    end = size - 1  # the final newline
    buffer = b""
    position = end
    while position > 0:
        start = max(0, position - _CHUNK)
        reader.seek(start)
        buffer = reader.read(position - start) + buffer
        position = start
        while True:
            cut = buffer.rfind(b"\n")
            if cut < 0:
                break
            yield buffer[cut + 1:]
            buffer = buffer[:cut]
    if buffer:
        yield buffer
