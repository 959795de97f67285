"""Store URLs and errors as people should read them: never a password, always the cause."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user, host, port, path and options kept)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<a store URL that cannot be parsed>"


def describe_error(exc: BaseException) -> str:
    """The cause of a driver error in one line: its class and the first line of its message."""
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    if len(first) > 300:
        first = first[:300] + "…"
    name = type(exc).__name__
    return f"{name}: {first}" if first else name
