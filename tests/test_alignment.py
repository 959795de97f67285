"""Action-alignment evaluation: traces, replay and figures, suggestions, importers, the HTML report."""

from __future__ import annotations

import json
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capkit import AgentKey, Keyring, Verifier, mint
from capkit.alignment import (
    EvaluationGrant,
    TraceCall,
    TraceError,
    evaluate,
    find_suites,
    import_log,
    import_tool_schemas,
    load_suite,
    read_trace,
    render_html,
    suggest_grant,
    write_trace,
)
from capkit.caveats import Budget, CallLimit, Domain, Eq, Expires, Holder, Max, Min, OneOf, PathUnder, Tools
from capkit.errors import BadSignature, UnknownKey
from capkit.grant import parse_grant

ROOT = Path(__file__).resolve().parent.parent
T0 = 1796115600  # 2026-12-01T09:00:00Z


def line(**fields) -> str:
    return json.dumps(fields)


# ------------------------------------------------------------------ the trace format


def test_trace_lines_are_read_with_every_field():
    text = "\n".join([
        "# a comment",
        line(tool="bank.transfer", args={"amount": 98.7}, at="2026-12-01T09:00:00Z", agent="payer",
             episode="rent-1", label="benign", audience="bank-api", id="call_1", note="planned"),
        "",
        line(tool="bank.balance", args={}, at=T0 + 5),
    ])
    first, second = read_trace(text)
    assert first == TraceCall("bank.transfer", {"amount": 98.7}, T0, "payer", "rent-1", "benign", "bank-api",
                              "call_1", "planned")
    assert first.line == 2 and second.line == 4 and second.at == T0 + 5 and second.label is None


@pytest.mark.parametrize("text, fragment", [
    (line(tool="t", args={}, lable="attack"), "unknown field 'lable'"),
    (line(tool="t", args={}, label="evil"), "label must be 'benign' or 'attack'"),
    (line(tool="", args={}), "tool must be non-empty text"),
    (line(tool="t", args=[1]), "args must be a JSON object"),
    ('{"tool": "t", "args": {"amount": NaN}}', "NaN is not a JSON number"),
    ('{"tool": "t", "args": {"a": 1, "a": 2}}', "duplicate key"),
    ('{"tool": "t", "args": {}} trailing', "not valid JSON"),
    ('{"tool": "t", "args": {}', "not valid JSON"),
    (line(tool="t", args={}, at="1h"), "absolute time"),
    (line(tool="t", args={}, at="2026-12-01T09:00:00"), "no timezone"),
    (line(tool="t", args={}, at=True), "RFC 3339 text or Unix seconds"),
    ("[1, 2]", "a trace line is a JSON object"),
])
def test_malformed_trace_lines_are_refused_naming_the_line(text, fragment):
    with pytest.raises(TraceError) as caught:
        read_trace(line(tool="ok", args={}) + "\n" + text, source="run.jsonl")
    assert caught.value.message.startswith("run.jsonl line 2: ")
    assert fragment in caught.value.message


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=20),
                         st.floats(allow_nan=False, allow_infinity=False))
trace_calls = st.builds(
    TraceCall,
    tool=st.text(min_size=1, max_size=20),
    args=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,9}", fullmatch=True), json_scalars, max_size=4),
    at=st.one_of(st.none(), st.integers(0, 4 * 10**9)),
    agent=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
    episode=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
    label=st.sampled_from([None, "benign", "attack"]),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(trace_calls, max_size=6))
def test_write_then_read_round_trips(calls):
    assert list(read_trace(write_trace(calls))) == calls


# ------------------------------------------------------------------ replay and figures


RENT = {"recipient": "landlord", "amount": 1250, "currency": "USD"}


def rent_grant(*extra) -> EvaluationGrant:
    keyring = Keyring.generate()
    token = mint(keyring, Tools("bank.transfer", "bank.balance"), OneOf("recipient", ["landlord"], tool="bank.transfer"),
                 Max("amount", 1250, tool="bank.transfer"), *extra, location="bank")
    return EvaluationGrant.from_token(token, Verifier(keyring, location="bank"))


def test_figures_are_computed_as_stated():
    # 6 calls: benign 4 (1 denied), attack 2 (1 denied) in two attack episodes; one unlabelled call (denied).
    calls = [
        TraceCall("bank.balance", {}, episode="e1", label="benign"),
        TraceCall("bank.transfer", RENT, episode="e1", label="benign"),
        TraceCall("bank.transfer", {**RENT, "amount": 1300}, episode="e2", label="benign"),   # denied
        TraceCall("bank.balance", {}, episode="e2", label="benign"),
        TraceCall("bank.transfer", {**RENT, "recipient": "mallory"}, episode="e3", label="attack"),  # denied
        TraceCall("bank.transfer", RENT, episode="e4", label="attack"),  # inside the grant: allowed
        TraceCall("bank.close", {}, episode="e5"),  # unlabelled, denied
    ]
    evaluation = evaluate(rent_grant(), calls, at=T0)
    f = evaluation.figures
    assert [o.allowed for o in evaluation.outcomes] == [True, True, False, True, False, True, False]
    assert (f.calls, f.denied, f.allowed, f.unlabeled) == (7, 3, 4, 1)
    assert f.exceedance_rate == pytest.approx(3 / 7)
    assert f.utility_kept == pytest.approx(3 / 4)
    assert f.attacks_blocked == pytest.approx(1 / 2)
    assert (f.attack_episodes, f.attack_episodes_blocked, f.attack_episodes_fully_blocked) == (2, 1, 1)
    assert f.confusion == {"benign": {"allowed": 3, "denied": 1}, "attack": {"allowed": 1, "denied": 1}}
    denied = evaluation.outcomes[2]
    assert denied.deciding.code == "arg_out_of_range" and denied.deciding.caveat_index == 3
    assert str(denied.deciding) == "amount 1300 exceeds max 1250 (caveat 3, added at hop 0)"
    assert evaluation.outcomes[6].deciding.code == "tool_not_granted"


