"""The README and examples say what the code does: the quickstart runs, commands match CI."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = ci.strip().splitlines()[-1]
    assert command == ".venv/bin/python -m pytest -q"
    assert f"\n{command}\n" in README


def test_readme_quickstart_is_the_example_and_runs(capsys):
    block = re.search(r"<!-- quickstart -->\n```python\n(.*?)```", README, re.S)
    assert block, "README has no quickstart block"
    example = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    assert block.group(1).strip() in example
    assert len([line for line in block.group(1).strip().splitlines() if line.strip()]) <= 20
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "allowed"
    assert out[1].startswith("denied: recipient 'mallory' is not one of 'landlord' (caveat 3")


def test_quickstart_runs_as_a_script():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("allowed\ndenied: ")


def test_public_api_is_pinned():
    import capkit
    import capkit.caveats

    public = [
        "AgentKey", "AuthorizationDenied", "BadDelegation", "BadSignature", "CapkitError", "Code", "Decision",
        "InvalidCaveat", "Invocation", "Keyring", "KeyringError", "Limits", "MalformedToken", "NothingSpent", "Proof",
        "PublicKey", "Reason", "StoreUnavailable", "Token", "Verifier", "__version__", "caveats", "errors", "mint",
        "open_store",
    ]
    assert sorted(capkit.__all__) == sorted(public)
    assert len(capkit.__all__) <= 30  # the surface grows only on purpose, and stays small
    assert sorted(capkit.caveats.__all__) == sorted([
        "REGISTRY", "Approval", "ThirdParty", "ArgsOnly", "DateWindow", "Audience", "Budget", "Call", "CallLimit", "Caveat", "Delegate", "Domain", "Eq", "Expires", "Failure", "Glob", "Holder",
        "Max", "MaxDepth", "Min", "NotBefore", "OneOf", "PathUnder", "Prefix", "Range", "Registry", "Tools", "UnknownCaveat",
    ])
    for name in capkit.__all__:
        assert hasattr(capkit, name), name


def test_every_error_is_a_capkit_error_with_a_code():
    import capkit
    import capkit.errors
    from capkit.core.errors import all_error_classes

    errors = [getattr(capkit.errors, n) for n in capkit.errors.__all__ if isinstance(getattr(capkit.errors, n), type)]
    assert set(errors) == set(all_error_classes()) and len(errors) >= 20
    codes = set()
    for error in errors:
        assert issubclass(error, capkit.CapkitError)
        codes.add(error.code)
    assert len(codes) == len(errors)  # one code per class


def test_core_does_not_import_click_or_integrations():
    code = ("import sys, capkit, capkit.core.verifier, capkit.core.keys, capkit.state, capkit.integrations, "
            "capkit.integrations.guard; "
            "bad = [m for m in ('click', 'rich', 'capkit_cli', 'mcp', 'fastmcp', 'fastapi', 'starlette', 'agents', "
            "'langchain_core', 'psycopg', 'redis', 'anyio') if m in sys.modules]; print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_readme_cli_session_runs_as_written(tmp_path):
    import os
    import shutil

    block = re.search(r"<!-- cli-session -->\n```sh\n(.*?)```", README, re.S)
    assert block, "README has no CLI session block"
    bindir = str(Path(sys.executable).parent)
    assert shutil.which("capkit", path=bindir)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), TMPDIR=str(tmp_path))
    result = subprocess.run(["bash", "-c", block.group(1)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1  # the last command is a denial
    assert "signature and delegations verify" in result.stdout
    assert "allowed (held by agent" in result.stdout
    planner = re.search(r"wrote agent key planner.key \(agent ([0-9a-f]{8})\)", result.stderr).group(1)
    assert result.stdout.rstrip().endswith(
        f"denied:\n  [arg_out_of_range] amount 500 exceeds max 50 (caveat 7, added at hop 0 before agent {planner} "
        "delegated)")
    shown = re.search(r"```text\n(denied:\n.*?)\n```", README, re.S).group(1)
    assert shown == ("denied:\n  [arg_out_of_range] amount 500 exceeds max 50 (caveat 7, added at hop 0 before agent "
                     "3f2a9c01 delegated)")


def test_readme_set_up_commands():
    assert "\n.venv/bin/python -m pytest -q\n" in README
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/capkit demo" in README


def test_readme_budgets_example_is_the_example_and_runs():
    block = re.search(r"<!-- budgets -->\n```python\n(.*?)```", README, re.S)
    assert block, "README has no budgets block"
    example = (ROOT / "examples" / "budgets.py").read_text(encoding="utf-8")
    assert block.group(1).strip() in example
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "budgets.py")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["paid 300", "paid 150"]
    assert lines[2].startswith("denied: amount 100 exceeds the budget: 50 of 500 left per calendar month")
    assert lines[3].startswith("denied: hop 0 of this token") and "task cancelled" in lines[3]


def test_readme_scenario_table_is_what_eval_prints():
    import json as _json

    from click.testing import CliRunner

    from capkit_cli.main import cli

    block = re.search(r"<!-- scenarios -->\n(.*?)\n\n", README, re.S).group(1)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:]]
    result = CliRunner().invoke(cli, ["eval", "--suite", str(ROOT / "examples/scenarios"), "--json"])
    data = _json.loads(result.output)
    figures = {name: suite["figures"] for name, suite in data["suites"].items()} | {"all": data["total"]}

    def pct(value):
        return f"{value * 100:.1f}%"

    expected = [[name, str(f["calls"]), str(f["denied"]), pct(f["exceedance_rate"]),
                 f"{pct(f['utility_kept'])} ({f['benign_allowed']}/{f['benign']})",
                 f"{pct(f['attacks_blocked'])} ({f['attack_denied']}/{f['attack']})",
                 f"{f['attack_episodes_blocked']}/{f['attack_episodes']}"] for name, f in figures.items()]
    assert rows == expected


def test_readme_suggestion_figures_on_the_scenarios():
    import json as _json

    from capkit.alignment import EvaluationGrant, evaluate, find_suites, load_suite, suggest_grant
    from capkit.alignment.schemas import load_tool_schemas
    from capkit.alignment.trace import read_trace

    def figures(schemas: bool, exact: bool):
        """benign kept, reworded kept, attacks blocked, argument-changing attacks blocked: [good, total] each."""
        out = {"benign": [0, 0], "reworded": [0, 0], "attacks": [0, 0], "changing": [0, 0]}
        for directory in find_suites(ROOT / "examples/scenarios"):
            calls = load_suite(directory).calls
            tools = load_tool_schemas(_json.loads((directory / "tools.json").read_text())) if schemas else None
            grant = suggest_grant([c for c in calls if c.label != "attack"], slack_percent=10, tools=tools,
                                  exact=exact).grant
            first = min(c.at for c in calls if c.at is not None)
            benign = {(c.tool, _json.dumps(c.args, sort_keys=True)) for c in calls if c.label == "benign"}
            for outcome in evaluate(EvaluationGrant.from_grant(grant), calls, at=first).outcomes:
                call, blocked = outcome.call, not outcome.allowed
                if call.label == "benign":
                    out["benign"][0] += outcome.allowed
                    out["benign"][1] += 1
                    continue
                out["attacks"][0] += blocked
                out["attacks"][1] += 1
                if (call.tool, _json.dumps(call.args, sort_keys=True)) not in benign:
                    out["changing"][0] += blocked
                    out["changing"][1] += 1
            reworded = read_trace((directory / "reworded.jsonl").read_text())
            for outcome in evaluate(EvaluationGrant.from_grant(grant), reworded, at=first).outcomes:
                out["reworded"][0] += outcome.allowed
                out["reworded"][1] += 1
        return out

    def shown(marker, pair):
        good, total = pair
        assert total > 0 and f"<!-- {marker} -->{good} of {total}<!-- /{marker} -->" in README, marker

    plain = figures(schemas=False, exact=False)
    for key in ("benign", "attacks", "reworded"):
        shown(f"suggested-{key}", plain[key])
    with_schemas = figures(schemas=True, exact=False)
    for key in ("benign", "reworded", "attacks", "changing"):
        shown(f"schema-{key}", with_schemas[key])
    pinned = figures(schemas=True, exact=True)
    for key in ("changing", "attacks", "reworded"):
        shown(f"exact-{key}", pinned[key])
    # the goals, on every suite with tool schemas: all benign calls kept, >= 95% kept when reworded,
    # >= 99% of the attacks that change an argument or the tool blocked (with --exact)
    assert with_schemas["benign"][0] == with_schemas["benign"][1] and pinned["benign"][0] == pinned["benign"][1]
    assert with_schemas["reworded"][0] >= 0.95 * with_schemas["reworded"][1]
    assert pinned["changing"][0] >= 0.99 * pinned["changing"][1]


def test_the_approvals_example_runs_as_the_readme_says():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "approvals.py")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "pay 80:   allowed"
    assert lines[1].startswith("pay 1250: denied: this call needs the approval of approver")
    assert "pay 1250 with the approval: allowed" in lines
    assert any(line.startswith("again with the same approval: denied: this approval was already used")
               for line in lines)
    assert any(line.startswith("pay 1300 with it: denied: the approval is for another call") for line in lines)
