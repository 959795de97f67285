"""Action-alignment evaluation: is every action an agent took inside the authority the person granted?

* ``read_trace`` / ``write_trace``: the trace format (specs/TRACE.md), one tool call per line;
* ``import_log``: traces from OpenAI Chat Completions, OpenAI Responses and MCP ``tools/call`` logs;
* ``import_tool_schemas`` / ``load_tool_schemas``: the tools' argument schemas, from those logs or a tools file;
* ``evaluate``: replay a trace against a grant through the verifier; every call's verdict and the figures;
* ``suggest_grant``: the tightest grant admitting every call of a benign trace;
* ``render_html``: the report as one self-contained HTML file;
* ``load_suite``: a scenario directory (``grant.toml`` and ``trace.jsonl``).
"""

from __future__ import annotations

from .importers import FORMATS, import_log, import_tool_schemas
from .replay import CallOutcome, Evaluation, EvaluationGrant, Figures, GrantCaveat, evaluate
from .report import render_html
from .schemas import load_tool_schemas
from .suggest import Suggestion, suggest_grant
from .suites import Suite, find_suites, load_suite
from .trace import LABELS, TraceCall, TraceError, read_trace, write_trace

__all__ = [
    "FORMATS",
    "LABELS",
    "CallOutcome",
    "Evaluation",
    "EvaluationGrant",
    "Figures",
    "GrantCaveat",
    "Suggestion",
    "Suite",
    "TraceCall",
    "TraceError",
    "evaluate",
    "find_suites",
    "import_log",
    "import_tool_schemas",
    "load_suite",
    "load_tool_schemas",
    "read_trace",
    "render_html",
    "suggest_grant",
    "write_trace",
]
