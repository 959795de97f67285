"""Files that hold secrets (keyrings, agent keys): written 0600 atomically, read only if private.

``write_json`` writes through a temporary file created with mode 0600 and an
atomic rename, and refuses to replace an existing file unless asked.
``read_json`` refuses, as ssh does, a file that is not a regular file, that
group or others may access, or that another user owns. Errors are
``KeyringError`` sentences that name the file, never its contents.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from .errors import InsecureKeyFile, KeyringError

MAX_BYTES = 1 << 20


def check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key file that is not a regular file owned by us (or root) with mode 0600 or stricter."""
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"key file {path} is not a regular file")
    if os.name != "posix":  # pragma: no cover - POSIX permissions only
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise InsecureKeyFile(
            f"key file {path} is accessible by group or others (mode {mode:04o}); "
            f"it must be readable by you only: chmod 600 {path}"
        )
    if info.st_uid not in (os.getuid(), 0):
        raise InsecureKeyFile(f"key file {path} is owned by another user")


def write_json(path: "str | os.PathLike[str]", document: Any, *, overwrite: bool) -> None:
    """Write ``document`` as JSON to ``path`` with mode 0600, atomically."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyringError(f"key file {path} already exists")
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyringError(f"cannot create key file in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyringError(f"cannot write key file {path}: {exc.strerror}") from None


def read_json(path: "str | os.PathLike[str]") -> Any:
    """The JSON document in the private file ``path``."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyringError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyringError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        check_private(path, os.fstat(fd))
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise KeyringError(f"cannot read key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise KeyringError(f"key file {path} is too large")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyringError(f"key file {path} is not valid JSON") from None
