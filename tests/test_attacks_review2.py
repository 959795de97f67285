"""Regressions for the second security review (issue 18), one per finding, named after the attack."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from capkit import AgentKey, Invocation, Keyring, KeyringError, Verifier, mint
from capkit.alignment import EvaluationGrant, TraceCall, evaluate, read_trace, suggest_grant
from capkit.alignment.report import render_html
from capkit.alignment.suggest import Suggestion
from capkit.alignment.trace import TraceError
from capkit.caveats import Domain, Eq, OneOf, Prefix, Tools
from capkit.errors import GrantError, InvalidCaveat, KeyringError as KeyError_, UnsafeStore
from capkit.grant import Grant, parse_grant
from capkit.state import open_store
from capkit_cli.main import cli

from .conftest import NOW, SECRET

ROOT = Path(__file__).resolve().parent.parent
KEYRING = Keyring.from_secret(SECRET, key_id="k1")
_ = KeyError_


# ------------------------------------------------------- 1: suggest grants the loopback address


def test_suggest_never_grants_an_ip_address_as_a_domain():
    calls = [TraceCall("http.get", {"url": "http://10.0.0.1/"}, episode="a"),
             TraceCall("http.get", {"url": "http://11.0.0.1/"}, episode="b")]
    suggestion = suggest_grant(calls)
    assert not [c for c in suggestion.grant.caveats if isinstance(c, Domain)]
    assert any("IP addresses are never domains" in n for n in suggestion.notes)


@pytest.mark.parametrize("domain", ["0.0.1", "0.1", "127.0.0.1", "10.0.0.1", "0x7f.1", "2130706433"])
def test_a_hand_written_ip_domain_is_refused(domain):
    with pytest.raises(InvalidCaveat, match="IP address"):
        Domain("url", domain, kind="url")
    with pytest.raises(GrantError):
        parse_grant(f'tools = "http.get"\n[args.url]\nurl_domain = "{domain}"\n', now=NOW)


def test_no_domain_caveat_admits_the_loopback_address():
    verifier = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    token = mint(KEYRING, Tools("http.get"), Domain("url", "example.com", kind="url"), location="bank")
    for url in ("http://127.0.0.1:8080/admin/shutdown", "http://127.1/", "http://0x7f000001/", "http://[::1]/"):
        assert not verifier.authorize(token, Invocation("http.get", {"url": url}, at=NOW))


# ------------------------------------------------------- 2: suggest proposes a public suffix


def test_suggest_never_proposes_a_public_suffix():
    calls = [TraceCall("mail.send", {"to": "alice@payroll.acme.co.uk"}, episode="a"),
             TraceCall("mail.send", {"to": "bob@bank.co.uk"}, episode="b")]
    suggestion = suggest_grant(calls)
    assert not [c for c in suggestion.grant.caveats if isinstance(c, Domain)]
    assert any("co.uk, a public suffix" in n for n in suggestion.notes)
    narrower = suggest_grant([TraceCall("mail.send", {"to": "alice@payroll.acme.co.uk"}, episode="a"),
                              TraceCall("mail.send", {"to": "bob@hr.acme.co.uk"}, episode="b")])
    assert Domain("to", "acme.co.uk", kind="email", tool="mail.send") in narrower.grant.caveats


@pytest.mark.parametrize("domain", ["co.uk", "com.au", "github.io", "com"])
def test_grant_files_and_the_cli_refuse_a_public_suffix(domain, tmp_path):
    with pytest.raises(GrantError, match="public suffix"):
        parse_grant(f'tools = "mail.send"\n[args.to]\nemail_domain = "{domain}"\n', now=NOW)
    runner = CliRunner()
    home = tmp_path / "home"
    assert runner.invoke(cli, ["keys", "init", "--home", str(home)]).exit_code == 0
    result = runner.invoke(cli, ["mint", "--home", str(home), "--tool", "mail.send", "--email-domain",
                                 f"to={domain}"])
    assert result.exit_code == 2 and "public suffix" in result.output


# ---------------------------------------- 3: a hostile trace writes lines into the grant file


def test_a_hostile_argument_name_in_a_trace_is_refused():
    line = '{"tool": "x", "args": {"x\\nlocation = \\"prod-bank\\" #": 1}}\n'
    with pytest.raises(TraceError, match="outside the argument grammar"):
        read_trace(line)


def test_no_note_can_leave_its_comment():
    hostile = 'x\nlocation = "prod-bank" #\r\nexpires = "100y"\u2028tools = ["*"]\x0b\x0c\x85'
    suggestion = Suggestion(Grant(None, (Tools("x"),)), (hostile,))
    text = suggestion.to_toml()
    assert parse_grant(text, now=NOW) == Grant(None, (Tools("x"),))
    assert all(line.startswith("#") or line.startswith("tools") or not line for line in text.split("\n"))


def test_suggest_checks_the_exact_text_it_writes():
    calls = [TraceCall("mail.send", {"to": "a@example.com", "subject": "x\ny"}, episode="a")]
    suggestion = suggest_grant(calls, location="mail")
    assert parse_grant(suggestion.to_toml(), now=NOW) == suggestion.grant


# ----------------------------------------------------- 4: a planted state.db


def _plant(path: Path) -> None:
    """A database with capkit's schema, plus triggers that erase revocations and nonces as they are written."""
    open_store(f"sqlite://{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER forget_revocations AFTER INSERT ON revocations BEGIN "
                   "DELETE FROM revocations; END")
        db.execute("CREATE TRIGGER forget_nonces AFTER INSERT ON nonces BEGIN DELETE FROM nonces; END")


