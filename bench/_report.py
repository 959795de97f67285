"""Shared output for the benchmark scripts: one JSON document on stdout, optionally a file."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: str | None) -> int:
    """Print ``result`` as indented JSON and, when ``out`` is given, write the same text there."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return 0
