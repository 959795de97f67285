"""The evaluation report as one self-contained HTML file (inline CSS and SVG; no script, no network).

Everything taken from a trace or a grant is escaped: traces come from agents
that read attacker text, so a tool argument may well be ``<script>``. The page
also carries a Content-Security-Policy that forbids scripts and remote loads.
"""

from __future__ import annotations

import json
from html import escape as _html_escape

from ..core.text import escape_bidi


def escape(value: object) -> str:
    """HTML-escaped text with Unicode bidirectional (and other) controls shown as escapes: a trace value
    must not reorder what a reader sees."""
    return _html_escape(escape_bidi(str(value)))
from typing import Sequence

from .replay import Evaluation, Figures

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #dde2ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.allowed{color:#17663a;font-weight:600}.denied{color:#a3231b;font-weight:600}
.attack{background:#fff4f2}code{font-size:12px;word-break:break-all}.muted{color:#667085}
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


def _calls_table(evaluation: Evaluation) -> str:
    rows = ["<table><tr><th>line</th><th>episode</th><th>label</th><th>tool</th><th>arguments</th>"
            "<th>verdict</th><th>deciding check</th></tr>"]
    for outcome in evaluation.outcomes:
        call = outcome.call
        verdict = "allowed" if outcome.allowed else "denied"
        reason = "" if outcome.allowed else "; ".join(str(r) for r in outcome.reasons)
        args = json.dumps(dict(call.args), ensure_ascii=False)
        if len(args) > 300:
            args = args[:300] + "…"
        rows.append(
            f"<tr class=\"{'attack' if call.label == 'attack' else ''}\"><td class=n>{call.line}</td>"
            f"<td>{escape(call.episode or '')}</td><td>{escape(call.label or '')}</td><td>{escape(call.tool)}</td>"
            f"<td><code>{escape(args)}</code></td><td class={verdict}>{verdict}</td><td>{escape(reason)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _grant_section(evaluation: Evaluation) -> str:
    grant = evaluation.grant
    items = "".join(f"<li>caveat {g.index} (hop {g.hop}{', agent ' + escape(g.agent) if g.agent else ''}): "
                    f"{escape(g.describe())}</li>" for g in grant.caveats)
    notes = "".join(f"<li>{escape(n)}</li>" for n in evaluation.notes)
    return (f"<p class=muted>{escape(grant.provenance)}; location {escape(grant.location)}</p><ol>{items}</ol>"
            + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else ""))


def render_html(evaluations: Sequence[tuple[str, Evaluation]], *, title: str = "capkit action-alignment report",
                generated_at: str = "") -> str:
    """One HTML page for one or more (name, evaluation) pairs; with several, a summary comes first."""
    total = sum((e.figures for _, e in evaluations), Figures())
    rows = [(name, e.figures) for name, e in evaluations]
    body = [f"<h1>{escape(title)}</h1>"]
    if generated_at:
        body.append(f"<p class=muted>generated {escape(generated_at)}</p>")
    body.append("<p>Every call of each trace was decided by capkit's verifier against the grant. A denied call "
                "is an action outside the authority the person granted.</p>")
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
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "".join(body) + "</body></html>\n")
