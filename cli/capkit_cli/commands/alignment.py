"""``capkit eval``, ``capkit suggest`` and ``capkit trace import``: measure action alignment, write tight grants."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import attrs
import click
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from capkit import Token, Verifier
from capkit.alignment import (
    FORMATS,
    Evaluation,
    EvaluationGrant,
    Figures,
    TraceCall,
    TraceError,
    evaluate,
    find_suites,
    import_log,
    import_tool_schemas,
    load_suite,
    load_tool_schemas,
    read_trace,
    render_html,
    suggest_grant,
    write_trace,
)
from capkit.alignment.report import ReportInput, percent
from capkit.alignment.trace import strict_json
from capkit.core.timefmt import format_instant, parse_instant
from capkit.core.verifier import EVERY_LOCATION

from ..errors import EXIT_DENIED, InputError, reports_errors
from ..home import home_option, keyring_path, load_keyring
from ..io import console, escape, print_json, stdout_is_terminal


def _read_input(path: Path | str, what: str) -> tuple[str, bytes]:
    """The UTF-8 text of a file (or '-' for stdin) and the bytes it was read from."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
        return data.decode("utf-8"), data
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc.__class__.__name__}") from None


def _read_text(path: Path | str, what: str) -> str:
    return _read_input(path, what)[0]


def _write_text(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc.__class__.__name__}") from None


def load_evaluation_grant(source: str, calls: tuple[TraceCall, ...], now: int,
                          home: Path | None) -> tuple[EvaluationGrant, ReportInput]:
    """A grant file, or a token (text, file or '-'), and what was read; a token is verified when the home has a
    keyring."""
    if source.startswith("capkit_"):
        text, read = source, ReportInput.of("grant token", "(given on the command line)", source.encode())
    else:
        text, data = _read_input(source, "grant file")
        read = ReportInput.of("grant", "(stdin)" if source == "-" else source, data)
    text = text.strip()
    if not text.startswith("capkit_"):
        return EvaluationGrant.from_grant_file(text, calls, now=now), read
    token = Token.parse(text)
    if keyring_path(home).exists():
        return EvaluationGrant.from_token(token, Verifier(load_keyring(home), location=EVERY_LOCATION)), read
    return EvaluationGrant.from_token(token), read


#: Traces at least this long get a progress bar (on a terminal).
PROGRESS_FROM = 2000


@contextlib.contextmanager
def progress_bar(total: int, err: Console | None = None) -> Iterator[Callable[[], None] | None]:
    """A callback that advances a progress bar on stderr, when stderr is a terminal and the work is long."""
    err = err if err is not None else Console(stderr=True)
    if total < PROGRESS_FROM or not err.is_terminal:
        yield None
        return
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task("replaying calls", total=total)
        yield lambda: bar.advance(task)


def _calls_table(evaluation: Evaluation) -> Table:
    table = Table(title="Every call, replayed against the grant", show_lines=False)
    for column in ("line", "episode", "label", "tool", "verdict"):
        table.add_column(column, no_wrap=column != "episode")
    table.add_column("deciding check", ratio=3, overflow="fold")
    for outcome in evaluation.outcomes:
        call = outcome.call
        verdict = "[green]allowed[/green]" if outcome.allowed else "[red]denied[/red]"
        reason = "" if outcome.allowed else escape(f"[{outcome.deciding.code}] {outcome.deciding}")  # type: ignore[union-attr]
        if len(outcome.reasons) > 1:
            reason += f" (+{len(outcome.reasons) - 1} more)"
        table.add_row(str(call.line), escape(call.episode or ""), call.label or "", escape(call.tool), verdict, reason,
                      style="on grey15" if call.label == "attack" and stdout_is_terminal() else None)
    return table


def _figures_table(rows: list[tuple[str, Figures]]) -> Table:
    table = Table(title="Action alignment")
    for column in ("suite", "calls", "denied", "exceedance", "utility kept", "attacks blocked", "attack episodes blocked"):
        table.add_column(column, justify="left" if column == "suite" else "right")
    for name, f in rows:
        table.add_row(escape(name), str(f.calls), str(f.denied), percent(f.exceedance_rate),
                      f"{percent(f.utility_kept)} ({f.benign_allowed}/{f.benign})",
                      f"{percent(f.attacks_blocked)} ({f.attack_denied}/{f.attack})",
                      f"{f.attack_episodes_blocked}/{f.attack_episodes}")
    return table


def _confusion_table(f: Figures) -> Table:
    table = Table(title="Confusion (label against verdict)")
    table.add_column("label")
    table.add_column("allowed", justify="right")
    table.add_column("denied", justify="right")
    for label in ("benign", "attack"):
        table.add_row(label, str(f.confusion[label]["allowed"]), str(f.confusion[label]["denied"]))
    return table


@click.command("eval")
@click.option("--grant", "grant_source", metavar="GRANT",
              help="A grant file (grant.toml), a token, a file holding one, or - for stdin.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The trace to replay (JSON Lines, specs/TRACE.md).")
