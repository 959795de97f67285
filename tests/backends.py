"""Store backends for tests: memory and SQLite always; PostgreSQL and Redis when their servers answer.

The servers' URLs come from CAPKIT_TEST_POSTGRES_URL and CAPKIT_TEST_REDIS_URL
(defaults: the local services of this project's machines). Without a server a
test skips with the reason, except when CI=true: then it fails, so a broken
CI machine can never pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from capkit.state import open_store

POSTGRES_URL = os.environ.get("CAPKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CAPKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["memory", "sqlite", "postgres", "redis"]
SHARED_BACKENDS = ["sqlite", "postgres", "redis"]  # those several processes can share


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


def require_server(name: str) -> str:
    url = {"postgres": POSTGRES_URL, "redis": REDIS_URL}[name]
    if not reachable(url):
        message = f"the {name} server at {url} is not reachable (set CAPKIT_TEST_{name.upper()}_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return url


#: The PostgreSQL schema and the Redis key prefix the tests keep their state under (never capkit's defaults),
#: removed when the session ends (conftest.py).
TEST_SCHEMA = "capkit_test"
TEST_PREFIX = "capkit-test"


def store_url(name: str, tmp_path: Path) -> str:
    """A URL for backend ``name``: a dedicated schema or key prefix (state is also isolated by fresh token ids)."""
    if name == "memory":
        return "memory://"
    if name == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    url = require_server(name)
    option = f"schema={TEST_SCHEMA}" if name == "postgres" else f"prefix={TEST_PREFIX}"
    return url + ("&" if "?" in url else "?") + option


def remove_test_state() -> None:
    """Drop the tests' PostgreSQL schemas and delete their Redis keys (where those servers answer)."""
    if reachable(POSTGRES_URL):
        try:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
                for schema in (TEST_SCHEMA, "capkit_audit_test"):
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except Exception:  # cleanup must not hide a test's own result
            pass
    if reachable(REDIS_URL):
        try:
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
            for key in client.scan_iter(match=TEST_PREFIX + "*", count=1000):
                client.delete(key)
        except Exception:
            pass


def open_backend(name: str, tmp_path: Path, **kwargs):
    return open_store(store_url(name, tmp_path), **kwargs)


def family() -> str:
    """A fresh token id: isolates a test's state in a shared server."""
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