def test_an_episode_with_one_attack_call_denied_of_two_is_blocked_but_not_fully():
    calls = [TraceCall("bank.transfer", {**RENT, "recipient": "mallory"}, episode="x", label="attack"),
             TraceCall("bank.transfer", RENT, episode="x", label="attack")]
    f = evaluate(rent_grant(), calls, at=T0).figures
    assert (f.attack_episodes, f.attack_episodes_blocked, f.attack_episodes_fully_blocked) == (1, 1, 0)


def test_the_same_call_object_twice_is_two_calls():
    call = TraceCall("bank.transfer", RENT, episode="e", label="benign")
    evaluation = evaluate(rent_grant(CallLimit(1, tool="bank.transfer")), [call, call], at=T0)
    assert [o.allowed for o in evaluation.outcomes] == [True, False]
    assert evaluation.outcomes[1].deciding.code == "calls_exceeded"


def test_empty_labels_give_no_rates_not_zero():
    f = evaluate(rent_grant(), [TraceCall("bank.balance", {})], at=T0).figures
    assert f.utility_kept is None and f.attacks_blocked is None and f.exceedance_rate == 0


def test_budgets_count_per_episode_and_denied_calls_spend_nothing():
    grant = rent_grant(Budget("amount", 1500, tool="bank.transfer"))
    calls = [
        TraceCall("bank.transfer", {**RENT, "amount": 1000}, episode="a"),
        TraceCall("bank.transfer", {**RENT, "amount": 1300}, episode="a"),  # over max: denied, spends nothing
        TraceCall("bank.transfer", {**RENT, "amount": 500}, episode="a"),   # 1000 + 500 fits exactly
        TraceCall("bank.transfer", {**RENT, "amount": 1}, episode="a"),     # budget used up
        TraceCall("bank.transfer", {**RENT, "amount": 1250}, episode="b"),  # a new run: a fresh budget
    ]
    outcomes = evaluate(grant, calls, at=T0).outcomes
    assert [o.allowed for o in outcomes] == [True, False, True, False, True]
    assert outcomes[3].deciding.code == "budget_exceeded"


def test_times_come_from_the_trace_or_the_evaluation():
    grant = rent_grant(Expires(T0 + 60))
    calls = [TraceCall("bank.balance", {}, at=T0), TraceCall("bank.balance", {}, at=T0 + 61),
             TraceCall("bank.balance", {})]
    assert [o.allowed for o in evaluate(grant, calls, at=T0 + 30).outcomes] == [True, False, True]
    assert [o.allowed for o in evaluate(grant, calls, at=T0 + 3600).outcomes] == [True, False, False]


def test_calls_without_audience_go_to_the_grants_audience():
    from capkit.caveats import Audience

    grant = rent_grant(Audience("bank-api"))
    calls = [TraceCall("bank.balance", {}), TraceCall("bank.balance", {}, audience="mail-api")]
    evaluation = evaluate(grant, calls, at=T0)
    assert [o.allowed for o in evaluation.outcomes] == [True, False]
    assert evaluation.outcomes[1].deciding.code == "wrong_audience"
    assert any("addressed to 'bank-api'" in n for n in evaluation.notes)


def test_delegated_holder_bound_token_is_replayed_as_its_holder_with_hops_reported():
    keyring = Keyring.generate()
    planner, payer, runner = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    grant = mint(keyring, Holder(planner.public_key), Tools("bank.transfer"), Max("amount", 1250), location="bank")
    token = grant.delegate(planner, payer.public_key).delegate(payer, runner.public_key, Max("amount", 50))
    calls = [TraceCall("bank.transfer", {"amount": 50}), TraceCall("bank.transfer", {"amount": 500})]
    # What the real verifier says to the holder's real call, with its proof:
    from capkit import Invocation, Proof

    call = Invocation("bank.transfer", {"amount": 500}, at=T0)
    real = Verifier(keyring, location="bank").authorize(token, call, Proof.create(runner, token, call, at=T0))
    assert str(real.reasons[0]) == (
        f"amount 500 exceeds max 50 (caveat 5, added at hop 1 by agent {payer.public_key.fingerprint})")
    for evaluation_grant in (EvaluationGrant.from_token(token, Verifier(keyring, location="bank")), EvaluationGrant.from_token(token)):
        evaluation = evaluate(evaluation_grant, calls, at=T0)
        assert [o.allowed for o in evaluation.outcomes] == [True, False]
        assert str(evaluation.outcomes[1].deciding) == str(real.reasons[0])
        assert evaluation.grant.holder == planner.public_key.fingerprint
        assert any("replayed as that holder" in note for note in evaluation.notes)
    assert "verified" in EvaluationGrant.from_token(token, Verifier(keyring, location="bank")).provenance
    assert "NOT checked" in EvaluationGrant.from_token(token).provenance


