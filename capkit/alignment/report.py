"""The evaluation report as one self-contained HTML file (inline CSS and SVG; no script, no network).

What a reader must see first comes first: the attack calls the grant allowed
and the benign calls it denied, highlighted, before the figures. Every call's
arguments are shown one by one, and a number or a date never breaks across
lines. The page records what it was made from (each input file's name and
SHA-256) and the capkit version that made it.

Everything taken from a trace or a grant is escaped: traces come from agents
that read attacker text, so a tool argument may well be ``<script>``. The page
also carries a Content-Security-Policy that forbids scripts and remote loads.
"""

from __future__ import annotations

import hashlib
import json
from html import escape as _html_escape
from typing import Any, Sequence

import attrs

from .. import __version__ as CAPKIT_VERSION
from ..core.caveats.shape import parse_date_text
from ..core.text import escape_bidi
from .replay import CallOutcome, Evaluation, Figures

#: Longest argument value shown whole; longer text is cut (at a space where there is one) and says so.
MAX_VALUE_CHARS = 200


def escape(value: object) -> str:
    """HTML-escaped text with Unicode bidirectional (and other) controls shown as escapes: a trace value
    must not reorder what a reader sees."""
    return _html_escape(escape_bidi(str(value)))


@attrs.frozen
class ReportInput:
    """One file the report was made from: its role (grant, trace), its name and the SHA-256 of its bytes."""

    role: str
    name: str
    sha256: str

    @classmethod
    def of(cls, role: str, name: str, data: bytes) -> "ReportInput":
        return cls(role, name, hashlib.sha256(data).hexdigest())


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:90rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #dde2ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.allowed{color:#17663a;font-weight:600}.denied{color:#a3231b;font-weight:600}
.attack{background:#fff4f2}code{font-size:12px}.muted{color:#667085}
tr.miss td{background:#ffe7a3}tr.miss td:first-child{box-shadow:inset 4px 0 #c77700}.flag{font-weight:700;color:#8a4b00}
.arg{display:inline-block;margin-right:.6em}.arg .k{color:#445069}.nb{white-space:nowrap}.text{overflow-wrap:anywhere}
.ok{color:#17663a}td.why{overflow-wrap:anywhere;min-width:8rem}.hash{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_COLORS = {"utility kept": "#2e7d4f", "attacks blocked": "#b3261e", "exceedance rate": "#5b6b86"}


def percent(value: float | None) -> str:
    """A rate as shown to people: one decimal, or 'n/a' when there was nothing to count."""
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _figure_rows(figures: Figures) -> str:
    rows = [
        ("calls", str(figures.calls)), ("allowed", str(figures.allowed)), ("denied", str(figures.denied)),
        ("exceedance rate (denied / calls)", percent(figures.exceedance_rate)),
        ("utility kept (benign allowed / benign)",
         f"{percent(figures.utility_kept)} ({figures.benign_allowed} of {figures.benign})"),
        ("attacks blocked (attack calls denied / attack calls)",
         f"{percent(figures.attacks_blocked)} ({figures.attack_denied} of {figures.attack})"),
        ("attack episodes with an attack call denied",
         f"{percent(figures.attack_episodes_blocked_rate)} ({figures.attack_episodes_blocked} of "
         f"{figures.attack_episodes})"),
        ("attack episodes with every attack call denied", f"{figures.attack_episodes_fully_blocked} of "
                                                          f"{figures.attack_episodes}"),
    ]
    return "".join(f"<tr><th>{escape(k)}</th><td class=n>{escape(v)}</td></tr>" for k, v in rows)


def _confusion(figures: Figures) -> str:
    c = figures.confusion
    return ("<table><tr><th>label \\ verdict</th><th>allowed</th><th>denied</th></tr>"
            f"<tr><th>benign</th><td class=n>{c['benign']['allowed']}</td><td class=n>{c['benign']['denied']}</td></tr>"
            f"<tr><th>attack</th><td class=n>{c['attack']['allowed']}</td><td class=n>{c['attack']['denied']}</td></tr>"
            "</table>")


def _chart(rows: Sequence[tuple[str, Figures]]) -> str:
    """Grouped horizontal bars: utility kept, attacks blocked and exceedance rate per suite."""
    metrics = list(_COLORS)
    bar, gap, label_w, width = 14, 10, 170, 420
    height = len(rows) * (len(metrics) * bar + gap) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="figures per suite" '
             f'width="{label_w + width + 80}" height="{height}" font-size="12">']
    y = 10
    for name, figures in rows:
        values = [figures.utility_kept, figures.attacks_blocked, figures.exceedance_rate]
        parts.append(f'<text x="0" y="{y + bar * 1.5 + 4}">{escape(name)}</text>')
        for metric, value in zip(metrics, values):
            length = 0 if value is None else round(value * width, 1)
            parts.append(f'<rect x="{label_w}" y="{y}" width="{length}" height="{bar - 2}" '
                         f'fill="{_COLORS[metric]}"><title>{escape(metric)}: {percent(value)}</title></rect>')
            parts.append(f'<text x="{label_w + length + 4}" y="{y + bar - 4}">{percent(value)}</text>')
            y += bar
        y += gap
    legend_x = label_w
    for metric, color in _COLORS.items():
        parts.append(f'<rect x="{legend_x}" y="{y + 6}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{legend_x + 14}" y="{y + 15}">{escape(metric)}</text>')
        legend_x += 130
    parts.append("</svg>")
    return "".join(parts)


def _miss(outcome: CallOutcome) -> str:
    """What a reader must look at about this call: an attack allowed, a benign call denied, or nothing."""
    if outcome.allowed and outcome.call.label == "attack":
        return "attack allowed"
    if not outcome.allowed and outcome.call.label == "benign":
        return "benign denied"
    return ""


_FLAGS = {"attack allowed": "an attack let through", "benign denied": "a benign call lost"}


def _value_html(value: Any) -> str:
    """One argument value: numbers, booleans, dates and identifiers never break; prose wraps at spaces."""
    if isinstance(value, str):
        shown = value
        if len(value) > MAX_VALUE_CHARS:
            cut = value.rfind(" ", MAX_VALUE_CHARS // 2, MAX_VALUE_CHARS)
            shown = value[: cut if cut > 0 else MAX_VALUE_CHARS] + f"… ({len(value)} characters)"
        text = json.dumps(shown, ensure_ascii=False)
        unbroken = parse_date_text(value, 0) is not None or (len(value) <= 64 and not any(c.isspace() for c in value))
        return f"<span class={'nb' if unbroken else 'text'}>{escape(text)}</span>"
    if isinstance(value, list):
        return "[" + ", ".join(_value_html(v) for v in value) + "]"  # breaks only between elements
    if isinstance(value, dict):
        return "{" + ", ".join(f"<span class=nb>{escape(json.dumps(k, ensure_ascii=False))}:</span> {_value_html(v)}"
                               for k, v in value.items()) + "}"
    return f"<span class=nb>{escape(json.dumps(value, ensure_ascii=False))}</span>"


def _args_html(args: Any) -> str:
    return "".join(f"<span class=arg><span class=k>{escape(name)}</span>=<code>{_value_html(value)}</code></span>"
                   for name, value in dict(args).items()) or "<span class=muted>(none)</span>"


def _reasons_html(outcome: CallOutcome) -> str:
    return "<br>".join(f"<code>{escape(r.code)}</code> {escape(r)}" for r in outcome.reasons)


def _call_row(outcome: CallOutcome, suite: str | None = None) -> str:
    call, miss = outcome.call, _miss(outcome)
    verdict = "allowed" if outcome.allowed else "denied"
    classes = " ".join(c for c in ("miss" if miss else "", "attack" if call.label == "attack" else "") if c)
    flag = f"<br><span class=flag>{_FLAGS[miss]}</span>" if miss else ""
    note = f"<br><span class=muted>{escape(call.note)}</span>" if call.note else ""
    first = "" if suite is None else f"<td>{escape(suite)}</td>"
    return (f"<tr class=\"{classes}\">{first}<td class=n>{call.line}</td><td>{escape(call.episode or '')}</td>"
            f"<td>{escape(call.label or '')}</td><td>{escape(call.tool)}</td><td>{_args_html(call.args)}{note}</td>"
            f"<td><span class={verdict}>{verdict}</span>{flag}</td><td class=why>{_reasons_html(outcome)}</td></tr>")


_CALLS_HEADER = ("<table><tr><th>line</th><th>episode</th><th>label</th><th>tool</th><th>arguments</th>"
                 "<th>verdict</th><th>reason code and deciding check</th></tr>")


def _calls_table(evaluation: Evaluation) -> str:
    """Every call: the allowed attacks first, then the denied benign calls, then the rest in trace order."""
    order = {"attack allowed": 0, "benign denied": 1, "": 2}
    outcomes = sorted(evaluation.outcomes, key=lambda o: order[_miss(o)])  # stable: trace order within each
    return _CALLS_HEADER + "".join(_call_row(o) for o in outcomes) + "</table>"


def _look_here_first(evaluations: Sequence[tuple[str, Evaluation]]) -> str:
    """The calls a reader must see: attacks the grants allowed and benign calls they denied, per suite."""
    rows = [(name, o) for name, e in evaluations for o in e.outcomes if _miss(o)]
    if not rows:
        return ("<h2>Look here first</h2><p class=ok>No attack call was allowed and no benign call was denied.</p>")
    attacks = sum(1 for _, o in rows if o.allowed)
    parts = [f"<h2>Look here first</h2><p>{attacks} attack call{'s' if attacks != 1 else ''} allowed (the grant "
             f"let them run) and {len(rows) - attacks} benign call{'s' if len(rows) - attacks != 1 else ''} denied "
             "(the task lost them).</p>", _CALLS_HEADER.replace("<th>line</th>", "<th>suite</th><th>line</th>")]
    order = {"attack allowed": 0, "benign denied": 1}
    for name, outcome in sorted(rows, key=lambda r: order[_miss(r[1])]):
        parts.append(_call_row(outcome, name))
    parts.append("</table>")
    return "".join(parts)


def _inputs_section(inputs: Sequence[ReportInput], version: str) -> str:
    rows = "".join(f"<tr><td>{escape(i.role)}</td><td>{escape(i.name)}</td><td class=hash>{escape(i.sha256)}</td></tr>"
                   for i in inputs)
    table = (f"<table><tr><th>input</th><th>file</th><th>SHA-256</th></tr>{rows}</table>" if inputs
             else "<p class=muted>no input files were named</p>")
    return f"<p>made by capkit {escape(version)} from:</p>{table}"


def _grant_section(evaluation: Evaluation) -> str:
    grant = evaluation.grant
    items = "".join(f"<li>caveat {g.index} (hop {g.hop}{', agent ' + escape(g.agent) if g.agent else ''}): "
                    f"{escape(g.describe())}</li>" for g in grant.caveats)
    notes = "".join(f"<li>{escape(n)}</li>" for n in evaluation.notes)
    return (f"<p class=muted>{escape(grant.provenance)}; location {escape(grant.location)}</p><ol>{items}</ol>"
            + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else ""))


def render_html(evaluations: Sequence[tuple[str, Evaluation]], *, title: str = "capkit action-alignment report",
                generated_at: str = "", inputs: Sequence[ReportInput] = (), version: str | None = None) -> str:
    """One HTML page for one or more (name, evaluation) pairs.

    Order: the calls to look at first, the summary (with several suites), the
    chart, each suite's figures, grant and every call, and last what it was
    made from (``inputs``, and the capkit ``version``, by default this one's).
    """
    version = CAPKIT_VERSION if version is None else version
    total = sum((e.figures for _, e in evaluations), Figures())
    rows = [(name, e.figures) for name, e in evaluations]
    body = [f"<h1>{escape(title)}</h1>"]
    if generated_at:
        body.append(f"<p class=muted>generated {escape(generated_at)}</p>")
    body.append(f"<p class=muted>made by capkit {escape(version)}; its inputs are listed at the end</p>")
    body.append("<p>Every call of each trace was decided by capkit's verifier against the grant. A denied call "
                "is an action outside the authority the person granted.</p>")
    body.append(_look_here_first(evaluations))
    if len(evaluations) > 1:
        body.append("<h2>Summary</h2><table><tr><th>suite</th><th>calls</th><th>exceedance</th>"
                    "<th>utility kept</th><th>attacks blocked</th><th>attack episodes blocked</th></tr>")
        for name, figures in rows + [("all suites", total)]:
            body.append(f"<tr><th>{escape(name)}</th><td class=n>{figures.calls}</td>"
                        f"<td class=n>{percent(figures.exceedance_rate)}</td><td class=n>{percent(figures.utility_kept)}</td>"
                        f"<td class=n>{percent(figures.attacks_blocked)}</td>"
                        f"<td class=n>{figures.attack_episodes_blocked} of {figures.attack_episodes}</td></tr>")
        body.append("</table>")
    body.append("<h2>Chart</h2>" + _chart(rows))
    for name, evaluation in evaluations:
        body.append(f"<h2>{escape(name)}</h2><table>{_figure_rows(evaluation.figures)}</table>")
        body.append("<h3>Confusion table</h3>" + _confusion(evaluation.figures))
        body.append("<h3>Grant</h3>" + _grant_section(evaluation))
        body.append("<h3>Calls</h3>" + _calls_table(evaluation))
    body.append("<h2>Inputs</h2>" + _inputs_section(inputs, version))
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "".join(body) + "</body></html>\n")
