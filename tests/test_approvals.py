"""Approvals (issue 13): third-party caveats in the V2 format, discharges bound to the exact call, token
and time, used once; interop with pymacaroons both ways; the guard, MCP and HTTP adapters."""

from __future__ import annotations

import json

import anyio
import pytest
from pymacaroons import MACAROON_V2, Macaroon
from pymacaroons import Verifier as PyVerifier

from capkit import AgentKey, Invocation, Keyring, Proof, Token, Verifier, mint
from capkit.approvals import approve, bind, describe, mint_discharge, parse_request
from capkit.caveats import Approval, Expires, Holder, Max, OneOf, ThirdParty, Tools
from capkit.core.discharge import DISCHARGE_PREFIX, Discharge
from capkit.core.errors import ApprovalError, ApprovalRequired, BadDischarge, InvalidCaveat

from .conftest import NOW, SECRET, chromium_path

KEYRING = Keyring.from_secret(SECRET, key_id="k1")
PLANNER = AgentKey.from_seed(b"\x02" * 32)
PAYER = AgentKey.from_seed(b"\x03" * 32)
APPROVER = AgentKey.from_seed(b"\x0c" * 32)
STRANGER = AgentKey.from_seed(b"\x0d" * 32)


def grant(*extra, holder=PLANNER, transfer="bank.transfer"):
    return mint(KEYRING, Holder(holder.public_key), Tools(transfer, "bank.balance"), Max("amount", 5000, tool=transfer),
                OneOf("recipient", ["landlord", "plumber"], tool=transfer),
                Approval(APPROVER.public_key, tool=transfer, arg="amount", above=100), *extra,
                location="bank")


def verifier(**kwargs):
    return Verifier(KEYRING, location="bank", clock=lambda: NOW, **kwargs)


def call(amount=500, recipient="landlord", tool="bank.transfer", audience=None):
    return Invocation(tool, {"recipient": recipient, "amount": amount}, audience, at=NOW)


def ask(v, token, invocation, key=PLANNER, discharges=()):
    return v.authorize(token, invocation, Proof.create(key, token, invocation, at=NOW), discharges)


def approved(v, token, invocation, key=PLANNER, approver=APPROVER, lifetime=300):
    """Deny for approval, approve as the approver, return the bound discharge text."""
    decision = ask(v, token, invocation, key)
    assert decision.codes == ("approval_required",), decision.explain()
    return bind(token, approve(decision.approval.to_json(), approver, now=NOW, lifetime=lifetime))


# --------------------------------------------------------------------------- flow


def test_routine_calls_pass_and_only_the_unusual_one_asks():
    v, token = verifier(), grant()
    assert ask(v, token, call(amount=80))  # under the threshold
    assert ask(v, token, Invocation("bank.balance", {}, at=NOW))  # another tool: out of the approval's scope
    decision = ask(v, token, call(amount=500))
    assert decision.codes == ("approval_required",)
    reason = decision.reasons[0]
    assert reason.caveat_index == 5 and reason.hop == 0 and APPROVER.public_key.fingerprint in str(reason)
    request = decision.approval.to_json()
    assert request["call"] == {"tool": "bank.transfer", "args": {"recipient": "landlord", "amount": 500},
                               "audience": None}
    assert request["agent"] == PLANNER.public_key.fingerprint and request["token_id"] == token.id
    assert [t["approver"] for t in request["tickets"]] == [APPROVER.public_key.text]
    assert "asks to call bank.transfer" in describe(parse_request(json.dumps(request)))
    assert decision.to_json()["approval_request"] == request


def test_an_approved_call_runs_once_and_only_that_call():
    v, token = verifier(), grant()
    discharge = approved(v, token, call())
    assert ask(v, token, call(), discharges=[discharge])
    reused = ask(v, token, call(), discharges=[discharge])
    assert reused.codes == ("bad_discharge",) and "already used" in reused.explain()
    for other in (call(amount=501), call(recipient="plumber"), call(audience="elsewhere")):
        denied = ask(v, token, other, discharges=[approved(v, token, call())])
        assert "bad_discharge" in denied.codes and "another call" in denied.explain()


def test_a_denied_call_does_not_use_up_its_approval():
    v, token = verifier(), grant()
    discharge = approved(v, token, call())
    thief = ask(v, token, call(), key=STRANGER, discharges=[discharge])  # no valid proof: nothing consumed
    assert thief.codes == ("wrong_holder",)
    assert ask(v, token, call(), discharges=[discharge])


