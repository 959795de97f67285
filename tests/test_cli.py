"""The command line: every command and its error paths (click's CliRunner), and the installed entry point."""

from __future__ import annotations

import json
from decimal import Decimal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from capkit import Token, __version__
from capkit.caveats import Eq, Max, OneOf, Tools
from capkit_cli.main import cli

CAPKIT = shutil.which("capkit", path=str(Path(sys.executable).parent)) or shutil.which("capkit")


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def runner(home, monkeypatch) -> CliRunner:
    monkeypatch.setenv("CAPKIT_HOME", str(home))
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def initialized(runner):
    assert run(runner, "keys", "init").exit_code == 0
    return runner


RENT_FLAGS = ["--location", "bank", "--tool", "bank.transfer", "--one-of", "recipient=landlord",
              "--max", "amount=1250", "--eq", "currency=USD", "--expires", "24h"]
RENT_ARGS = ["--arg", "recipient=landlord", "--arg", "amount=1250", "--arg", "currency=USD"]


# ------------------------------------------------------------------ help


def test_version_and_help(runner):
    assert run(runner, "--version").output.strip() == f"capkit, version {__version__}"
    top = run(runner, "--help")
    assert top.exit_code == 0 and "Example session" in top.output
    for command in (["keys"], ["keys", "init"], ["keys", "list"], ["keys", "rotate"], ["keys", "remove"], ["mint"],
                    ["attenuate"], ["inspect"], ["check"], ["demo"], ["agent"], ["agent", "keygen"],
                    ["agent", "show"], ["delegate"], ["prove"], ["budget"], ["budget", "show"], ["revoke"],
                    ["audit"], ["audit", "verify"], ["audit", "show"], ["approver"], ["approver", "keygen"],
                    ["approve"], ["approval-server"], ["gateway"]):
        result = run(runner, *command, "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.output, command


# ------------------------------------------------------------------ keys


def test_keys_init_list_rotate_remove(initialized, home):
    keys = home / "keys.json"
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    listed = json.loads(run(initialized, "keys", "list", "--json").output)
    (first,) = listed["keys"]
    assert first["active"] and first["location"] is None
    assert "secret" not in run(initialized, "keys", "list", "--json").output
    table = run(initialized, "keys", "list").output
    assert first["key_id"] in table and "all locations" in table
    assert run(initialized, "keys", "rotate").exit_code == 0
    listed = json.loads(run(initialized, "keys", "list", "--json").output)["keys"]
    assert len(listed) == 2 and sum(k["active"] for k in listed) == 1
    assert run(initialized, "keys", "remove", first["key_id"]).exit_code == 0
    assert len(json.loads(run(initialized, "keys", "list", "--json").output)["keys"]) == 1


def test_keys_init_refuses_to_overwrite(initialized):
    again = run(initialized, "keys", "init")
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert run(initialized, "keys", "init", "--force").exit_code == 0


def test_keys_home_option_overrides_env(runner, tmp_path):
    other = tmp_path / "other"
    assert run(runner, "keys", "init", "--home", str(other)).exit_code == 0
    assert (other / "keys.json").exists()


def test_missing_keyring_is_an_input_error(runner, home):
    result = run(runner, "mint", "--tool", "x")
    assert result.exit_code == 2
    assert "no keyring" in result.stderr and "capkit keys init" in result.stderr


def test_group_or_world_readable_key_file_is_refused(initialized, home):
    os.chmod(home / "keys.json", 0o644)
    for args in (["mint", "--tool", "x"], ["keys", "list"], ["keys", "rotate"]):
        result = run(initialized, *args)
        assert result.exit_code == 2
        assert "chmod 600" in result.stderr


def test_unreadable_or_corrupt_key_file(initialized, home):
    (home / "keys.json").write_text("{not json")
    os.chmod(home / "keys.json", 0o600)
    result = run(initialized, "mint", "--tool", "x")
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


# ------------------------------------------------------------------ mint


def test_mint_prints_only_the_token(initialized):
    result = run(initialized, "mint", *RENT_FLAGS)
    assert result.exit_code == 0
    text = result.stdout.strip()
    assert result.stdout == text + "\n" and text.startswith("capkit_")
    token = Token.parse(text)
    assert token.location == "bank"
    assert Tools("bank.transfer") in token.caveats and OneOf("recipient", ["landlord"]) in token.caveats
    assert Max("amount", 1250) in token.caveats and Eq("currency", "USD") in token.caveats


def test_mint_every_caveat_flag(initialized):
    result = run(initialized, "mint", "--tool", "a", "--tool", "b.*", "--eq-number", "n=3", "--eq-bool", "flag=true",
                 "--eq", "code=007", "--one-of", "r=a,b", "--one-of", 'q=["x,y","z"]', "--one-of-numbers", "k=1,2.5",
                 "--max", "amount=10", "--min", "amount=0.01", "--range", "fee=0..5", "--prefix", "ref=INV-",
                 "--path-under", "path=/srv/docs", "--glob", "to=*@example.com", "--email-domain", "to=example.com",
                 "--url-domain", "site=example.com", "--host-domain", "host=example.com",
                 "--expires", "2030-01-01T00:00:00Z", "--not-before", "2026-01-01T00:00:00Z", "--audience", "bank-api")
    assert result.exit_code == 0, result.stderr
    kinds = [c.kind for c in Token.parse(result.stdout).caveats]
    assert kinds == ["tools", "eq", "eq", "eq", "one_of", "one_of", "one_of", "max", "min", "range", "prefix",
                     "path_under", "glob", "domain", "domain", "domain", "audience", "not_before", "expires"]
    limited = run(initialized, "mint", "--tool", "x", "--budget", "amount=500/month", "--budget", "fee=5",
                  "--calls", "20/1h")
    assert limited.exit_code == 0, limited.stderr
    assert [(c.kind, getattr(c, "window", None)) for c in Token.parse(limited.stdout).caveats] == [
        ("tools", None), ("budget", "month"), ("budget", None), ("calls", 3600)]
    caveats = Token.parse(result.stdout).caveats
    assert caveats[1:4] == (Eq("code", "007"), Eq("n", 3), Eq("flag", True))  # --eq keeps the text as typed
    assert caveats[5] == OneOf("q", ["x,y", "z"]) and caveats[6] == OneOf("k", [1, Decimal("2.5")])
    assert [c.address_kind for c in caveats[13:16]] == ["email", "url", "host"]
    assert Token.parse(result.stdout).location == "default"


def test_mint_from_grant_file(initialized, tmp_path):
    grant = tmp_path / "grant.toml"
    grant.write_text('location = "bank"\ntools = ["bank.transfer"]\n[args.amount]\nmax = "1250"\n')
    result = run(initialized, "mint", "--from", str(grant), "--eq", "currency=USD")
    assert result.exit_code == 0, result.stderr
    token = Token.parse(result.stdout)
    assert token.location == "bank"
    assert token.caveats == (Tools("bank.transfer"), Max("amount", 1250), Eq("currency", "USD"))
    conflict = run(initialized, "mint", "--from", str(grant), "--location", "mail")
    assert conflict.exit_code == 2 and "differs" in conflict.stderr


@pytest.mark.parametrize(
    "args, why",
    [
        (["--expires", "1x", "--tool", "x"], "is not a time"),
        (["--expires", "2026-12-01T00:00:00", "--tool", "x"], "no timezone"),
        (["--max", "amount", "--tool", "x"], "NAME=VALUE"),
        (["--max", "amount=ten"], "plain decimal"),
        (["--max", "amount=1e3"], "plain decimal"),
        (["--range", "fee=1-5"], "LOW..HIGH"),
        (["--range", "fee=5..1"], "greater than"),
        (["--one-of-numbers", "r=a,1"], "plain decimal"),
        (["--one-of", "r=[1"], "JSON array"),
        (["--one-of", "r=[1, 2]"], "JSON array of strings"),
        (["--eq-bool", "x=yes"], "true or ARG=false"),
        (["--eq-number", "x=007x"], "plain decimal"),
        (["--path-under", "p=a/../b"], "'..'"),
        (["--email-domain", "to=not a domain"], "domain"),
        (["--url-domain", "to=127.0.0.1"], "IP address"),
        (["--domain", "to=example.com"], "No such option"),
        (["--tool", "bad tool"], "tool pattern"),
        (["--location", "has space", "--tool", "x"], "location"),
        ([], "at least one caveat"),
        (["--from", "/nonexistent/grant.toml"], "cannot read grant file"),
    ],
)
def test_mint_input_errors_exit_2(initialized, args, why):
    result = run(initialized, "mint", *args)
    assert result.exit_code == 2
    if why:
        assert why in (result.stderr or result.output)
    assert "Traceback" not in result.output


def test_bad_grant_file_is_an_input_error(initialized, tmp_path):
    grant = tmp_path / "grant.toml"
    grant.write_text("[args.amount]\nmax = 12.5\n")
    result = run(initialized, "mint", "--from", str(grant))
    assert result.exit_code == 2 and "not TOML floats" in result.stderr


def test_unknown_flag_is_a_usage_error(initialized):
    result = run(initialized, "mint", "--bogus")
    assert result.exit_code == 2 and "No such option" in result.output


# ------------------------------------------------------------- attenuate


def test_attenuate_needs_no_key(initialized, tmp_path, monkeypatch):
    token = run(initialized, "mint", *RENT_FLAGS).stdout.strip()
    monkeypatch.setenv("CAPKIT_HOME", str(tmp_path / "empty"))  # no keyring here
    result = run(initialized, "attenuate", token, "--max", "amount=50")
    assert result.exit_code == 0
    child = Token.parse(result.stdout)
    assert child.caveats[-1] == Max("amount", 50) and child.id == Token.parse(token).id
    from_stdin = run(initialized, "attenuate", "-", "--max", "amount=50", input=token + "\n")
    assert from_stdin.exit_code == 0 and Token.parse(from_stdin.stdout).caveats[-1] == Max("amount", 50)


def test_attenuate_errors(initialized):
    token = run(initialized, "mint", *RENT_FLAGS).stdout.strip()
    assert run(initialized, "attenuate", token).exit_code == 2
    bad = run(initialized, "attenuate", "capkit_garbage!", "--max", "amount=1")
    assert bad.exit_code == 2 and "base64url" in bad.stderr
    assert "capkit_garbage" not in bad.stderr
    empty = run(initialized, "attenuate", "-", "--max", "amount=1", input="")
    assert empty.exit_code == 2 and "no token on stdin" in empty.stderr


# --------------------------------------------------------------- inspect


def test_inspect_with_and_without_keyring(initialized, tmp_path, monkeypatch):
    token = run(initialized, "mint", *RENT_FLAGS).stdout.strip()
    shown = run(initialized, "inspect", token)
    assert shown.exit_code == 0
    assert "signature and delegations verify" in shown.output and "amount at most 1250" in shown.output
    assert "hop 0: bearer (no holder)" in shown.output
    assert token not in shown.output
    info = json.loads(run(initialized, "inspect", token, "--json").output)
    assert info["signature"] == {"checked": True, "valid": True, "code": None, "message": info["signature"]["message"]}
    assert info["location"] == "bank" and info["expires"] and len(info["caveats"]) == 5
    assert info["chain"] == [{"hop": 0, "holder": None, "id": Token.parse(token).id}] and info["holder"] is None
    assert info["caveats"][0] == {"index": 1, "hop": 0, "kind": "tools", "caveat": {"k": "tools", "v": ["bank.transfer"]},
                                  "text": "tool is bank.transfer"}
    monkeypatch.setenv("CAPKIT_HOME", str(tmp_path / "empty"))
    unchecked = run(initialized, "inspect", token)
    assert unchecked.exit_code == 0 and "signature not checked" in unchecked.output


def test_inspect_reports_a_bad_signature_with_exit_1(initialized):
    token = Token.parse(run(initialized, "mint", *RENT_FLAGS).stdout.strip())
    from capkit.core.token import binary
    from capkit.core import b64 as _b64

    forged = "capkit_" + _b64.encode(binary.encode(binary.RawMacaroon(
        b"bank", token.identifier.encode(), token.encoded_caveats[:-1], token.signature)))
    result = run(initialized, "inspect", forged)
    assert result.exit_code == 1 and "does NOT verify" in result.output
    assert json.loads(run(initialized, "inspect", forged, "--json").output)["signature"]["code"] == "bad_signature"


def test_inspect_malformed_token_is_an_input_error(initialized):
    result = run(initialized, "inspect", "capkit_AAAA")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


# ----------------------------------------------------------------- check


class _BearerRunner:
    """Adds --allow-bearer to every check (these tests are about arguments, not holders)."""

    def __init__(self, runner):
        self.runner = runner

    def invoke(self, cli_, args, **kw):
        if args and args[0] == "check":
            args = [*args, "--allow-bearer"]
        return self.runner.invoke(cli_, args, **kw)


def test_check_allowed_and_denied(initialized):
    token = run(initialized, "mint", *RENT_FLAGS).stdout.strip()
    bearer = run(initialized, "check", token, "--tool", "bank.transfer", *RENT_ARGS)
    assert bearer.exit_code == 1 and "[bearer_not_allowed]" in bearer.output
    allowed = run(initialized, "check", token, "--allow-bearer", "--tool", "bank.transfer", *RENT_ARGS)
    assert allowed.exit_code == 0 and allowed.output.strip() == "allowed"
    denied = run(initialized, "check", token, "--allow-bearer", "--tool", "bank.transfer", "--arg",
                 "recipient=mallory", "--arg", "amount=5000", "--arg", "currency=USD")
    assert denied.exit_code == 1
    assert "[arg_not_allowed] recipient 'mallory' is not one of 'landlord' (caveat 3" in denied.output
    assert "[arg_out_of_range] amount 5000 exceeds max 1250 (caveat 4" in denied.output
    as_json = json.loads(run(initialized, "check", token, "--allow-bearer", "--tool", "bank.wire", *RENT_ARGS,
                             "--json").output)
    assert as_json["allowed"] is False and as_json["reasons"][0]["code"] == "tool_not_granted"


def test_check_argument_typing(initialized):
    initialized = _BearerRunner(initialized)
    token = run(initialized, "mint", "--tool", "x", "--eq", "code=007", "--max", "n=5").stdout.strip()
    # --eq keeps what the person typed: the text 007. The call's 007 is text too (no leading zeros in numbers).
    assert run(initialized, "check", token, "--tool", "x", "--arg", "code=007", "--arg", "n=5").exit_code == 0
    assert run(initialized, "check", token, "--tool", "x", "--arg", 'code="007"', "--arg", "n=4.5").exit_code == 0
    for spelling in ("7", "0007", "7.0"):
        assert run(initialized, "check", token, "--tool", "x", "--arg", f"code={spelling}", "--arg",
                   "n=5").exit_code == 1
    assert run(initialized, "check", token, "--tool", "x", "--args-json", '{"code": 7, "n": 5}').exit_code == 1
    assert run(initialized, "check", token, "--tool", "x", "--args-json", '{"code": "007", "n": "5"}').exit_code == 1


def test_check_time_and_audience(initialized):
    initialized = _BearerRunner(initialized)
    token = run(initialized, "mint", "--tool", "x", "--expires", "1h", "--audience", "bank-api").stdout.strip()
    assert run(initialized, "check", token, "--tool", "x", "--audience", "bank-api").exit_code == 0
    late = run(initialized, "check", token, "--tool", "x", "--audience", "bank-api", "--at", "+2h")
    assert late.exit_code == 1 and "[expired]" in late.output
    assert run(initialized, "check", token, "--tool", "x").exit_code == 1


@pytest.mark.parametrize(
    "args, why",
    [
        (["--args-json", "{bad"], "not valid JSON"),
        (["--args-json", "[1]"], "JSON object"),
        (["--args-json", '{"amount": 1, "amount": 5000}'], "duplicate key"),
        (["--args-json", '{"amount": NaN}'], "NaN is not a JSON number"),
        (["--arg", "amount"], "NAME=VALUE"),
        (["--args-json", '{"a": 1}', "--arg", "a=2"], "twice"),
        (["--at", "noon"], "is not a time"),
    ],
)
def test_check_input_errors_exit_2(initialized, args, why):
    token = run(initialized, "mint", "--tool", "x").stdout.strip()
    result = run(initialized, "check", token, "--tool", "x", *args)
    assert result.exit_code == 2 and why in result.stderr


def test_check_malformed_token_is_an_input_error_and_not_echoed(initialized):
    result = run(initialized, "check", "capkit_not-a-real-token", "--tool", "x")
    assert result.exit_code == 2
    assert "not-a-real-token" not in result.output
    assert run(initialized, "check", "capkit_AA", "--tool", "x").exit_code == 2


def test_check_requires_tool(initialized):
    assert run(initialized, "check", "capkit_AA").exit_code == 2


# ------------------------------------------------------------------ demo


def test_demo_shows_allowed_and_injected_calls(runner):
    result = run(runner, "demo", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    outcome = {row["what"]: (row["allowed"], row["codes"]) for row in data["calls"]}
    assert outcome["pays the rent as planned"] == (True, [])
    assert outcome["pay the rent a second time"] == (False, ["budget_exceeded"])
    assert outcome["revokes the payer; the payer tries a 1 USD fee"] == (False, ["revoked"])
    assert data["store"].startswith("sqlite:///")
    assert outcome["pay the attacker instead"] == (False, ["arg_not_allowed"])
    assert outcome["pay ten times the rent"] == (False, ["arg_out_of_range"])
    assert outcome["close the account"][1][0] == "tool_not_granted"
    assert outcome["widen the token, then pay 12,500"] == (False, ["arg_out_of_range"])
    assert outcome["uses the stolen token (no key)"] == (False, ["proof_missing"])
    assert outcome["signs with its own key"] == (False, ["wrong_holder"])
    assert outcome["re-delegates the token to itself"] == (False, ["bad_delegation"])
    assert outcome["replays a captured proof"] == (False, ["proof_replayed"])
    assert outcome["drops the recipient caveat"] == (False, ["bad_signature"])
    assert outcome["pays again two days later"] == (False, ["expired", "expired"])
    assert data["audit"]["intact"] and data["audit"]["records"] == 16
    assert data["audit"]["after_editing_a_denial"].startswith("TAMPERED: line ")
    table = run(runner, "demo")
    assert table.exit_code == 0
    assert "pay the December rent of 1,250 USD to the landlord" in table.output
    assert "Audit log: intact: 16 records" in table.output
    assert "amount 12500 exceeds max 1250" in table.output and "bad_signature" in table.output


# ------------------------------------------------------------------ audit


def test_check_writes_an_audit_log_that_verify_head_and_show_read(initialized, tmp_path):
    runner = initialized
    holder = run(runner, "agent", "keygen", "--out", str(tmp_path / "a.key")).output.split()[-1]
    token = run(runner, "mint", "--holder", holder, *RENT_FLAGS).output.strip()
    log = str(tmp_path / "audit.jsonl")
    allowed = run(runner, "check", token, "--key", str(tmp_path / "a.key"), "--tool", "bank.transfer", *RENT_ARGS,
                  "--audit", log)
    assert allowed.exit_code == 0
    denied = run(runner, "check", token, "--key", str(tmp_path / "a.key"), "--tool", "bank.transfer",
                 "--arg", "recipient=attacker", "--arg", "amount=1", "--arg", "currency=USD", "--audit", log)
    assert denied.exit_code == 1
    verified = run(runner, "audit", "verify", log, "--json")
    assert verified.exit_code == 0 and json.loads(verified.output)["records"] == 3
    head = run(runner, "audit", "head", log)
    assert head.exit_code == 0 and head.output.startswith("capkit/")
    (tmp_path / "head.txt").write_text(head.output)
    shown = run(runner, "audit", "show", log, "--denied", "--json")
    (record,) = [json.loads(line) for line in shown.output.splitlines()]
    assert record["reasons"][0]["code"] == "arg_not_allowed" and record["args"]["recipient"] == "attacker"
    assert "arg_not_allowed" in run(runner, "audit", "show", log).output
    lines = Path(log).read_bytes().splitlines(keepends=True)
    Path(log).write_bytes(b"".join(lines[:-2]))  # cut the last record and checkpoint off
    assert run(runner, "audit", "verify", log).exit_code == 0  # unseen without the kept head ...
    cut = run(runner, "audit", "verify", log, "--head", str(tmp_path / "head.txt"))
    assert cut.exit_code == 1 and "truncated" in cut.output  # ... caught with it
    other = run(runner, "agent", "keygen", "--out", str(tmp_path / "b.key")).output.split()[-1]
    assert run(runner, "audit", "verify", log, "--key", other).exit_code == 1
    assert run(runner, "audit", "verify", log, "--key", "capkit_pk_nope").exit_code == 2
    assert run(runner, "audit", "verify", str(tmp_path / "missing.jsonl")).exit_code == 2


# ----------------------------------------------------- installed command


@pytest.fixture
def shell_env(tmp_path):
    assert CAPKIT, "the capkit entry point is not installed"
    env = dict(os.environ, CAPKIT_HOME=str(tmp_path / "home"))
    subprocess.run([CAPKIT, "keys", "init"], env=env, check=True, capture_output=True, timeout=60)
    return env


def sh(script: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -o pipefail; " + script], env=dict(env, CAPKIT=CAPKIT),
                          capture_output=True, text=True, timeout=120)


def test_entry_point_version():
    result = subprocess.run([CAPKIT, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and __version__ in result.stdout


def test_shell_pipeline_mint_attenuate_check(shell_env):
    mint = ('"$CAPKIT" mint --location bank --tool bank.transfer --one-of recipient=landlord '
            '--max amount=1250 --eq currency=USD --expires 1h')
    allowed = sh(f'{mint} | "$CAPKIT" attenuate - --max amount=50 | "$CAPKIT" check - --allow-bearer '
                 '--tool bank.transfer --arg recipient=landlord --arg amount=50 --arg currency=USD', shell_env)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "allowed"
    denied = sh(f'{mint} | "$CAPKIT" attenuate - --max amount=50 | "$CAPKIT" check - --allow-bearer '
                '--tool bank.transfer --arg recipient=landlord --arg amount=500 --arg currency=USD', shell_env)
    assert denied.returncode == 1
    assert "[arg_out_of_range] amount 500 exceeds max 50 (caveat 6, added at hop 0)" in denied.stdout
    usage = sh(f'{mint} | "$CAPKIT" attenuate - --max amount=fifty', shell_env)
    assert usage.returncode == 2 and "plain decimal" in usage.stderr
    captured = sh(f'TOKEN=$({mint}) && "$CAPKIT" inspect "$TOKEN" --json', shell_env)
    assert captured.returncode == 0 and json.loads(captured.stdout)["signature"]["valid"] is True


def test_entry_point_demo(tmp_path):
    result = subprocess.run([CAPKIT, "demo"], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, CAPKIT_HOME=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "1 allowed, 12 denied" in result.stdout


# ------------------------------------------------------ holders and proofs


@pytest.fixture
def agents(initialized, tmp_path):
    keys = {}
    for name in ("planner", "payer", "thief"):
        result = run(initialized, "agent", "keygen", "--out", str(tmp_path / f"{name}.key"))
        assert result.exit_code == 0, result.stderr
        keys[name] = (tmp_path / f"{name}.key", result.stdout.strip())
    return keys


def test_agent_keygen_and_show(initialized, agents, home):
    path, public = agents["planner"]
    assert public.startswith("capkit_pk_")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert run(initialized, "agent", "show", "--key", str(path)).output.strip() == public
    shown = json.loads(run(initialized, "agent", "show", "--key", str(path), "--json").output)
    assert shown["public_key"] == public and len(shown["fingerprint"]) == 8
    again = run(initialized, "agent", "keygen", "--out", str(path))
    assert again.exit_code == 2 and "already exists" in again.stderr
    default = run(initialized, "agent", "keygen")
    assert default.exit_code == 0 and (home / "agent.key").exists()
    os.chmod(path, 0o644)
    insecure = run(initialized, "agent", "show", "--key", str(path))
    assert insecure.exit_code == 2 and "chmod 600" in insecure.stderr


def test_holder_delegate_and_check_with_key(initialized, agents):
    planner_key, planner_pk = agents["planner"]
    payer_key, payer_pk = agents["payer"]
    thief_key, _ = agents["thief"]
    token = run(initialized, "mint", *RENT_FLAGS, "--holder", planner_pk, "--max-depth", "1").stdout.strip()
    assert run(initialized, "check", token, "--key", str(planner_key), "--tool", "bank.transfer", *RENT_ARGS).exit_code == 0
    missing = run(initialized, "check", token, "--tool", "bank.transfer", *RENT_ARGS)
    assert missing.exit_code == 1 and "[proof_missing]" in missing.output
    sub = run(initialized, "delegate", token, "--key", str(planner_key), "--to", payer_pk, "--max", "amount=50")
    assert sub.exit_code == 0, sub.stderr
    sub_token = sub.stdout.strip()
    allowed = run(initialized, "check", sub_token, "--key", str(payer_key), "--tool", "bank.transfer",
                  "--arg", "recipient=landlord", "--arg", "amount=50", "--arg", "currency=USD")
    assert allowed.exit_code == 0 and allowed.output.startswith("allowed (held by agent")
    denied = run(initialized, "check", sub_token, "--key", str(payer_key), "--tool", "bank.transfer", *RENT_ARGS)
    assert denied.exit_code == 1 and "[arg_out_of_range]" in denied.output
    wrong = run(initialized, "check", sub_token, "--key", str(planner_key), "--tool", "bank.transfer", *RENT_ARGS)
    assert "[wrong_holder]" in wrong.output
    thief = run(initialized, "delegate", sub_token, "--key", str(thief_key), "--to", agents["thief"][1])
    assert thief.exit_code == 2 and "only the current holder" in thief.stderr
    deeper = run(initialized, "delegate", sub_token, "--key", str(payer_key), "--to", agents["thief"][1])
    assert deeper.exit_code == 2 and "at most 1" in deeper.stderr
    info = json.loads(run(initialized, "inspect", sub_token, "--json").output)
    assert [h["hop"] for h in info["chain"]] == [0, 1]
    assert info["holder"] == json.loads(run(initialized, "agent", "show", "--key", str(payer_key), "--json").output)[
        "fingerprint"]
    # The planner added the max and signed the delegation: both belong to hop 0.
    assert [(c["kind"], c["hop"]) for c in info["caveats"]][-2:] == [("max", 0), ("delegate", 0)]


def test_prove_and_check_with_a_proof(initialized, agents):
    payer_key, payer_pk = agents["payer"]
    token = run(initialized, "mint", *RENT_FLAGS, "--holder", payer_pk).stdout.strip()
    proof = run(initialized, "prove", token, "--key", str(payer_key), "--tool", "bank.transfer", *RENT_ARGS)
    assert proof.exit_code == 0 and proof.stdout.startswith("capkit_proof_")
    text = proof.stdout.strip()
    assert run(initialized, "check", token, "--proof", text, "--tool", "bank.transfer", *RENT_ARGS).exit_code == 0
    other = run(initialized, "check", token, "--proof", text, "--tool", "bank.transfer", "--arg", "recipient=landlord",
                "--arg", "amount=1", "--arg", "currency=USD")
    assert other.exit_code == 1 and "[bad_proof]" in other.output
    both = run(initialized, "check", token, "--proof", text, "--key", str(payer_key), "--tool", "x")
    assert both.exit_code == 2


def test_holder_flag_errors(initialized):
    result = run(initialized, "mint", "--tool", "x", "--holder", "capkit_pk_short")
    assert result.exit_code == 2 and "holder key" in result.stderr
    assert run(initialized, "mint", "--tool", "x", "--max-depth", "99").exit_code == 2
    bearer = run(initialized, "mint", "--tool", "x").stdout.strip()
    result = run(initialized, "delegate", bearer, "--key", "/nonexistent.key", "--to", "capkit_pk_x")
    assert result.exit_code == 2


# ------------------------------------------------------------ shared state


def test_budgets_revocation_and_the_store(initialized, home, tmp_path):
    token = run(initialized, "mint", "--location", "bank", "--tool", "bank.transfer", "--budget", "amount=100/month",
                "--calls", "3/day").stdout.strip()
    check = ["check", token, "--allow-bearer", "--tool", "bank.transfer"]
    assert run(initialized, *check, "--arg", "amount=60").exit_code == 0
    assert run(initialized, *check, "--arg", "amount=60", "--dry-run").exit_code == 1  # 40 left
    assert run(initialized, *check, "--arg", "amount=40", "--dry-run").exit_code == 0  # given back
    assert run(initialized, *check, "--arg", "amount=40").exit_code == 0
    over = run(initialized, *check, "--arg", "amount=1")
    assert over.exit_code == 1 and "[budget_exceeded] amount 1 exceeds the budget: 0 of 100 left" in over.output
    assert (home / "state.db").exists()
    shown = json.loads(run(initialized, "budget", "show", token, "--json").output)["budgets"]
    assert [(b["kind"], b["committed"], b["cap"], b["left"]) for b in shown] == [
        ("budget", "100", "100", "0"), ("calls", "2", "3", "1")]
    table = run(initialized, "budget", "show", token)
    assert table.exit_code == 0 and "amount budget" in table.output
    token_id = json.loads(run(initialized, "inspect", token, "--json").output)["token_id"]
    revoked = run(initialized, "revoke", token_id, "--reason", "task cancelled")
    assert revoked.exit_code == 0
    denied = run(initialized, *check, "--arg", "amount=0")
    assert denied.exit_code == 1 and "[revoked]" in denied.output and "task cancelled" in denied.output
    assert run(initialized, "revoke", "not-an-id").exit_code == 2
    other_store = f"sqlite://{tmp_path / 'other.db'}"
    fresh = run(initialized, *check, "--arg", "amount=1", "--store", other_store)
    assert fresh.exit_code == 0  # another store knows nothing of this spend or revocation
    bad = run(initialized, *check, "--arg", "amount=1", "--store", "ftp://nowhere")
    assert bad.exit_code == 2 and "unknown store scheme" in bad.stderr


def test_budget_flag_errors(initialized):
    for args in (["--budget", "amount"], ["--budget", "amount=ten"], ["--budget", "amount=5/fortnight"],
                 ["--calls", "many"], ["--calls", "5/never"]):
        result = run(initialized, "mint", "--tool", "x", *args)
        assert result.exit_code == 2, args


def test_tool_scoped_flags(initialized):
    token = run(initialized, "mint", "--tool", "bank.*", "--max", "amount@bank.transfer=100",
                "--eq", "to@mail.send=a@example.com", "--calls", "1/day@bank.transfer", "--budget",
                "amount@bank.transfer=150").stdout.strip()
    caveats = Token.parse(token).caveats
    assert [(c.kind, getattr(c, "tool", None)) for c in caveats] == [
        ("tools", None), ("eq", "mail.send"), ("max", "bank.transfer"), ("budget", "bank.transfer"),
        ("calls", "bank.transfer")]
    assert caveats[1].value == "a@example.com"  # '@' after '=' belongs to the value
    check = ["check", token, "--allow-bearer"]
    assert run(initialized, *check, "--tool", "bank.balance").exit_code == 0  # not constrained, not counted
    assert run(initialized, *check, "--tool", "bank.transfer", "--arg", "amount=100").exit_code == 0
    limited = run(initialized, *check, "--tool", "bank.transfer", "--arg", "amount=1")
    assert limited.exit_code == 1 and "[calls_exceeded]" in limited.output
    assert run(initialized, *check, "--tool", "bank.balance").exit_code == 0
    for bad in (["--max", "amount@=1"], ["--calls", "3@"]):
        assert run(initialized, "mint", "--tool", "x", *bad).exit_code == 2


# ------------------------------------------------------------------ papercuts (issue 16)


def test_revoke_help_example_works_and_inspect_shows_hop_ids(initialized, tmp_path):
    runner = initialized
    planner = run(runner, "agent", "keygen", "--out", str(tmp_path / "p.key")).output.split()[-1]
    payer = run(runner, "agent", "keygen", "--out", str(tmp_path / "q.key")).output.split()[-1]
    token = run(runner, "mint", "--holder", planner, *RENT_FLAGS).stdout.strip()
    sub = run(runner, "delegate", token, "--key", str(tmp_path / "p.key"), "--to", payer, "--expires", "1h").stdout
    info = json.loads(run(runner, "inspect", sub.strip(), "--json").output)
    hop_id = info["chain"][1]["id"]  # what `capkit revoke --help` says: .chain[1].id
    assert hop_id.startswith(Token.parse(sub.strip()).id + ".")
    assert f"hop 1: {hop_id}" in run(runner, "inspect", sub.strip()).output
    assert run(runner, "revoke", hop_id).exit_code == 0
    denied = run(runner, "check", sub.strip(), "--key", str(tmp_path / "q.key"), "--tool", "bank.transfer", *RENT_ARGS)
    assert denied.exit_code == 1 and "[revoked]" in denied.output
    whole = run(runner, "revoke", token)
    assert whole.exit_code == 2 and "capkit inspect" in whole.output


@pytest.mark.parametrize("flags, why", [
    (["--expires", "-1h"], "already be expired"),
    (["--expires", "2020-01-01T00:00:00Z"], "already be expired"),
    (["--not-before", "2h", "--expires", "1h"], "never be valid"),
    (["--min", "amount=10", "--max", "amount=5"], "at least 10 and at most 5"),
    (["--calls", "0"], "call limit of 0"),
    (["--eq", "currency=USD", "--eq", "currency=EUR"], "at once"),
    (["--one-of", "to=a,b", "--one-of", "to=c"], "every one_of"),
])
def test_a_token_no_call_could_use_is_refused(initialized, flags, why):
    result = run(initialized, "mint", "--tool", "x", *flags)
    assert result.exit_code == 2 and why in result.output and "capkit_" not in result.output


def test_holder_flags_on_holder_bound_tokens_are_refused_and_no_expiry_warns(initialized, tmp_path):
    runner = initialized
    a = run(runner, "agent", "keygen", "--out", str(tmp_path / "a.key")).output.split()[-1]
    b = run(runner, "agent", "keygen", "--out", str(tmp_path / "b.key")).output.split()[-1]
    c = run(runner, "agent", "keygen", "--out", str(tmp_path / "c.key")).output.split()[-1]
    minted = run(runner, "mint", "--holder", a, "--tool", "x")
    assert minted.exit_code == 0 and "never expires" in minted.output
    token = minted.stdout.strip().splitlines()[-1]
    attenuated = run(runner, "attenuate", token, "--holder", b)
    assert attenuated.exit_code == 2 and "already names a holder" in attenuated.output
    delegated = run(runner, "delegate", token, "--key", str(tmp_path / "a.key"), "--to", b, "--holder", c)
    assert delegated.exit_code == 2 and "already names a holder" in delegated.output
    quiet = run(runner, "mint", "--tool", "x", "--expires", "1h")
    assert quiet.exit_code == 0 and "never expires" not in quiet.output


def test_small_things_a_user_expects(initialized, tmp_path):
    assert run(initialized, "-V").output.strip() == f"capkit, version {__version__}"
    codes = json.loads(run(initialized, "codes", "--json").output)
    from capkit.core.codes import MEANINGS

    assert codes == dict(MEANINGS) and "approval_required" in run(initialized, "codes").output
    key = run(initialized, "agent", "keygen", "--out", str(tmp_path / "a.key")).output.split()[-1]
    assert run(initialized, "agent", "show", str(tmp_path / "a.key")).output.strip() == key
    assert run(initialized, "agent", "show").exit_code == 2
    empty = run(initialized, "mint", "--location", "", "--tool", "x")
    assert empty.exit_code == 2 and "must not be empty" in empty.output
    url = run(initialized, "mint", "--tool", "mail.send", "--email-domain", "to=https://example.com")
    assert url.exit_code == 2 and "is a URL; give only its domain" in url.output
    assert "_CAPKIT_COMPLETE" in run(initialized, "--help").output
    import importlib.resources

    assert importlib.resources.files("capkit").joinpath("py.typed").is_file()
    assert importlib.resources.files("capkit_cli").joinpath("py.typed").is_file()
    assert (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_the_demo_shows_one_reason_for_another_tool_and_no_deleted_path(runner):
    result = run(runner, "demo")
    assert "(state: SQLite in a temporary home" in result.output and "/capkit-demo-" not in result.output
    data = json.loads(run(runner, "demo", "--json").output)
    (close,) = [row for row in data["calls"] if row["what"] == "close the account"]
    assert close["codes"] == ["tool_not_granted"]
