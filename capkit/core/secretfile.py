"""Files that hold secrets (keyrings, agent keys): written 0600 atomically, read only if private.

``write_json`` writes through a temporary file created with mode 0600 and an
atomic rename, and refuses to replace an existing file unless asked.
``read_json`` refuses, as ssh does, a file that is not a regular file, that
group or others may access, or that another user owns. It opens without
following a symbolic link and without blocking (a FIFO planted at a key path
would otherwise hang every command that loads keys), and checks what it opened
before reading a byte. Errors are ``KeyringError`` sentences that name the
file, never its contents.
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


def file_problem(path: Path, info: os.stat_result, *, owners: tuple[int, ...] | None = None) -> str | None:
    """Why the file ``info`` describes is not private to this user, or None: a regular file owned by us
    (or root, unless ``owners`` says otherwise) with no access for group or others."""
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a symbolic link, FIFO, device or directory)"
    if os.name != "posix":  # pragma: no cover - POSIX permissions only
        return None
    if info.st_uid not in (owners if owners is not None else (os.getuid(), 0)):
        return "is owned by another user"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return f"is accessible by group or others (mode {mode:04o}); it must be private: chmod 600 {path}"
    return None


def directory_problem(path: Path, info: os.stat_result) -> str | None:
    """Why a directory is not safe to keep private files in, or None: it must be a directory owned by us
    (or root) that group and others cannot write to (a root-owned sticky directory such as /tmp is fine),
    otherwise another local user could plant or replace files in it."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory (a symbolic link or a file)"
    if os.name != "posix":  # pragma: no cover
        return None
    if info.st_uid not in (os.getuid(), 0):
        return "belongs to another user, who could plant or replace files in it"
    if stat.S_IMODE(info.st_mode) & 0o022 and not (info.st_mode & stat.S_ISVTX and info.st_uid == 0):
        return (f"can be written by group or others (mode {stat.S_IMODE(info.st_mode):04o}); make it private: "
                f"chmod 700 {path}")
    return None


def check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key file that is not a regular file owned by us (or root) with mode 0600 or stricter."""
    problem = file_problem(path, info)
    if problem is None:
        return
    if problem.startswith("is not a regular file"):
        raise KeyringError(f"key file {path} is not a regular file")
    raise InsecureKeyFile(f"key file {path} {problem}")


def as_path(path: object) -> Path:
    """``path`` as a ``Path``; ``KeyringError`` for anything but a text path (str or os.PathLike of str)."""
    if isinstance(path, str) and path and "\x00" not in path:
        return Path(path)
    if isinstance(path, os.PathLike) and isinstance(fspath := os.fspath(path), str) and fspath and "\x00" not in fspath:
        return Path(fspath)
    raise KeyringError(f"a key file path must be a non-empty text path, not {type(path).__name__}")


def write_json(path: "str | os.PathLike[str]", document: Any, *, overwrite: bool) -> None:
    """Write ``document`` as JSON to ``path`` with mode 0600, atomically."""
    path = as_path(path)
    if path.exists() and not overwrite:
        raise KeyringError(
            f"key file {path} already exists; pass overwrite=True (--force in the CLI) to replace it, "
            "knowing that whatever the old key signed stops verifying"
        )
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


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def read_json(path: "str | os.PathLike[str]") -> Any:
    """The JSON document in the private file ``path``."""
    path = as_path(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise KeyringError(f"key file {path} does not exist") from None
    except OSError as exc:
        if exc.errno == getattr(__import__("errno"), "ELOOP", -1):
            raise KeyringError(f"key file {path} is a symbolic link; give the path of the file itself") from None
        raise KeyringError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        check_private(path, os.fstat(fd))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
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