def test_a_discharge_without_the_proof_is_useless():
    v, token = verifier(), grant()
    discharge = approved(v, token, call())
    assert v.authorize(token, call(), None, [discharge]).codes == ("proof_missing",)


def test_a_discharge_cannot_move_to_another_token():
    v, token = verifier(), grant()
    discharge = approve(ask(v, token, call()).approval, APPROVER, now=NOW)
    narrower = token.attenuate(Max("amount", 1000))  # same approval caveat, another token
    bound_to_old = bind(token, discharge)
    denied = ask(v, narrower, call(), discharges=[bound_to_old])
    assert denied.codes == ("bad_discharge",) and "not for this token" in denied.explain()
    denied = ask(v, narrower, call(), discharges=[bind(narrower, discharge)])
    assert denied.codes == ("bad_discharge",) and "another token" in denied.explain()
    unbound = ask(v, token, call(), discharges=[discharge.serialize()])
    assert unbound.codes == ("bad_discharge",)
    other_grant = grant()  # another grant: its approval caveat has another id, so the discharge names nothing
    assert ask(v, other_grant, call(), discharges=[bind(other_grant, discharge)]).codes == ("approval_required",)


def test_only_the_named_approver_can_approve():
    v, token = verifier(), grant()
    request = ask(v, token, call()).approval
    with pytest.raises(ApprovalError, match="not"):
        approve(request, STRANGER, now=NOW)
    # a stranger who rewrites the request to name itself still cannot open the sealed key
    doc = request.to_json()
    doc["tickets"][0]["approver"] = STRANGER.public_key.text
    with pytest.raises(ApprovalError):
        approve(doc, STRANGER, now=NOW)
    # nor forge a discharge under a key of its own
    forged = mint_discharge(b"k" * 32, request.tickets[0].cid, location="approval")
    assert ask(v, token, call(), discharges=[bind(token, forged)]).codes == ("bad_discharge",)


def test_an_expired_approval_is_refused():
    v, token = verifier(), grant()
    discharge = approved(v, token, call(), lifetime=60)
    late = Verifier(KEYRING, location="bank", clock=lambda: NOW + 61)
    invocation = Invocation("bank.transfer", call().args, at=NOW + 61)
    denied = late.authorize(token, invocation, Proof.create(PLANNER, token, invocation, at=NOW + 61), [discharge])
    assert denied.codes == ("bad_discharge",) and "expired" in denied.explain()


def test_the_approver_recomputes_the_call_it_is_shown():
    v, token = verifier(), grant()
    doc = ask(v, token, call(amount=500)).approval.to_json()
    doc["call"]["args"]["amount"] = 4999  # a lying agent shows the person another amount
    discharge = bind(token, approve(doc, APPROVER, now=NOW))
    assert "another call" in ask(v, token, call(amount=500), discharges=[discharge]).explain()


def test_approval_under_delegation_is_the_sub_agents_call():
    v = verifier()
    token = grant().delegate(PLANNER, PAYER.public_key, Expires(NOW + 600))
    decision = ask(v, token, call(), key=PAYER)
    assert decision.codes == ("approval_required",)
    assert decision.approval.agent == PAYER.public_key.fingerprint and len(decision.approval.hops) == 2
    discharge = bind(token, approve(decision.approval, APPROVER, now=NOW))
    assert ask(v, token, call(), key=PAYER, discharges=[discharge])
    # a sub-agent adds an approval of its own: both must approve
    second = token.attenuate(Approval(STRANGER.public_key))
    decision = ask(v, second, call(), key=PAYER)
    assert decision.codes == ("approval_required", "approval_required")
    both = [bind(second, approve(decision.approval, key, now=NOW)) for key in (APPROVER, STRANGER)]
    assert ask(v, second, call(), key=PAYER, discharges=both)


def test_unreadable_or_surplus_discharges_are_refused():
    v, token = verifier(), grant()
    for bad in (["capkit_discharge_!!"], ["capkit_AAAA"], [b"\x02\x00"], ["x"] * 17):
        assert ask(v, token, call(), discharges=bad).codes == ("bad_discharge",)
    discharge = approved(v, token, call())
    assert ask(v, token, call(), discharges=[discharge, discharge]).codes == ("bad_discharge",)
    tampered = discharge[:-3] + ("A" if discharge[-3] != "A" else "B") + discharge[-2:]
    assert ask(v, token, call(), discharges=[tampered]).codes == ("bad_discharge",)
    with pytest.raises(BadDischarge):
        Discharge.parse("capkit_discharge_")