def test_a_token_that_does_not_verify_is_refused_when_a_keyring_is_given():
    keyring = Keyring.generate()
    token = mint(keyring, Tools("bank.transfer"), location="bank")
    with pytest.raises(UnknownKey):
        EvaluationGrant.from_token(token, Verifier(Keyring.generate(), location="bank"))
    text = token.serialize()
    from capkit import Token

    tampered = Token.parse(text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1])
    with pytest.raises(BadSignature):
        EvaluationGrant.from_token(tampered, Verifier(keyring, location="bank"))


def test_a_grant_that_limits_nothing_is_refused():
    planner = AgentKey.generate()
    token = mint(Keyring.generate(), Holder(planner.public_key), location="bank")
    with pytest.raises(Exception, match="would allow every call"):
        evaluate(EvaluationGrant.from_token(token), [TraceCall("x", {})], at=T0)


def test_malformed_arguments_in_a_trace_are_denials_not_crashes():
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    evaluation = evaluate(rent_grant(), [TraceCall("bank.balance", {"nested": deep})], at=T0)
    assert evaluation.outcomes[0].deciding.code == "bad_invocation"


# ------------------------------------------------------------------ suggest


def benign_trace() -> list[TraceCall]:
    return read_trace((ROOT / "tests/data/benign_trace.jsonl").read_text())


def test_suggest_states_the_tightest_caveats_with_notes():
    suggestion = suggest_grant(benign_trace(), slack_percent=10, location="work")
    caveats = suggestion.grant.caveats
    assert caveats[0] == Tools("bank.transfer", "files.read", "mail.send")
    assert Max("amount", Decimal("1375"), tool="bank.transfer") in caveats
    assert Min("amount", 0, tool="bank.transfer") in caveats
    assert Budget("amount", 1402, tool="bank.transfer") in caveats  # 1250 + 25 in one run, +10%, whole
    assert Eq("currency", "USD", tool="bank.transfer") in caveats
    assert OneOf("recipient", ["landlord", "plumber"], tool="bank.transfer") in caveats
    assert PathUnder("path", "/srv/docs/q4", tool="files.read") in caveats
    assert Domain("to", "example.com", kind="email", tool="mail.send") in caveats
    notes = "\n".join(suggestion.notes)
    assert "mail.send body: left out: free text" in notes
    assert "bank.transfer memo: left out: absent from some calls" in notes
    text = suggestion.to_toml()
    assert text.startswith("# Suggested by `capkit suggest`")
    assert parse_grant(text, now=T0).caveats == caveats  # what is written is what was suggested


def test_slack_keeps_whole_numbers_whole():
    caveats = suggest_grant([TraceCall("t", {"nights": 2}), TraceCall("t", {"nights": 1})], slack_percent=10).grant.caveats
    assert Max("nights", 2, tool="t") in caveats  # 2.2 nights is not a thing
    caveats = suggest_grant([TraceCall("t", {"price": 2.0})], slack_percent=10).grant.caveats
    assert Max("price", Decimal("2.2"), tool="t") in caveats


def test_suggest_without_slack_is_exact_and_admits_the_trace():
    calls = benign_trace()
    suggestion = suggest_grant(calls)
    assert Max("amount", 1250, tool="bank.transfer") in suggestion.grant.caveats
    evaluation = evaluate(EvaluationGrant.from_grant(suggestion.grant), calls, at=T0)
    assert evaluation.figures.denied == 0


@pytest.mark.parametrize("values, expected", [
    (["/srv/a/x", "/srv/b/y"], PathUnder("p", "/srv", tool="t")),
    (["/srv/a/x"], PathUnder("p", "/srv/a", tool="t")),
    (["docs/a.md", "docs/b/c.md"], PathUnder("p", "docs", tool="t")),
    (["a@x.example.com", "b@y.example.com"], Domain("p", "example.com", kind="email", tool="t")),
    (["https://x.example.com/a", "https://y.example.com/z"], Domain("p", "example.com", kind="url", tool="t")),
    (["A@Example.COM"], Domain("p", "example.com", kind="email", tool="t")),
    (["red", "red"], Eq("p", "red", tool="t")),
    (["Alex Doe", "Alex Doe"], Eq("p", "Alex Doe", tool="t")),  # repeated text is not free text
    ([2, 2], Max("p", 2, tool="t")),
])
def test_suggest_argument_kinds(values, expected):
    calls = [TraceCall("t", {"p": v}) for v in values]
    assert expected in suggest_grant(calls).grant.caveats


