"""``capkit eval``, ``capkit suggest`` and ``capkit trace import`` from the command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from capkit_cli.main import cli

from .test_cli import CAPKIT

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "examples/scenarios"
DATA = ROOT / "tests/data"


@pytest.fixture
def runner(tmp_path, monkeypatch) -> CliRunner:
    monkeypatch.setenv("CAPKIT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


def test_help_has_examples(runner):
    for command in (["eval"], ["suggest"], ["trace"], ["trace", "import"]):
        result = run(runner, *command, "--help")
        assert result.exit_code == 0 and "Example" in result.output, command


def test_eval_over_the_scenario_suites_prints_the_table(runner):
    result = run(runner, "eval", "--suite", str(SCENARIOS), "--no-calls")
    assert result.exit_code == 0, result.output
    for row in ("banking", "calendar", "email_calendar", "files", "messaging", "travel", "all"):
        assert row in result.output
    assert "97.9% (47/48)" in result.output  # utility kept over all suites
    assert "98.4%" not in result.output


def test_eval_json_has_every_verdict_and_the_figures(runner):
    result = run(runner, "eval", "--suite", str(SCENARIOS / "banking"), "--json")
    data = json.loads(result.output)
    banking = data["suites"]["banking"]
    assert data["total"]["calls"] == 13 and data["total"]["attacks_blocked"] == 1.0
    assert [c["allowed"] for c in banking["calls"]][:4] == [True, True, True, True]
    denied = [c for c in banking["calls"] if not c["allowed"]]
    assert denied[0]["reasons"][0]["code"] == "arg_not_allowed"
    assert denied[0]["explanation"].startswith("denied: recipient is 'acct-7731-offshore'")


def test_eval_writes_the_html_report(runner, tmp_path):
    report = tmp_path / "report.html"
    result = run(runner, "eval", "--suite", str(SCENARIOS), "--no-calls", "--html", str(report))
    assert result.exit_code == 0 and f"report written to {report}" in result.output.replace("\n", "")
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "all suites" in page
    import hashlib
    for name in ("banking/grant.toml", "messaging/trace.jsonl"):  # the report names what it was made from
        path = SCENARIOS / name
        assert str(path) in page and hashlib.sha256(path.read_bytes()).hexdigest() in page
    assert page.index("Look here first") < page.index("Summary")


def test_eval_report_records_a_token_grant_and_the_trace_file(runner, tmp_path):
    import hashlib
    (tmp_path / "t.jsonl").write_text('{"tool": "x", "args": {}}\n')
    (tmp_path / "g.toml").write_text('tools = ["x"]\n')
    result = run(runner, "eval", "--grant", "g.toml", "--trace", "t.jsonl", "--html", "r.html", "--no-calls")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    for name in ("g.toml", "t.jsonl"):
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() in page


def test_fail_on_exceedance_exits_1(runner):
    result = run(runner, "eval", "--suite", str(SCENARIOS / "travel"), "--no-calls", "--fail-on-exceedance")
    assert result.exit_code == 1


def test_suggest_then_eval_two_commands(runner, tmp_path):
    benign = tmp_path / "benign.jsonl"
    benign.write_text((DATA / "benign_trace.jsonl").read_text())
    suggested = run(runner, "suggest", "--trace", str(benign), "--slack", "10", "--location", "bank")
    assert suggested.exit_code == 0
    grant = tmp_path / "grant.toml"
    grant.write_text(suggested.output)
    assert 'location = "bank"' in suggested.output and "# bank.transfer memo: left out" in suggested.output
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(json.dumps(line) for line in [
        {"tool": "bank.transfer", "args": {"recipient": "landlord", "amount": 1250, "currency": "USD"}},
        {"tool": "bank.transfer", "args": {"recipient": "mallory", "amount": 10, "currency": "USD"}, "label": "attack"},
        {"tool": "mail.send", "args": {"to": "x@attacker.net", "body": "hi"}, "label": "attack"},
        {"tool": "files.read", "args": {"path": "/srv/docs/secrets.txt"}, "label": "attack"},
    ]))
    result = run(runner, "eval", "--grant", str(grant), "--trace", str(other), "--json")
    calls = json.loads(result.output)["suites"]["other"]["calls"]
    assert [c["allowed"] for c in calls] == [True, False, False, False]
    assert "recipient 'mallory' is not one of 'landlord', 'plumber'" in calls[1]["explanation"]


def test_suggest_ignores_attack_calls(runner, tmp_path):
    trace = tmp_path / "mixed.jsonl"
    trace.write_text("\n".join(json.dumps(x) for x in [
        {"tool": "pay", "args": {"to": "landlord"}, "label": "benign"},
        {"tool": "pay", "args": {"to": "mallory"}, "label": "attack"}]))
    result = CliRunner().invoke(cli, ["suggest", "--trace", str(trace)])
    assert result.exit_code == 0
    assert "1 calls labelled attack were ignored" in result.stderr
    assert 'eq = "landlord"' in result.stdout and "mallory" not in result.stdout


def test_eval_with_a_token_verifies_it_with_the_keyring(runner, tmp_path):
    assert run(runner, "keys", "init").exit_code == 0
    token = run(runner, "mint", "--location", "bank", "--tool", "bank.transfer", "--max", "amount=50",
                "--expires", "1h").output.strip()
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"tool": "bank.transfer", "args": {"amount": 500}}) + "\n")
    result = run(runner, "eval", "--grant", token, "--trace", str(trace))
    assert result.exit_code == 0
    assert "token (signature and delegations verified)" in result.output
    assert "amount 500 exceeds max 50" in result.output
    via_stdin = run(runner, "eval", "--grant", "-", "--trace", str(trace), "--json", input=token)
    assert json.loads(via_stdin.output)["total"]["denied"] == 1
    foreign = run(runner, "keys", "init", "--home", str(tmp_path / "other-home"))
    assert foreign.exit_code == 0
    refused = run(runner, "eval", "--grant", token, "--trace", str(trace), "--home", str(tmp_path / "other-home"))
    assert refused.exit_code == 2 and "no key" in refused.output


@pytest.mark.parametrize("args, fragment", [
    (["eval", "--trace", "t.jsonl"], "give --grant and --trace"),
    (["eval", "--suite", ".", "--grant", "g.toml"], "give either --suite"),
    (["eval", "--grant", "g.toml", "--trace", "missing.jsonl"], "cannot read trace"),
    (["eval", "--grant", "g.toml", "--trace", "bad.jsonl"], "bad.jsonl line 1: unknown field 'tol'"),
    (["eval", "--grant", "bad.toml", "--trace", "t.jsonl"], "error:"),
    (["eval", "--suite", "."], "holds no suite"),
    (["suggest", "--trace", "empty.jsonl"], "no calls"),
    (["trace", "import", "mcp", "empty.jsonl"], "the log is empty"),
    (["trace", "import", "mcp", "notes.txt"], "not valid JSON"),
    (["eval", "--grant", "g.toml", "--trace", "t.jsonl", "--html", "no/such/dir/r.html"], "cannot write the report"),
    (["suggest", "--trace", "t.jsonl", "--out", "no/such/dir/g.toml"], "cannot write the grant file"),
])
def test_input_errors_exit_2_with_a_sentence(runner, tmp_path, args, fragment):
    (tmp_path / "t.jsonl").write_text(json.dumps({"tool": "x", "args": {}}) + "\n")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"tol": "x", "args": {}}) + "\n")
    (tmp_path / "g.toml").write_text('tools = ["x"]\n')
    (tmp_path / "bad.toml").write_text('tools = ["x"]\nwhatever = 1\n')
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("hello\nworld\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_trace_import_writes_a_trace_eval_reads(runner, tmp_path):
    result = run(runner, "trace", "import", "mcp", str(DATA / "mcp_session.jsonl"), "--label", "attack",
                 "--episode", "run-7", "--agent", "payer")
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert [x["tool"] for x in lines] == ["balance", "transfer", "transfer"]
    assert all(x["label"] == "attack" and x["episode"] == "run-7" and x["agent"] == "payer" for x in lines)
    assert "capkit_" not in result.output
    (tmp_path / "t.jsonl").write_text(result.output)
    (tmp_path / "g.toml").write_text('tools = ["balance", "transfer"]\n[for."transfer".args.recipient]\neq = "landlord"\n')
    evaluated = run(runner, "eval", "--grant", "g.toml", "--trace", "t.jsonl", "--json")
    assert [c["allowed"] for c in json.loads(evaluated.output)["suites"]["t"]["calls"]] == [True, True, False]


def test_trace_import_keeps_the_logs_tool_schemas_for_suggest(runner, tmp_path):
    schema = {"type": "object", "required": ["to"], "properties": {
        "to": {"type": "string", "format": "email"}, "subject": {"type": "string"}, "cc": {"type": "string"}}}
    log = tmp_path / "mcp.log"
    log.write_text("\n".join(json.dumps(m) for m in (
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "mail.send", "inputSchema": schema}]}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "mail.send", "arguments": {"to": "kim@corp.example", "subject": "Q3"}}})) + "\n")
    result = run(runner, "trace", "import", "mcp", str(log), "--label", "benign", "--out", "t.jsonl",
                 "--tools-out", "tools.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "tools.json").read_text()) == {"tools": [{"name": "mail.send", "inputSchema": schema}]}
    suggested = run(runner, "suggest", "--trace", "t.jsonl", "--tools", "tools.json")
    assert suggested.exit_code == 0, suggested.output
    assert 'args_only = ["subject", "to"]' in suggested.output  # cc, never used, is closed
    assert 'eq = "Q3"' not in suggested.output  # free text by its schema and name, however short
    assert 'email_domain = "corp.example"' in suggested.output
    pinned = run(runner, "suggest", "--trace", "t.jsonl", "--tools", "tools.json", "--exact")
    assert pinned.exit_code == 0 and 'eq = "kim@corp.example"' in pinned.output
    # without --tools-out the trace is still written, with a note that the schemas exist
    hinted = run(runner, "trace", "import", "mcp", str(log))
    assert hinted.exit_code == 0 and "--tools-out FILE keeps their schemas" in hinted.output


def test_trace_import_tools_out_without_definitions_writes_nothing(runner, tmp_path):
    result = run(runner, "trace", "import", "mcp", str(DATA / "mcp_session.jsonl"), "--out", "t.jsonl",
                 "--tools-out", "tools.json")
    assert result.exit_code == 2 and "holds no tool definitions" in result.output
    assert not (tmp_path / "t.jsonl").exists() and not (tmp_path / "tools.json").exists()


def test_inspect_shows_markup_in_a_token_as_text(runner):
    assert run(runner, "keys", "init").exit_code == 0
    token = run(runner, "mint", "--location", "ba[/z]nk", "--tool", "bank.x", "--one-of", "recipient=x[/x]",
                "--eq", "memo=[red]hi[/red]", "--expires", "1h").output.strip()
    result = run(runner, "inspect", token)
    assert result.exit_code == 0
    assert "ba[/z]nk" in result.output and "'[red]hi[/red]'" in result.output and "x[/x]" in result.output


@pytest.mark.skipif(CAPKIT is None, reason="the capkit entry point is not installed")
def test_two_commands_with_the_installed_entry_point(tmp_path):
    grant = tmp_path / "grant.toml"
    suggest = subprocess.run([CAPKIT, "suggest", "--trace", str(DATA / "benign_trace.jsonl"), "--out", str(grant)],
                             capture_output=True, text=True, timeout=60)
    assert suggest.returncode == 0, suggest.stderr
    evaluated = subprocess.run([CAPKIT, "eval", "--grant", str(grant), "--trace", str(DATA / "benign_trace.jsonl"),
                                "--fail-on-exceedance", "--no-calls"], capture_output=True, text=True, timeout=60)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "100.0% (7/7)" in evaluated.stdout


def test_long_replays_get_a_progress_bar_on_a_terminal():
    import io

    from rich.console import Console

    from capkit_cli.commands.alignment import PROGRESS_FROM, progress_bar

    with progress_bar(PROGRESS_FROM - 1, Console(file=io.StringIO(), force_terminal=True)) as advance:
        assert advance is None  # short work: no bar
    with progress_bar(PROGRESS_FROM, Console(file=io.StringIO(), force_terminal=False)) as advance:
        assert advance is None  # not a terminal: no bar
    screen = io.StringIO()
    with progress_bar(PROGRESS_FROM, Console(file=screen, force_terminal=True, width=100)) as advance:
        for _ in range(PROGRESS_FROM):
            advance()
    assert "replaying calls" in screen.getvalue()