def test_a_decoded_approval_cannot_be_added_again_and_a_first_party_approval_denies():
    from capkit.core import b64, chain
    from capkit.core.token import binary

    token = grant()
    decoded = Token.parse(token.serialize()).caveats[4]
    assert isinstance(decoded, Approval) and decoded.vid is not None
    with pytest.raises(InvalidCaveat):
        token.attenuate(decoded)  # its verification id belongs to its place in that chain
    with pytest.raises(InvalidCaveat):
        Approval(APPROVER.public_key, arg="amount")  # a threshold needs both parts
    # the approval's id appended as a first-party caveat: not an approval, an unreadable caveat that denies
    raw = binary.decode(token.to_bytes())
    smuggled = binary.RawMacaroon(raw.location, raw.identifier, raw.caveats + (decoded.cid,),
                                  chain.link(raw.signature, decoded.cid))
    text = "capkit_" + b64.encode(binary.encode(smuggled))
    denied = ask(verifier(), text, call(amount=50))
    assert denied.codes == ("malformed_caveat",) and "third-party" in denied.explain()


def test_a_guarded_tool_raises_approval_required_with_the_request():
    from capkit.integrations import Credentials
    from capkit.integrations.guard import guard

    v = Verifier(KEYRING, location="bank")
    token = grant()
    ran = []

    @guard(v, tool="bank.transfer")
    def transfer(recipient: str, amount: int) -> str:
        ran.append(amount)
        return "sent"

    credentials = Credentials(token, PLANNER)
    with pytest.raises(ApprovalRequired) as raised:
        transfer("landlord", 500, capkit=credentials)
    assert ran == [] and raised.value.request.tool == "bank.transfer"
    import time

    discharge = approve(raised.value.request, APPROVER, now=time.time())
    assert transfer("landlord", 500, capkit=credentials.approved(discharge)) == "sent" and ran == [500]


# ------------------------------------------------------------------------ pymacaroons


def test_pymacaroons_verifies_a_capkit_approval_and_its_bound_discharge():
    token = mint(KEYRING, Tools("bank.transfer"), Approval(APPROVER.public_key), location="bank")
    v = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    invocation = Invocation("bank.transfer", {"amount": 5}, at=NOW)
    discharge = approve(v.authorize(token, invocation).approval, APPROVER, now=NOW)
    macaroon = Macaroon.deserialize(token.serialize()[len("capkit_"):])
    third = [c for c in macaroon.caveats if c.third_party()]
    assert len(third) == 1 and third[0].location == "approval"
    py_discharge = Macaroon.deserialize(discharge.serialize()[len(DISCHARGE_PREFIX):])
    bound = macaroon.prepare_for_request(py_discharge)
    verifier_ = PyVerifier()
    verifier_.satisfy_general(lambda predicate: True)
    assert verifier_.verify(macaroon, KEYRING.root_key("k1", "bank"), [bound])
    # and the discharge pymacaroons bound verifies in capkit
    assert v.authorize(token, invocation, discharges=[DISCHARGE_PREFIX + bound.serialize()])


def test_capkit_verifies_a_pymacaroons_third_party_caveat_and_discharge():
    token = mint(KEYRING, Tools("bank.transfer"), location="bank")
    macaroon = Macaroon.deserialize(token.serialize()[len("capkit_"):])
    macaroon.add_third_party_caveat("https://auth.example", "a key shared with the auth service", "user=alice")
    text = "capkit_" + macaroon.serialize()
    (caveat,) = [c for c in Token.parse(text).caveats if isinstance(c, ThirdParty)]
    assert caveat.location == "https://auth.example" and caveat.cid == b"user=alice"
    discharge = Macaroon(location="https://auth.example", identifier="user=alice",
                         key="a key shared with the auth service", version=MACAROON_V2)
    bound = macaroon.prepare_for_request(discharge)
    v = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    invocation = Invocation("bank.transfer", {"amount": 5}, at=NOW)
    assert v.authorize(text, invocation, discharges=[DISCHARGE_PREFIX + bound.serialize()])
    missing = v.authorize(text, invocation)
    assert missing.codes == ("bad_discharge",) and "https://auth.example" in missing.explain()
    wrong_key = Macaroon(location="x", identifier="user=alice", key="another key", version=MACAROON_V2)
    forged = DISCHARGE_PREFIX + macaroon.prepare_for_request(wrong_key).serialize()
    assert v.authorize(text, invocation, discharges=[forged]).codes == ("bad_discharge",)