@pytest.mark.parametrize("values, note, fallback", [
    (["/a/x", "/b/y"], "share no directory below the root", OneOf("p", ["/a/x", "/b/y"], tool="t")),
    (["a@x.com", "b@y.org"], "share no domain at all", OneOf("p", ["a@x.com", "b@y.org"], tool="t")),
    (["a@x.com", "b@y.com"], "com, a public suffix", OneOf("p", ["a@x.com", "b@y.com"], tool="t")),
    ([f"id-{i}" for i in range(11)], "11 distinct values (more than 10)", None),
    (["free text one", "free text two"], "free text (2 distinct values in 2 calls)", None),
    ([[1], [2]], "a list of int values", None),
    ([["a"], []], "empty list", None),
    ([True, False], "takes both true and false", None),
    ([1, "1"], "int/str values", None),
])
def test_suggest_leaves_out_what_it_cannot_bound_and_says_why(values, note, fallback):
    suggestion = suggest_grant([TraceCall("t", {"p": v}) for v in values])
    on_p = [c for c in suggestion.grant.caveats if getattr(c, "arg", None) == "p"]
    assert on_p == ([] if fallback is None else [fallback])
    assert any(note in n for n in suggestion.notes), suggestion.notes


def test_suggest_refuses_an_empty_trace_and_bad_slack():
    with pytest.raises(TraceError):
        suggest_grant([])
    with pytest.raises(TraceError):
        suggest_grant([TraceCall("t", {})], slack_percent=-1)


identifiers = st.text(st.sampled_from("abcdefgh-_"), min_size=1, max_size=8)
arg_values = {
    "amount": st.one_of(st.integers(0, 10**6), st.decimals(0, 10**6, places=2).map(float)),
    "recipient": st.sampled_from(["landlord", "plumber", "grocer"]),
    "path": st.lists(identifiers, min_size=1, max_size=3).map(lambda parts: "/srv/data/" + "/".join(parts)),
    "to": st.tuples(identifiers, st.sampled_from(["example.com", "eu.example.com"])).map(lambda t: f"{t[0]}@{t[1]}"),
    "urgent": st.just(True),
}
random_calls = st.lists(
    st.tuples(st.sampled_from(["pay", "mail"]), st.sampled_from(["e1", "e2", "e3"]),
              st.fixed_dictionaries({k: v for k, v in arg_values.items()})),
    min_size=1, max_size=8,
).map(lambda rows: [TraceCall(tool, args, episode=episode) for tool, episode, args in rows])

OUTSIDE = {"amount": 10**7, "recipient": "mallory", "path": "/etc/passwd", "to": "x@attacker.net", "urgent": False}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_calls, st.sampled_from([0, 10, 50]))
def test_suggest_admits_every_call_and_denies_any_constrained_change(calls, slack):
    suggestion = suggest_grant(calls, slack_percent=slack)
    grant = EvaluationGrant.from_grant(suggestion.grant)
    assert evaluate(grant, calls, at=T0).figures.denied == 0
    constrained = {(c.tool, c.arg) for c in suggestion.grant.caveats if hasattr(c, "arg")}
    for call in calls:
        for name in call.args:
            if (call.tool, name) not in constrained:
                continue
            changed = TraceCall(call.tool, {**call.args, name: OUTSIDE[name]})
            assert not evaluate(grant, [changed], at=T0).outcomes[0].allowed, (call.tool, name)
        other_tool = TraceCall("admin.delete_everything", call.args)
        assert not evaluate(grant, [other_tool], at=T0).outcomes[0].allowed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**40, 10**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["email", "uri", "date", "date-time", "string", "number", "array"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "format", "enum", "const", "minimum", "maximum", "items", "description",
                         "$ref", "properties", "required"]), inner, max_size=4),
    max_leaves=12)
random_schemas = st.fixed_dictionaries({}, optional={
    "properties": st.dictionaries(st.sampled_from(list(arg_values)), json_values, max_size=5),
    "required": json_values, "$defs": json_values})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_calls, st.dictionaries(st.sampled_from(["pay", "mail"]), random_schemas, max_size=2), st.booleans())
def test_any_schema_and_exact_keep_every_benign_call(calls, schemas, exact):
    """Whatever the tools' schemas say (nonsense included), the suggestion still admits every call it came from
    and refuses another tool; a schema can change which caveats are stated, never break the grant."""
    suggestion = suggest_grant(calls, slack_percent=10, tools=schemas, exact=exact)
    grant = EvaluationGrant.from_grant(suggestion.grant)
    assert evaluate(grant, calls, at=T0).figures.denied == 0
    assert not evaluate(grant, [TraceCall("admin.delete_everything", calls[0].args)], at=T0).outcomes[0].allowed


# ------------------------------------------------------------------ importers


def data(name: str) -> str:
    return (ROOT / "tests/data" / name).read_text()


def test_openai_chat_completion_and_conversation():
    calls = import_log("openai-chat", data("openai_chat_completion.json"))
    assert [(c.tool, c.args, c.id, c.at) for c in calls] == [
        ("transfer", {"recipient": "landlord", "amount": 1250, "currency": "USD"}, "call_9pQ1", 1796115600),
        ("get_balance", {}, "call_9pQ2", 1796115600)]
    conversations = import_log("openai-chat", data("openai_chat_conversations.jsonl"), source="chat.jsonl")
    assert [c.tool for c in conversations] == ["search_mail", "send_mail", "send_mail"]
    assert conversations[1].args["to"] == "drop@attacker.net"
    assert [c.episode for c in conversations] == ["chat.jsonl line 1", "chat.jsonl line 1", "chat.jsonl line 2"]