def test_a_planted_state_file_with_triggers_is_refused(tmp_path):
    path = tmp_path / "state.db"
    _plant(path)
    with pytest.raises(UnsafeStore, match="trigger"):
        open_store(f"sqlite://{path}")


def test_a_state_file_with_extra_tables_or_views_is_refused(tmp_path):
    for statement in ("CREATE VIEW revocations_view AS SELECT * FROM revocations",
                      "CREATE TABLE extra (x)", "CREATE INDEX sneaky ON revocations (reason)"):
        path = tmp_path / f"s{abs(hash(statement))}.db"
        open_store(f"sqlite://{path}").close()
        with sqlite3.connect(path) as db:
            db.execute(statement)
        with pytest.raises(UnsafeStore):
            open_store(f"sqlite://{path}")


def test_a_foreign_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (x)")
    os.chmod(path, 0o600)
    with pytest.raises(UnsafeStore, match="tables capkit did not create"):
        open_store(f"sqlite://{path}")


def test_the_state_file_and_its_directory_are_private(tmp_path):
    home = tmp_path / "fresh" / "home"
    open_store(f"sqlite://{home / 'state.db'}").close()
    assert stat.S_IMODE((home / "state.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    os.chmod(home / "state.db", 0o644)
    with pytest.raises(UnsafeStore, match="chmod 600"):
        open_store(f"sqlite://{home / 'state.db'}")
    os.chmod(home / "state.db", 0o600)
    os.chmod(home, 0o777)
    with pytest.raises(UnsafeStore, match="chmod 700"):
        open_store(f"sqlite://{home / 'state.db'}")
    os.chmod(home, 0o700)
    os.symlink(home / "state.db", home / "link.db")
    with pytest.raises(UnsafeStore, match="not a regular file"):
        open_store(f"sqlite://{home / 'link.db'}")


def test_the_cli_refuses_a_home_others_can_write(tmp_path):
    home = tmp_path / "home"
    runner = CliRunner()
    assert runner.invoke(cli, ["keys", "init", "--home", str(home)]).exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    os.chmod(home, 0o775)
    result = runner.invoke(cli, ["keys", "list", "--home", str(home)])
    assert result.exit_code == 2 and "chmod 700" in result.output


# ------------------------------------------------------ 5: a FIFO at a key path


@pytest.mark.parametrize("loader", ["Keyring", "AgentKey"])
def test_a_fifo_at_a_key_path_is_refused_without_hanging(tmp_path, loader):
    fifo = tmp_path / "keys.json"
    os.mkfifo(fifo, 0o600)
    code = (f"import sys; from capkit import {loader}, KeyringError\n"
            f"try:\n    {loader}.load(sys.argv[1])\nexcept KeyringError as e:\n    print(e.message)\n")
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=30,
                          cwd=ROOT)
    assert "is not a regular file" in done.stdout, done.stderr
    with pytest.raises(KeyringError, match="not a regular file"):
        (Keyring if loader == "Keyring" else AgentKey).load(fifo)


def test_a_symbolic_link_at_a_key_path_is_refused(tmp_path):
    real = tmp_path / "real.json"
    Keyring.generate().save(real)
    (tmp_path / "keys.json").symlink_to(real)
    with pytest.raises(KeyringError, match="symbolic link"):
        Keyring.load(tmp_path / "keys.json")


# ---------------------------------------------- bidirectional controls in a grant


@pytest.mark.parametrize("text", ["landlord\u202e", "\u2066admin\u2069", "USD\u200f"])
def test_bidirectional_controls_are_refused_in_caveat_text(text):
    for build in (lambda: Eq("recipient", text), lambda: OneOf("recipient", [text]), lambda: Prefix("ref", text)):
        with pytest.raises(InvalidCaveat, match="bidirectional"):
            build()
    with pytest.raises(KeyringError):
        mint(KEYRING, Tools("x"), location="bank" + text)


def test_a_grant_file_with_a_bidirectional_control_is_refused_even_in_a_comment():
    text = 'tools = ["bank.transfer"]  # pay \u202e"mallory" = recipient\n[args.recipient]\none_of = ["landlord"]\n'
    with pytest.raises(GrantError, match="line 1 holds a Unicode bidirectional control"):
        parse_grant(text, now=NOW)


def test_the_report_shows_bidirectional_controls_escaped():
    grant = EvaluationGrant.from_grant(Grant("bank", (Tools("x"),)))
    evaluation = evaluate(grant, [TraceCall("x", {"note": "pay \u202eyllam"}, episode="e\u2067")], at=NOW)
    html = render_html([("suite", evaluation)])
    assert "\u202e" not in html and "\u2067" not in html
    assert "\\u202e" in html