def test_capkit_adds_a_generic_third_party_caveat_that_pymacaroons_can_discharge():
    token = mint(KEYRING, Tools("t"), ThirdParty.new("https://auth.example", b"s" * 32, b"user=bob"),
                 location="bank")
    v = Verifier(KEYRING, location="bank", allow_bearer=True, clock=lambda: NOW)
    discharge = Macaroon(location="https://auth.example", identifier="user=bob", key=b"s" * 32, version=MACAROON_V2)
    bound = Macaroon.deserialize(token.serialize()[7:]).prepare_for_request(discharge)
    assert v.authorize(token, Invocation("t", {}, at=NOW), discharges=[DISCHARGE_PREFIX + bound.serialize()])


# ----------------------------------------------------------------------------- MCP


def test_mcp_denial_carries_the_request_and_the_client_retries_with_the_discharge():
    pytest.importorskip("mcp")
    import time

    from mcp import Client
    from mcp.server.mcpserver import MCPServer

    from capkit.integrations import Credentials
    from capkit.integrations.credentials import APPROVAL_META
    from capkit.integrations.mcp import APPROVAL_SENTENCE, call_tool, protect

    server = MCPServer("bank")
    protect(server, Verifier(KEYRING, location="bank"), audience="bank-mcp")
    sent = []

    @server.tool(name="bank.transfer")
    def transfer(recipient: str, amount: int) -> str:
        sent.append(amount)
        return "sent"

    token = grant()
    credentials = Credentials(token, PLANNER, audience="bank-mcp")
    asked = []

    async def person(request):
        asked.append(request)
        return approve(request, APPROVER, now=time.time())

    async def main():
        async with Client(server) as client:
            plain = await call_tool(client, "bank.transfer", {"recipient": "landlord", "amount": 500}, credentials)
            retried = await call_tool(client, "bank.transfer", {"recipient": "landlord", "amount": 500}, credentials,
                                      on_approval=person)
            return plain, retried

    plain, retried = anyio.run(main)
    assert plain.is_error and plain.content[0].text.startswith(APPROVAL_SENTENCE)
    assert plain.meta[APPROVAL_META]["call"]["args"] == {"recipient": "landlord", "amount": 500}
    assert not retried.is_error and sent == [500] and len(asked) == 1


# ---------------------------------------------------------------------------- HTTP


def test_http_denial_is_an_approval_problem_and_the_discharge_header_passes():
    pytest.importorskip("fastapi")
    import time

    import httpx
    from fastapi import FastAPI

    from capkit.integrations import Credentials
    from capkit.integrations.asgi import APPROVAL_PROBLEM_TYPE, CapkitASGIMiddleware, headers_for

    app = FastAPI()

    @app.post("/bank/transfer")
    def transfer(body: dict) -> dict:
        return {"sent": body["amount"]}

    app.add_middleware(CapkitASGIMiddleware, verifier=Verifier(KEYRING, location="bank"))
    credentials = Credentials(grant(transfer="POST:bank.transfer"), PLANNER)
    body = {"recipient": "landlord", "amount": 500}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
            denied = await client.post("/bank/transfer", json=body,
                                       headers=headers_for(credentials, "POST", "/bank/transfer", body))
            problem = denied.json()
            discharge = approve(problem["approval_request"], APPROVER, now=time.time())
            again = credentials.approved(discharge)
            allowed = await client.post("/bank/transfer", json=body,
                                        headers=headers_for(again, "POST", "/bank/transfer", body))
            return denied, problem, allowed

    denied, problem, allowed = anyio.run(main)
    assert denied.status_code == 403 and problem["type"] == APPROVAL_PROBLEM_TYPE
    assert problem["approval_request"]["call"]["tool"] == "POST:bank.transfer"
    assert allowed.status_code == 200 and allowed.json() == {"sent": 500}


# -------------------------------------------------------------- the approval page