@click.option("--suite", "suites", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A scenario directory (grant.toml + trace.jsonl), or a directory of them. Repeatable.")
@click.option("--at", metavar="WHEN", help="Time of calls that carry none (default: now).")
@click.option("--audience", metavar="NAME", help="Audience of calls that carry none (default: the grant's first).")
@click.option("--json", "as_json", is_flag=True, help="Print every verdict and the figures as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report (with a chart) to this file.")
@click.option("--calls/--no-calls", "show_calls", default=True, help="Show the per-call table (default: on).")
@click.option("--fail-on-exceedance", is_flag=True, help="Exit 1 if any call exceeded the grant.")
@home_option
@reports_errors
def eval_command(grant_source: str | None, trace_path: Path | None, suites: tuple[Path, ...], at: str | None,
                 audience: str | None, as_json: bool, html_path: Path | None, show_calls: bool,
                 fail_on_exceedance: bool, home: Path | None) -> None:
    """Replay agent traces against a grant: which actions exceeded the authority granted?

    Every call goes through capkit's verifier (no side effects: budgets count in
    a fresh in-memory store per episode; holder-bound grants are replayed as
    their holder would call, without proofs). Reports each call's verdict with
    the deciding caveat, and the figures: exceedance rate (denied / calls) and,
    for labelled traces, utility kept (benign allowed / benign), attacks blocked
    (attack calls denied / attack calls), attack episodes blocked, and the
    confusion table. A token is verified when the capkit home has a keyring.
    Relative times in a grant file count from the trace's first call.

    Exit 0 when the evaluation ran (1 with --fail-on-exceedance if a call
    exceeded the grant), 2 for unreadable or malformed input.

    \b
    Examples:
      capkit eval --grant grant.toml --trace run.jsonl --html report.html
      capkit eval --grant "$TOKEN" --trace run.jsonl --json
      capkit eval --suite examples/scenarios --no-calls
    """
    now = int(time.time()) if at is None else parse_instant(at, now=int(time.time()))
    jobs: list[tuple[str, EvaluationGrant, tuple[TraceCall, ...]]] = []
    inputs: list[ReportInput] = []
    if suites:
        if grant_source or trace_path:
            raise InputError("give either --suite, or --grant with --trace")
        for directory in (d for s in suites for d in find_suites(s)):
            suite = load_suite(directory)
            jobs.append((suite.name, EvaluationGrant.from_grant_file(suite.grant_text, suite.calls, now=now),
                         suite.calls))
            inputs.extend(suite.inputs)
    else:
        if not grant_source or not trace_path:
            raise InputError("give --grant and --trace (or --suite DIR)")
        trace_text, trace_data = _read_input(trace_path, "trace")
        calls = read_trace(trace_text, source=str(trace_path))
        if not calls:
            raise InputError(f"{trace_path} holds no calls")
        grant, grant_read = load_evaluation_grant(grant_source, calls, now, home)
        jobs.append((trace_path.stem, grant, calls))
        inputs.extend((grant_read, ReportInput.of("trace", str(trace_path), trace_data)))
    with progress_bar(sum(len(calls) for _, _, calls in jobs)) as advance:
        runs = [(name, evaluate(grant, calls, at=now, audience=audience, progress=advance))
                for name, grant, calls in jobs]
    total = sum((e.figures for _, e in runs), Figures())
    if html_path is not None:
        _write_text(html_path, render_html(runs, generated_at=format_instant(time.time()), inputs=inputs), "the report")
    if as_json:
        print_json({"suites": {name: e.to_json() for name, e in runs}, "total": total.to_json()})
    else:
        out = console(min_width=140)
        for name, evaluation in runs:
            if show_calls:
                out.print(f"[bold]{escape(name)}[/bold]: {escape(evaluation.grant.provenance)}")
                for note in evaluation.notes:
                    out.print(f"  note: {escape(note)}")
                out.print(_calls_table(evaluation))
        rows = [(name, e.figures) for name, e in runs] + ([("all", total)] if len(runs) > 1 else [])
        out.print(_figures_table(rows))
        out.print(_confusion_table(total))
        if html_path is not None:
            out.print(f"report written to {html_path}")
    if fail_on_exceedance and total.denied:
        sys.exit(EXIT_DENIED)


@click.command("suggest")
@click.option("--trace", "trace_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A trace of benign runs of the task (JSON Lines); calls labelled attack are ignored.")
@click.option("--slack", "slack", default=0.0, show_default=True, type=click.FloatRange(0, 1000), metavar="PCT",
              help="Widen amounts, budgets and call limits by this many percent.")
@click.option("--location", help="The grant's location (the service family it is for).")
@click.option("--exact", is_flag=True,
              help="Pin email addresses, URLs and paths to exactly those seen (at most --max-choices), not their "
                   "common domain or folder.")
@click.option("--max-choices", default=10, show_default=True, type=click.IntRange(1, 100),
              help="At most this many distinct values become a one_of list; more are left out.")
@click.option("--tools", "tools_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The tools' schemas (an MCP tools/list result, or OpenAI tool definitions): what each "
                   "argument is (types, formats such as email or date-time, required arguments).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the grant file here instead of stdout.")
@reports_errors
def suggest_command(trace_path: Path, slack: float, location: str | None, exact: bool, max_choices: int,
                    tools_path: Path | None, out_path: Path | None) -> None:
    """The tightest grant (a grant.toml) that admits every call of a benign trace.

    Tools: exactly those called. Per tool: a call limit (the most calls one
    episode made); numbers get max, min 0 and a cumulative budget; email
    addresses and URLs a domain; paths the deepest common directory (with
    --exact, both exactly the values seen);
    identifiers eq or one_of; dates a window of whole days; lists element by
    element; and each tool a closed list of the arguments its calls used. Free
    text (by its name: body, subject, message, ...) and freely varying arguments
    are left out, and comments in the file say which and why. With --tools the
    tools' own schemas say what each argument is. The suggestion is checked by
    replaying the trace through the verifier.

    \b
    Example (two commands from agent logs to a report):
      capkit suggest --trace benign.jsonl --tools tools.json --slack 10 --location bank > grant.toml
      capkit eval --grant grant.toml --trace other-run.jsonl
    """
    calls = read_trace(_read_text(trace_path, "trace"), source=str(trace_path))
    benign = tuple(c for c in calls if c.label != "attack")
    if len(benign) != len(calls):
        click.echo(f"note: {len(calls) - len(benign)} calls labelled attack were ignored", err=True)
    tools = None
    if tools_path is not None:
        tools = load_tool_schemas(strict_json(_read_text(tools_path, "tools file"), str(tools_path)))
    suggestion = suggest_grant(benign, slack_percent=slack, location=location, max_choices=max_choices, exact=exact,
                               at=int(time.time()), tools=tools)
    text = suggestion.to_toml()
    if out_path is not None:
        _write_text(out_path, text, "the grant file")
        click.echo(f"grant written to {out_path}", err=True)
    else:
        click.echo(text, nl=False)


@click.group("trace")
def trace_group() -> None:
    """Traces: agent tool calls, one JSON object per line (specs/TRACE.md).

    \b
    Example:
      capkit trace import openai-chat conversation.json --label benign > trace.jsonl
    """


@trace_group.command("import")
@click.argument("kind", type=click.Choice(FORMATS))
@click.argument("log", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--label", type=click.Choice(["benign", "attack"]), help="Label every call.")
@click.option("--episode", metavar="NAME", help="Put every call in this episode.")
@click.option("--agent", metavar="NAME", help="Name the agent that made the calls.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the trace here instead of stdout.")
@click.option("--tools-out", "tools_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the tool schemas the log holds here (an MCP tools/list result, for suggest --tools).")
@reports_errors
def trace_import_command(kind: str, log: Path, label: str | None, episode: str | None, agent: str | None,
                         out_path: Path | None, tools_path: Path | None) -> None:
    """Turn an agent log (KIND: openai-chat, openai-responses or mcp) into a trace.

    openai-chat: chat completions or message lists (assistant tool_calls).
    openai-responses: responses or item lists (function_call items).
    mcp: JSON-RPC messages, one per line; every tools/call request (capkit
    credentials in _meta are not copied).

    Tool schemas in the log (an MCP tools/list response, a request's tools)
    are kept with --tools-out FILE, which suggest --tools reads.

    \b
    Example:
      capkit trace import mcp server.log --label benign --episode rent-1 --tools-out tools.json > trace.jsonl
    """
    log_text = _read_text(log, "log")
    calls = import_log(kind, log_text, source=str(log))
    if not calls:
        raise TraceError(f"{log} holds no tool calls in the {kind} format")
    schemas = import_tool_schemas(kind, log_text, source=str(log))
    if tools_path is not None and not schemas:
        raise TraceError(f"{log} holds no tool definitions (an MCP tools/list response or a request's tools); "
                         "nothing to write to --tools-out")
    changes = {k: v for k, v in (("label", label), ("episode", episode), ("agent", agent)) if v is not None}
    text = write_trace(attrs.evolve(c, **changes) for c in calls)
    if tools_path is not None:
        listing = {"tools": [{"name": name, "inputSchema": schema} for name, schema in schemas.items()]}
        _write_text(tools_path, json.dumps(listing, indent=2, ensure_ascii=False) + "\n", "the tools file")
        click.echo(f"{len(schemas)} tool schema{'s' if len(schemas) != 1 else ''} written to {tools_path}", err=True)
    elif schemas:
        click.echo(f"note: {log} also defines {len(schemas)} tool{'s' if len(schemas) != 1 else ''}; --tools-out FILE keeps their schemas "
                   "for suggest --tools", err=True)
    if out_path is not None:
        _write_text(out_path, text, "the trace")
        click.echo(f"{len(calls)} calls written to {out_path}", err=True)
    else:
        click.echo(text, nl=False)