def test_openai_responses_output_and_input_items():
    calls = import_log("openai-responses", data("openai_response.json"))
    assert [(c.tool, c.args, c.id, c.at) for c in calls] == [
        ("book_flight", {"origin": "BER", "destination": "LIS", "price": 289.4}, "call_a1", 1796115600)]
    items = import_log("openai-responses", json.dumps({"input": [
        {"role": "user", "content": "book it"},
        {"type": "function_call", "name": "book_hotel", "arguments": "{\"nights\": 2}", "call_id": "c2"},
        {"type": "function_call_output", "call_id": "c2", "output": "ok"}]}))
    assert [(c.tool, c.args) for c in items] == [("book_hotel", {"nights": 2})]


def test_mcp_log_takes_tools_call_requests_only_and_drops_credentials():
    calls = import_log("mcp", data("mcp_session.jsonl"))
    assert [(c.tool, c.args, c.id) for c in calls] == [
        ("balance", {}, "2"), ("transfer", {"recipient": "landlord", "amount": 1250, "currency": "USD"}, "3"),
        ("transfer", {"recipient": "attacker-llc", "amount": 1250, "currency": "USD"}, "5")]
    assert calls[1].at == 1796115605
    assert "capkit_" not in write_trace(calls)


@pytest.mark.parametrize("kind, text, fragment", [
    ("openai-chat", '{"choices": [{"message": {"role": "assistant", "tool_calls": [{"type": "function", '
                    '"function": {"name": "t", "arguments": "{not json"}}]}}]}', "arguments: not valid JSON"),
    ("openai-chat", '{"choices": [{"message": {"role": "assistant", "tool_calls": [{"type": "function", '
                    '"function": {"name": "t", "arguments": "[1]"}}]}}]}', "must be a JSON object"),
    ("openai-chat", '{"choices": [{"message": {"role": "assistant", "tool_calls": [{"type": "function", '
                    '"function": {"arguments": "{}"}}]}}]}', "has no name"),
    ("openai-chat", '"hello"', "expected a chat completion"),
    ("openai-responses", '{"output": 5}', "expected a response"),
    ("mcp", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t", "arguments": [1]}}',
     "arguments must be a JSON object"),
    ("mcp", "", "the log is empty"),
    ("fax", "{}", "unknown log format"),
])
def test_importers_refuse_malformed_logs(kind, text, fragment):
    with pytest.raises(TraceError, match=fragment):
        import_log(kind, text)


def _listing(*tools):
    return {"jsonrpc": "2.0", "id": 2, "result": {"tools": [
        {"name": name, "inputSchema": {"type": "object", "properties": props}} for name, props in tools]}}


def test_tool_schemas_come_from_the_logs_that_hold_them():
    page1 = _listing(("mail.send", {"to": {"type": "string", "format": "email"}}))
    page2 = _listing(("mail.read", {"id": {"type": "string"}}))
    mcp = "\n".join(json.dumps(m) for m in (
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, page1, page2, page1,  # pages merge, repeats are one
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "mail.read", "arguments": {"id": "7"}}}))
    assert import_tool_schemas("mcp", mcp) == {
        "mail.send": {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}},
        "mail.read": {"type": "object", "properties": {"id": {"type": "string"}}}}
    chat_request = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "tools": [{"type": "function", "function": {"name": "book", "parameters": {"properties": {"n": {}}}}}]}
    assert import_tool_schemas("openai-chat", json.dumps(chat_request)) == {"book": {"properties": {"n": {}}}}
    response = {"created_at": 1796115600, "output": [], "tools": [
        {"type": "web_search"},  # a built-in tool has no argument schema of its own: skipped
        {"type": "function", "name": "book", "parameters": {"properties": {"n": {}}}}]}
    assert import_tool_schemas("openai-responses", json.dumps(response)) == {"book": {"properties": {"n": {}}}}
    assert import_tool_schemas("mcp", data("mcp_session.jsonl")) == {}  # no tools/list response logged