def _post_json(url, doc):
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _get_json(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_a_person_approves_the_exact_call_in_a_real_browser():
    import urllib.error

    from playwright.sync_api import sync_playwright

    from capkit.approvals.server import ApprovalServer

    chromium = chromium_path()
    v = Verifier(KEYRING, location="bank")
    token = grant()
    invocation = Invocation("bank.transfer", {"recipient": "landlord", "amount": 1250})
    decision = v.authorize(token, invocation, Proof.create(PLANNER, token, invocation))
    small = Invocation("bank.transfer", {"recipient": "plumber", "amount": 999})
    other = v.authorize(token, small, Proof.create(PLANNER, token, small))
    server = ApprovalServer(APPROVER, port=0).start()
    try:
        status, ticket = _post_json(server.base_url + "/api/requests", decision.approval.to_json())
        assert status == 202 and ticket["status"] == "pending" and ticket["poll_url"].endswith(ticket["id"])
        _, second = _post_json(server.base_url + "/api/requests", other.approval.to_json())
        with pytest.raises(urllib.error.HTTPError) as refused:  # a request for another approver
            doc = decision.approval.to_json()
            doc["tickets"][0]["approver"] = STRANGER.public_key.text
            _post_json(server.base_url + "/api/requests", doc)
        assert refused.value.code == 400
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            try:
                page = browser.new_page()
                assert page.goto(server.base_url + "/").status == 403  # no session, no approving
                assert page.goto(server.base_url + "/login?secret=wrong").status == 403
                page.goto(server.login_url)
                card = page.locator(f'section[id="{ticket["id"]}"]')
                assert card.locator(".tool").inner_text() == "bank.transfer"
                shown = json.loads(card.locator(".args").inner_text())
                assert shown == {"amount": 1250, "recipient": "landlord"}  # exactly the call that will run
                assert PLANNER.public_key.fingerprint in card.inner_text()
                card.locator("button.approve").click()
                page.wait_for_load_state()
                assert page.locator(f'section[id="{ticket["id"]}"]').count() == 0
                page.locator(f'section[id="{second["id"]}"] button.deny').click()
                page.wait_for_load_state()
                assert "No call is waiting" in page.inner_text("body")
                # a form posted from another origin without the session's anti-forgery token is refused
                forged = page.request.post(f"{server.base_url}/requests/{second['id']}/approve",
                                           form={"csrf": "0" * 64}, max_redirects=0)
                assert forged.status == 403
            finally:
                browser.close()
        polled = _get_json(ticket["poll_url"])
        assert polled["status"] == "approved"
        assert _get_json(second["poll_url"]) == {**second, "status": "denied"}
        again = Proof.create(PLANNER, token, invocation)
        assert v.authorize(token, invocation, again, [bind(token, polled["discharge"])])
    finally:
        server.close()


def test_the_audit_record_names_the_approval_a_call_ran_with(tmp_path):
    from capkit.audit import AuditLog

    log = AuditLog(tmp_path / "a.jsonl", AgentKey.from_seed(b"\x0e" * 32), origin="bank.example/audit")
    v = verifier(audit=log)
    token = grant()
    discharge = approved(v, token, call())
    assert ask(v, token, call(), discharges=[discharge])
    v.close()
    records = [json.loads(line)["r"] for line in (tmp_path / "a.jsonl").read_bytes().splitlines()
               if line.startswith(b'{"h"')]
    asked, ran = records[0], records[1]
    assert asked["reasons"][0]["code"] == "approval_required" and "approvals" not in asked
    assert ran["allowed"] and ran["approvals"][0]["approver"] == APPROVER.public_key.fingerprint
    assert ran["approvals"][0]["caveat"] == 5


def test_the_command_line_approval_round_trip(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from capkit_cli.main import cli

    monkeypatch.setenv("CAPKIT_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    assert run("keys", "init").exit_code == 0
    holder = run("agent", "keygen", "--out", str(tmp_path / "a.key")).output.split()[-1]
    approver = run("approver", "keygen", "--out", str(tmp_path / "alice.key")).output.split()[-1]
    assert run("approver", "keygen", "--out", str(tmp_path / "alice.key")).exit_code == 2  # no silent overwrite
    token = run("mint", "--location", "bank", "--holder", holder, "--tool", "bank.transfer", "--max", "amount=5000",
                "--approval", f"{approver}@bank.transfer:amount>100", "--expires", "1h").output.strip()
    assert run("mint", "--location", "bank", "--tool", "x", "--approval", f"{approver}:amount").exit_code == 2
    check = ["check", token, "--key", str(tmp_path / "a.key"), "--tool", "bank.transfer", "--arg", "amount=500"]
    assert run(*check[:-1], "amount=50").exit_code == 0  # under the threshold
    asked = run(*check, "--json")
    assert asked.exit_code == 1
    request = json.loads(asked.output)["approval_request"]
    (tmp_path / "request.json").write_text(json.dumps(request))
    declined = run("approve", str(tmp_path / "request.json"), "--key", str(tmp_path / "alice.key"), input="n\n")
    assert declined.exit_code == 1 and "asks to call bank.transfer" in declined.output
    yes = run("approve", str(tmp_path / "request.json"), "--key", str(tmp_path / "alice.key"), input="y\n")
    assert yes.exit_code == 0
    discharge = yes.output.strip().splitlines()[-1]
    assert discharge.startswith("capkit_discharge_")
    assert run(*check, "--discharge", discharge).exit_code == 0
    again = run(*check, "--discharge", discharge)
    assert again.exit_code == 1 and "already used" in again.output
    assert run("approve", str(tmp_path / "request.json"), "--key", str(tmp_path / "a.key"), "--yes").exit_code == 2


# ------------------------------------------------------------ any tampering with proofs and discharges

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from capkit.core import b64  # noqa: E402
from capkit.core.codes import ALL_CODES  # noqa: E402
from capkit.core.token import binary  # noqa: E402

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _mutated(text: str, data) -> str:
    """``text`` with one character replaced, inserted or removed, or cut short (hypothesis chooses)."""
    how = data.draw(st.sampled_from(["replace", "insert", "remove", "cut"]))
    i = data.draw(st.integers(0, len(text) - 1))
    if how == "replace":
        c = data.draw(st.sampled_from(_B64 + "=.+/ \u00e9"))
        return text[:i] + c + text[i + 1:]
    if how == "insert":
        return text[:i] + data.draw(st.sampled_from(_B64 + "=")) + text[i:]
    if how == "remove":
        return text[:i] + text[i + 1:]
    return text[:i]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_change_to_an_approved_calls_proof_or_discharge_denies_and_never_crashes(data):
    """The approved call goes through with its token, proof and discharge; change one character of any (or
    send junk beside them) and it is denied with known codes, never an internal error, and the approval is not
    spent. The one exception is a location hint, which no macaroon signature covers."""
    v = verifier()
    token = grant()
    invocation = call(amount=1250)
    discharge = approved(v, token, invocation)
    proof = Proof.create(PLANNER, token, invocation, at=NOW).serialize()
    target = data.draw(st.sampled_from(["token", "proof", "discharge", "extra"]))
    presented = token.serialize()
    if target == "token":
        presented, bad_proof, discharges = _mutated(presented, data), proof, [discharge]
        if presented == token.serialize():
            return
    elif target == "proof":
        bad_proof, discharges = _mutated(proof, data), [discharge]
    elif target == "discharge":
        bad_proof, discharges = proof, [_mutated(discharge, data)]
    else:
        bad_proof, discharges = proof, [discharge, data.draw(st.text(max_size=40))]
    if target != "token" and bad_proof == proof and discharges == [discharge]:
        return
    decision = v.authorize(presented, invocation, bad_proof, discharges)
    assert set(decision.codes) <= ALL_CODES and "internal_error" not in decision.codes
    if decision.allowed:  # only a location hint may differ: no signature covers it, in any macaroon (SPEC §19.1)
        assert target in ("discharge", "token")
        if target == "discharge":
            mine, theirs = Discharge.parse(discharge).raw, Discharge.parse(discharges[0]).raw
        else:
            mine, theirs = (binary.decode(b64.decode(t[len("capkit_"):])) for t in (token.serialize(), presented))
        assert (mine.identifier, mine.signature, len(mine.caveats)) == \
            (theirs.identifier, theirs.signature, len(theirs.caveats))
        for a, b in zip(mine.caveats, theirs.caveats):
            assert a == b or (type(a) is not bytes and (a.cid, a.vid) == (b.cid, b.vid) and a.location != b.location)
        return
    # the untouched call still goes through once: a denied attempt spent neither the proof's nonce nor the approval
    fresh = Proof.create(PLANNER, token, invocation, at=NOW)
    assert v.authorize(token, invocation, fresh, [discharge]).allowed
