"""Scenario suites: a directory with the person's grant (``grant.toml``) and agent runs (``trace.jsonl``)."""

from __future__ import annotations

from pathlib import Path

import attrs

from ..grant import parse_grant
from .report import ReportInput
from .trace import TraceCall, TraceError, read_trace

GRANT_FILE = "grant.toml"
TRACE_FILE = "trace.jsonl"


@attrs.frozen
class Suite:
    """One scenario: its name (the directory's), the grant file's text, the traced calls, and the files read."""

    name: str
    grant_text: str
    calls: tuple[TraceCall, ...]
    inputs: tuple[ReportInput, ...] = ()


def read_input(path: Path, role: str) -> tuple[str, ReportInput]:
    """The UTF-8 text of ``path`` and its record (name, SHA-256 of the bytes read); ``TraceError`` if unreadable."""
    try:
        data = path.read_bytes()
        return data.decode("utf-8"), ReportInput.of(role, str(path), data)
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read {path}: {exc.__class__.__name__}") from None


def load_suite(directory: Path) -> Suite:
    """The suite in ``directory``; ``TraceError`` if a file is missing or malformed."""
    grant_text, grant_input = read_input(directory / GRANT_FILE, "grant")
    parse_grant(grant_text, now=0)  # fail early, naming the file's problem
    trace_text, trace_input = read_input(directory / TRACE_FILE, "trace")
    calls = read_trace(trace_text, source=str(directory / TRACE_FILE))
    return Suite(directory.name, grant_text, calls, (grant_input, trace_input))


def find_suites(path: Path) -> list[Path]:
    """``path`` itself if it is a suite, else its sub-directories that are, sorted by name."""
    if (path / GRANT_FILE).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / GRANT_FILE).is_file()) if path.is_dir() else []
    if not found:
        raise TraceError(f"{path} holds no suite (a directory with {GRANT_FILE} and {TRACE_FILE})")
    return found