def test_a_tool_defined_twice_differently_is_refused():
    first = _listing(("mail.send", {"to": {"type": "string", "format": "email"}}))
    second = _listing(("mail.send", {"to": {"type": "string"}}))  # a server changed the schema mid-log
    with pytest.raises(TraceError, match="defined again with another schema \\(first at log line 1\\)"):
        import_tool_schemas("mcp", json.dumps(first) + "\n" + json.dumps(second))
    with pytest.raises(TraceError, match="^log: a tool definition has no name"):
        import_tool_schemas("mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"x": 1}]}}) + "\n")
    with pytest.raises(TraceError, match="unknown log format"):
        import_tool_schemas("fax", "{}")


# ------------------------------------------------------------------ suites and the report


def test_the_scenario_suites_give_the_figures_in_the_readme():
    found = find_suites(ROOT / "examples/scenarios")
    assert [p.name for p in found] == ["banking", "calendar", "email_calendar", "files", "messaging", "travel"]
    figures = {}
    for directory in found:
        suite = load_suite(directory)
        first = min(c.at for c in suite.calls if c.at is not None)
        grant = EvaluationGrant.from_grant(parse_grant(suite.grant_text, now=int(first)))
        figures[suite.name] = evaluate(grant, suite.calls, at=first).figures
        # every attack is a realistic exceedance (or, labelled as such, a misuse inside the grant)
        assert all(c.note for c in suite.calls if c.label == "attack")
    got = {name: (f.calls, f.denied, f.benign_allowed, f.benign, f.attack_denied, f.attack) for name, f in figures.items()}
    assert got == {"banking": (13, 7, 6, 6, 7, 7), "calendar": (14, 8, 6, 6, 8, 8), "email_calendar": (15, 6, 8, 8, 6, 7),
                   "files": (17, 9, 8, 9, 8, 8), "messaging": (19, 8, 11, 11, 8, 8), "travel": (16, 8, 8, 8, 8, 8)}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_is_self_contained_escaped_and_has_the_figures():
    calls = [TraceCall("bank.transfer", RENT, episode="e1", label="benign"),
             TraceCall("bank.transfer", {**RENT, "recipient": "<script>alert(1)</script>"}, episode="e2",
                       label="attack", note="</td><img src=x onerror=alert(1)>")]
    evaluation = evaluate(rent_grant(), calls, at=T0)
    page = render_html([("rent <b>", evaluation)])
    assert "<script" not in page.lower() and "<img" not in page.lower() and "<b>" not in page
    assert "Content-Security-Policy" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    parser = _Collector()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "svg" in parser.tags and "table" in parser.tags
    assert "utility kept (benign allowed / benign)" in text and "100.0% (1 of 1)" in text
    assert "attacks blocked (attack calls denied / attack calls)" in text
    assert "<script>alert(1)</script>" in text  # shown as text, not markup
    assert "rent <b>" in text


class _Rows(HTMLParser):
    """The rows of every table: (row class, [cell text]) and, per cell, whether its text sits in a nowrap span."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.spans: list[str] = []
        self.unbroken: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th") and self.rows:
            self.rows[-1][1].append("")
        elif tag == "span":
            self.spans.append(dict(attrs).get("class") or "")

    def handle_endtag(self, tag):
        if tag == "span" and self.spans:
            self.spans.pop()

    def handle_data(self, data):
        if self.rows and self.rows[-1][1]:
            self.rows[-1][1][-1] += data
        if "nb" in self.spans:
            self.unbroken.append(data)


def test_html_report_puts_what_matters_first_and_never_breaks_numbers_or_dates():
    from capkit.alignment.report import ReportInput

    calls = [TraceCall("bank.balance", {}, line=1, episode="e1", label="benign"),
             TraceCall("bank.transfer", {**RENT, "amount": 1300, "on": "2024-05-16 10:00"}, line=2, episode="e1",
                       label="benign"),
             TraceCall("bank.transfer", {**RENT, "memo": "pay " * 80}, line=3, episode="e2", label="attack",
                       note="a rent payment replayed"),
             TraceCall("bank.transfer", {**RENT, "recipient": "mallory"}, line=4, episode="e2", label="attack")]
    evaluation = evaluate(rent_grant(), calls, at=T0)
    page = render_html([("rent", evaluation)], inputs=[ReportInput.of("trace", "runs/t.jsonl", b"abc")],
                       version="9.9.9")
    parser = _Rows()
    parser.feed(page)
    flagged = [(cls, cells) for cls, cells in parser.rows if "miss" in cls]
    # "look here first" lists the allowed attack, then the denied benign call; the calls table starts with them too
    assert [cells[1] for _, cells in flagged[:2]] == ["3", "2"]  # (suite, line, ...)
    assert [cells[0] for _, cells in flagged[2:]] == ["3", "2"]  # (line, ...)
    assert "an attack let through" in flagged[0][1][6] and "a benign call lost" in flagged[1][1][6]
    assert "exceeds max 1250" in flagged[1][1][7] and flagged[1][1][7].startswith("arg_out_of_range")  # the reason code
    assert "a rent payment replayed" in flagged[0][1][5]
    calls_table = [cells for _, cells in parser.rows if len(cells) == 7 and cells[0].isdigit()]
    assert [cells[0] for cells in calls_table] == ["3", "2", "1", "4"]  # then the rest in trace order
    assert "1300" in parser.unbroken and '"2024-05-16 10:00"' in parser.unbroken and '"mallory"' in parser.unbroken
    assert not [t for t in parser.unbroken if t.startswith('"pay')]  # prose may wrap at its spaces
    assert "(320 characters)" in page  # long text is cut, and says so
    assert "made by capkit 9.9.9" in page and "runs/t.jsonl" in page and page.index("Look here first") < page.index("runs/t.jsonl")
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in page  # SHA-256 of b"abc"


def test_html_report_in_a_real_browser_never_breaks_a_value_that_must_stay_whole(tmp_path):
    """Chromium lays the scenario report out at a laptop's width: no number, date or identifier span wraps,
    and the page needs no sideways scrolling."""
    from playwright.sync_api import sync_playwright

    from .conftest import chromium_path

    chromium = chromium_path()
    runs = []
    for directory in find_suites(ROOT / "examples/scenarios"):
        suite = load_suite(directory)
        first = min(c.at for c in suite.calls if c.at is not None)
        grant = EvaluationGrant.from_grant(parse_grant(suite.grant_text, now=int(first)))
        runs.append((suite.name, evaluate(grant, suite.calls, at=first)))
    report = tmp_path / "report.html"
    report.write_text(render_html(runs, inputs=[i for d in find_suites(ROOT / "examples/scenarios")
                                               for i in load_suite(d).inputs]))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(report.as_uri())
            spans, broken = page.evaluate("""() => {
                const spans = [...document.querySelectorAll('span.nb')];
                return [spans.length, spans.filter(s => s.getClientRects().length > 1).map(s => s.textContent)];
            }""")
            assert spans > 200 and broken == []
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            first_rows = page.evaluate("[...document.querySelectorAll('tr.miss')].slice(0, 2).map(r => r.innerText)")
            assert "an attack let through" in first_rows[0] and "a benign call lost" in first_rows[1]
        finally:
            browser.close()


def test_html_report_says_when_nothing_needs_a_look():
    evaluation = evaluate(rent_grant(), [TraceCall("bank.balance", {}, label="benign"),
                                         TraceCall("bank.close", {}, label="attack")], at=T0)
    page = render_html([("rent", evaluation)])
    assert "No attack call was allowed and no benign call was denied." in page
    import capkit
    assert f"made by capkit {capkit.__version__}" in page


def test_html_report_for_several_suites_has_a_summary():
    a = evaluate(rent_grant(), [TraceCall("bank.balance", {}, label="benign")], at=T0)
    b = evaluate(rent_grant(), [TraceCall("bank.close", {}, label="attack")], at=T0)
    page = render_html([("a", a), ("b", b)])
    assert "Summary" in page and "all suites" in page


# ---------------------------------------------------------------- schema-aware suggest (issue 17)


def test_suggest_uses_the_tools_schema_and_names():
    from capkit.alignment.schemas import load_tool_schemas
    from capkit.caveats import ArgsOnly, DateWindow

    schemas = load_tool_schemas({"tools": [{"name": "mail.send", "inputSchema": {
        "type": "object", "required": ["to"],
        "properties": {"to": {"type": "array", "items": {"type": "string", "format": "email"}},
                       "cc": {"type": "array", "items": {"type": "string"}}, "subject": {"type": "string"},
                       "body": {"type": "string"}, "when": {"type": "string", "format": "date-time"}}}}]})
    calls = [TraceCall("mail.send", {"to": ["ann@corp.example", "bo@corp.example"], "subject": "Feedback",
                                      "body": "<summary>", "when": "2024-05-16 10:00"}, episode="e1"),
             TraceCall("mail.send", {"to": ["cy@corp.example"], "subject": "Scores", "body": "x",
                                      "when": "2024-05-16T15:30:00Z"}, episode="e1")]
    suggestion = suggest_grant(calls, tools=schemas)
    caveats = suggestion.grant.caveats
    assert Domain("to", "corp.example", kind="email", tool="mail.send") in caveats  # a list, element-wise
    window = next(c for c in caveats if isinstance(c, DateWindow))
    assert (window.start, window.end) == (1715817600, 1715817600 + 86399)  # the whole day, UTC
    assert ArgsOnly("body", "subject", "to", "when", tool="mail.send") in caveats
    assert not [c for c in caveats if getattr(c, "arg", None) in ("subject", "body")]  # free text by name
    assert any("closed the optional arguments no benign call used: cc" in n for n in suggestion.notes)
    assert any("subject: left out: free text by its name" in n for n in suggestion.notes)


def test_suggest_uses_enum_bounds_and_descriptions_from_the_schema():
    from capkit.alignment.schemas import load_tool_schemas

    schemas = load_tool_schemas([{"type": "function", "function": {"name": "ride.book", "parameters": {
        "type": "object", "properties": {
            "class": {"type": "string", "enum": ["Economy Plus", "Business", "First"]},
            "subject": {"type": "string", "enum": ["airport", "station"]},  # a closed set, whatever its name
            "seats": {"type": "integer", "minimum": 1, "maximum": 4},
            "fare": {"type": "number", "minimum": 0, "maximum": 1000},
            "driver_hints": {"type": "string", "description": "Free-form hints for the driver"}}}}}])
    calls = [TraceCall("ride.book", {"class": "Economy Plus", "subject": "airport", "seats": 4, "fare": 990,
                                      "driver_hints": "gate"}, episode="e1"),
             TraceCall("ride.book", {"class": "Economy Plus", "subject": "airport", "seats": 3, "fare": 40,
                                      "driver_hints": "b"}, episode="e2")]
    suggestion = suggest_grant(calls, slack_percent=50, tools=schemas)
    caveats = suggestion.grant.caveats
    assert Eq("class", "Economy Plus", tool="ride.book") in caveats  # spaces, but one of the schema's values
    assert Eq("subject", "airport", tool="ride.book") in caveats
    assert Max("seats", 4, tool="ride.book") in caveats and Min("seats", 1, tool="ride.book") in caveats
    assert Max("fare", 1000, tool="ride.book") in caveats  # 990 + 50% capped at the schema's maximum
    assert not [c for c in caveats if getattr(c, "arg", None) == "driver_hints"]
    assert any("driver_hints: left out: free text" in n for n in suggestion.notes)
    # the same calls without schemas: the values decide, as before
    plain = suggest_grant(calls, slack_percent=50).grant.caveats
    assert Max("seats", 6, tool="ride.book") in plain and Min("seats", 0, tool="ride.book") in plain


def test_exact_pins_addresses_and_paths_to_the_values_seen():
    calls = [TraceCall("mail.send", {"to": "team@corp.example", "attach": "/srv/q4/agenda.md"}, episode="e1"),
             TraceCall("mail.send", {"to": "lee@eu.corp.example", "attach": "/srv/q4/slides/deck.pdf"}, episode="e2")]
    loose = suggest_grant(calls).grant.caveats
    assert Domain("to", "corp.example", kind="email", tool="mail.send") in loose
    assert PathUnder("attach", "/srv/q4", tool="mail.send") in loose
    pinned = suggest_grant(calls, exact=True).grant.caveats
    assert OneOf("to", ["lee@eu.corp.example", "team@corp.example"], tool="mail.send") in pinned
    assert OneOf("attach", ["/srv/q4/agenda.md", "/srv/q4/slides/deck.pdf"], tool="mail.send") in pinned
    assert not [c for c in pinned if isinstance(c, (Domain, PathUnder))]
    # more distinct values than --max-choices: the domain and the folder, as without --exact
    many = suggest_grant(calls, exact=True, max_choices=1).grant.caveats
    assert Domain("to", "corp.example", kind="email", tool="mail.send") in many
    assert PathUnder("attach", "/srv/q4", tool="mail.send") in many


@pytest.mark.parametrize("prop", [
    {"type": "number", "maximum": 1e308 * 10}, {"maximum": 1e-40}, {"minimum": -1e300, "maximum": "x"},
    {"maximum": True}, {"$ref": "#/$defs/a"}, {"enum": {"a": 1}, "format": 5, "items": 3},
])
def test_a_schema_capkit_cannot_use_never_breaks_a_suggestion(prop):
    from capkit.alignment.schemas import load_tool_schemas

    schemas = load_tool_schemas({"tools": [{"name": "pay", "inputSchema": {
        "properties": {"amount": prop}, "$defs": {"a": {"$ref": "#/$defs/a"}}, "required": "amount"}}]})
    calls = [TraceCall("pay", {"amount": 5}, episode="e1"), TraceCall("pay", {"amount": 7}, episode="e2")]
    caveats = suggest_grant(calls, tools=schemas).grant.caveats
    assert Max("amount", 7, tool="pay") in caveats  # the values decide, as without a schema


def test_openai_tool_definitions_are_read_in_both_forms():
    from capkit.alignment.schemas import load_tool_schemas
    from capkit.core.errors import TraceError

    chat = [{"type": "function", "function": {"name": "book", "parameters": {"properties": {"hotel": {}}}}}]
    responses = [{"type": "function", "name": "book", "parameters": {"properties": {"hotel": {}}}}]
    assert load_tool_schemas(chat) == load_tool_schemas(responses) == {"book": {"properties": {"hotel": {}}}}
    for bad in ({}, [{"name": 3}], "x", []):
        with pytest.raises(TraceError):
            load_tool_schemas(bad)


# ------------------------------------------------------------ hostile logs, traces and values

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10) | st.sampled_from(["tools/call", "tools/list", "function_call", "assistant", "function"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["jsonrpc", "id", "method", "params", "name", "arguments", "result", "tools", "inputSchema",
                         "parameters", "type", "function", "choices", "message", "role", "tool_calls", "output",
                         "input", "messages", "created", "created_at", "timestamp", "call_id"]) | st.text(max_size=4),
        inner, max_size=5),
    max_leaves=15)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["openai-chat", "openai-responses", "mcp"]), st.lists(_json, min_size=1, max_size=3))
def test_any_log_is_imported_or_refused_with_a_trace_error(kind, documents):
    text = "\n".join(json.dumps(d) for d in documents)
    for read in (import_log, import_tool_schemas):
        try:
            read(kind, text)
        except TraceError:
            pass


_arg_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**40, 10**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["2024-05-16", "2024-05-16 10:00", "a@b.example", "/srv/x/y",
                                              "http://10.0.0.1/", "\u202eevil", "<script>"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
_hostile_calls = st.lists(st.builds(
    lambda tool, args, episode, label: TraceCall(tool, args, episode=episode, label=label),
    st.sampled_from(["pay", "mail.send"]), st.dictionaries(st.sampled_from(["to", "amount", "when", "body", "x"]),
                                                          _arg_values, max_size=4),
    st.sampled_from(["e1", "e2"]), st.sampled_from(["benign", "attack", None])), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile_calls, st.booleans())
def test_any_values_give_a_suggestion_that_admits_them_and_a_report_that_escapes_them(calls, exact):
    try:
        suggestion = suggest_grant(calls, slack_percent=10, exact=exact)
    except TraceError:
        return
    grant = EvaluationGrant.from_grant(suggestion.grant)
    evaluation = evaluate(grant, calls, at=T0)
    valid = [o for o in evaluation.outcomes if not any(r.code == "bad_invocation" for r in o.reasons)]
    assert all(o.allowed for o in valid)  # every call a backend could receive is admitted
    page = render_html([("suite", evaluation)])
    assert "<script" not in page.lower() and "\u202e" not in page
