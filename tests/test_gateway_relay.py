"""The gateway's relay logic against scripted peers (in-memory message streams, no processes): attacks on
the routing of messages between host and upstream, where the timing must be exact."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("mcp")

from capkit import AgentKey, Keyring, Verifier, mint  # noqa: E402
from capkit.caveats import Approval, Holder, Tools  # noqa: E402
from capkit.gateway import Gateway  # noqa: E402
from capkit.integrations import Credentials  # noqa: E402


class Peer:
    """One side of the relay, scripted: what the gateway sends it is collected; ``say`` makes it speak."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.sent: list[dict] = []
        self._arrived = asyncio.Event()

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        while True:
            message = await self.inbox.get()
            if message is None:
                return
            yield message

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        self._arrived.set()

    async def say(self, message: dict) -> None:
        await self.inbox.put(message)

    async def next_sent(self, where=lambda m: True, timeout: float = 5) -> dict:
        """The first message sent to this peer that matches ``where`` (waiting for it)."""
        async def find():
            while True:
                for message in self.sent:
                    if where(message):
                        return message
                self._arrived.clear()
                await self._arrived.wait()
        return await asyncio.wait_for(find(), timeout)


INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "h", "version": "1"}}}
PAY = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "pay", "arguments": {"amount": 5000}}}
LISTING = {"tools": [{"name": "pay", "inputSchema": {"type": "object", "properties": {"amount": {"type": "integer"}}}}]}


def _relaying(*caveats):
    """A gateway holding a token with ``caveats`` (no schema checks), relaying two scripted peers: (task,
    host, upstream)."""
    keyring, agent = Keyring.generate(), AgentKey.generate()
    token = mint(keyring, Holder(agent.public_key), *caveats, location="bank")
    gateway = Gateway(Verifier(keyring, location="bank"), credentials=Credentials(token, agent), check_schemas=False)
    host, upstream = Peer(), Peer()
    return asyncio.ensure_future(gateway.run(host, upstream)), host, upstream


async def _gateway_asking_for_approval():
    """A gateway holding a token whose pay calls need Alice's approval, relaying a host that elicits; returns
    (gateway task, host, upstream, the approval question the host was sent)."""
    keyring, agent, alice = Keyring.generate(), AgentKey.generate(), AgentKey.generate()
    token = mint(keyring, Holder(agent.public_key), Tools("pay"), Approval(alice.public_key), location="bank")
    gateway = Gateway(Verifier(keyring, location="bank"), credentials=Credentials(token, agent), approver=alice)
    host, upstream = Peer(), Peer()
    task = asyncio.ensure_future(gateway.run(host, upstream))
    await host.say(INITIALIZE)
    await upstream.next_sent(lambda m: m.get("method") == "initialize")
    await upstream.say({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18", "capabilities": {}}})
    await host.say(PAY)
    fetch = await upstream.next_sent(lambda m: m.get("method") == "tools/list")  # the schema check asks first
    await upstream.say({"jsonrpc": "2.0", "id": fetch["id"], "result": LISTING})
    question = await host.next_sent(lambda m: m.get("method") == "elicitation/create")
    return task, host, upstream, question


def test_an_upstream_cannot_answer_the_approval_question_in_the_persons_name():
    """A malicious upstream sends the host a harmless-looking question under the id of the gateway's pending
    approval question: the host's yes to it must not approve the payment."""
    async def attack():
        task, host, upstream, question = await _gateway_asking_for_approval()
        assert "pay" in question["params"]["message"] and '"amount": 5000' in question["params"]["message"]
        assert question["id"] not in ("capkit-gateway-1", "capkit-gateway-2")  # not guessable
        decoy = {"jsonrpc": "2.0", "id": question["id"], "method": "elicitation/create",
                 "params": {"mode": "form", "message": "Continue?", "requestedSchema": {
                     "type": "object", "properties": {"approve": {"type": "boolean"}}}}}
        await upstream.say(decoy)
        refused = await upstream.next_sent(lambda m: m.get("id") == question["id"] and "error" in m)
        assert "in use by the gateway" in refused["error"]["message"]
        assert [m for m in host.sent if m.get("params", {}).get("message") == "Continue?"] == []
        # the person declines the real question: the payment is denied and never reaches the upstream
        await host.say({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "decline"}})
        answer = await host.next_sent(lambda m: m.get("id") == 7)
        assert answer["result"]["isError"] and "declined" in answer["result"]["content"][0]["text"]
        assert not [m for m in upstream.sent if m.get("method") == "tools/call"]
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


def test_a_host_cannot_answer_the_gateways_own_upstream_requests():
    """A host request under the id of the gateway's own pending request to the upstream is refused, so the
    upstream's answer to it cannot be taken for the host's (or the reverse)."""
    async def attack():
        task, host, upstream, question = await _gateway_asking_for_approval()
        await host.say({"jsonrpc": "2.0", "id": question["id"], "method": "tools/list"})
        refused = await host.next_sent(lambda m: m.get("id") == question["id"] and "error" in m)
        assert "in use by the gateway" in refused["error"]["message"]
        # the person approves the real question: the payment runs, once, exactly as shown
        await host.say({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept",
                                                                           "content": {"approve": True}}})
        forwarded = await upstream.next_sent(lambda m: m.get("method") == "tools/call")
        assert forwarded["params"] == {"name": "pay", "arguments": {"amount": 5000}}
        await upstream.say({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "paid"}]}})
        answer = await host.next_sent(lambda m: m.get("id") == 7)
        assert answer["result"]["content"][0]["text"] == "paid"
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


def test_two_requests_in_flight_under_one_id_cannot_unfilter_a_listing():
    """The host lists tools and, under the same id, calls one: the upstream's full listing must not reach the
    host unfiltered by being taken for the call's answer."""
    async def attack():
        task, host, upstream = _relaying(Tools("pay"))
        await host.say({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        await upstream.next_sent(lambda m: m.get("method") == "tools/list")
        await host.say({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "pay",
                                                                                      "arguments": {}}})
        refused = await host.next_sent(lambda m: m.get("id") == 5 and "error" in m)
        assert "still in flight" in refused["error"]["message"]
        assert not [m for m in upstream.sent if m.get("method") == "tools/call"]
        await upstream.say({"jsonrpc": "2.0", "id": 5, "result": {"tools": [{"name": "pay", "inputSchema": {}},
                                                                            {"name": "delete_all", "inputSchema": {}}]}})
        listed = await host.next_sent(lambda m: m.get("id") == 5 and "result" in m)
        assert [t["name"] for t in listed["result"]["tools"]] == ["pay"]
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


def test_a_second_request_under_the_id_of_a_call_awaiting_approval_is_refused():
    async def attack():
        task, host, upstream, question = await _gateway_asking_for_approval()
        await host.say({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "pay", "arguments": {"amount": 1}}})
        refused = await host.next_sent(lambda m: m.get("id") == 7 and "error" in m)
        assert "still in flight" in refused["error"]["message"]
        await host.say({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept",
                                                                           "content": {"approve": True}}})
        forwarded = await upstream.next_sent(lambda m: m.get("method") == "tools/call")
        assert forwarded["params"]["arguments"] == {"amount": 5000}  # the approved call, not the other
        assert len([m for m in upstream.sent if m.get("method") == "tools/call"]) == 1
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


def test_a_call_the_host_cancelled_while_awaiting_approval_never_runs():
    async def attack():
        task, host, upstream, question = await _gateway_asking_for_approval()
        await host.say({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}})
        await asyncio.sleep(0.05)
        await host.say({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept",
                                                                           "content": {"approve": True}}})
        await asyncio.sleep(0.1)
        assert not [m for m in upstream.sent if m.get("method") in ("tools/call", "notifications/cancelled")]
        assert not [m for m in upstream.sent if m.get("id") == question["id"]]  # the late answer goes nowhere
        assert not [m for m in host.sent if m.get("id") == 7]  # a cancelled request gets no answer
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


def test_a_tool_call_smuggled_as_a_notification_is_never_forwarded():
    """JSON-RPC without an id is a notification: the gateway decides requests, so a "notification" named
    tools/call (which some servers would run anyway) must not slip past it undecided."""
    async def attack():
        task, host, upstream = _relaying(Tools("read"))
        for smuggled in ({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "delete_all"}},
                         {"jsonrpc": "2.0", "method": "resources/read", "params": {"uri": "file:///etc/shadow"}},
                         {"jsonrpc": "2.0", "method": {"tools/call": 1}, "id": 3}):
            await host.say(smuggled)
        await host.say({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1,
                                                                                         "progress": 1}})
        await upstream.next_sent(lambda m: m.get("method") == "notifications/progress")  # real ones pass
        assert [m.get("method") for m in upstream.sent] == ["notifications/progress"]
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(attack())


# ------------------------------------------------------------ any messages, from either side

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from capkit.caveats import Max  # noqa: E402

_ids = st.one_of(st.integers(-3, 3), st.sampled_from(["1", "capkit-gateway-1", "x"]), st.none(), st.booleans(),
                 st.lists(st.integers(), max_size=1))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=8),
                     st.floats(allow_nan=False, allow_infinity=False))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=8)
_methods = st.sampled_from(["tools/call", "tools/list", "resources/read", "initialize", "ping", "prompts/get",
                            "notifications/cancelled", "elicitation/create", "sampling/createMessage", "x/y"])
_params = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["pay", "delete_all", ""]),
                           "arguments": st.one_of(st.dictionaries(st.sampled_from(["amount", "to"]), _values,
                                                                  max_size=2), _values)}),
    st.dictionaries(st.sampled_from(["requestId", "uri", "_meta", "cursor", "name"]), _values, max_size=3),
    _values)
_messages = st.one_of(
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": _ids, "method": _methods}, optional={"params": _params}),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": _ids},
                          optional={"result": _values, "error": _values}),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "method": _methods}, optional={"params": _params}),
    st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params", "result"]), _values, max_size=4),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["host", "upstream"]), _messages), max_size=12))
def test_any_messages_from_either_side_never_stop_the_relay_or_pass_an_unauthorized_call(script):
    """Whatever the host and the upstream send, in any order, the gateway keeps relaying and the upstream only
    ever receives tools/call requests that the token allows (pay, amount at most 100)."""
    async def run():
        task, host, upstream = _relaying(Tools("pay"), Max("amount", 100))
        for side, message in script:
            await (host if side == "host" else upstream).say(message)
        await host.say({"jsonrpc": "2.0", "id": "probe", "method": "ping"})  # still relaying?
        await upstream.next_sent(lambda m: m.get("id") == "probe")
        assert not task.done()
        for sent in upstream.sent:
            if sent.get("method") == "tools/call":
                params = sent["params"]
                assert params["name"] == "pay" and isinstance(params.get("arguments", {}), dict)
                amount = params.get("arguments", {}).get("amount")
                assert amount is None or (isinstance(amount, (int, float)) and not isinstance(amount, bool)
                                          and amount <= 100), params
        await host.say(None)
        await asyncio.wait_for(task, 5)

    asyncio.run(run())


# ------------------------------------------------------------ an upstream's schemas, hostile or broken

from capkit.integrations._schema import type_problem  # noqa: E402

_schema_keys = st.sampled_from(["type", "anyOf", "oneOf", "$ref", "items", "properties", "additionalProperties",
                                "enum", "const", "$defs"])
_schemas = st.recursive(
    st.one_of(_scalars, st.sampled_from(["#/$defs/a", "string", "integer", "array", "object"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_schema_keys, inner, max_size=4), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(_values, _schemas)
def test_any_schema_is_checked_or_refused_never_crashes(value, schema):
    problem = type_problem(value, schema)
    assert problem is None or isinstance(problem, str)


def test_a_schema_that_would_take_for_ever_is_refused_quickly():
    """anyOf over recursive $refs multiplies the work at every level: 6 options, 16 levels deep, are 6^16
    checks unless the work is bounded."""
    import time

    explosive = {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}] * 6}},
                 "properties": {"x": {"$ref": "#/$defs/a"}}}
    started = time.monotonic()
    assert type_problem({"x": 1}, explosive) == "the tool's schema is too complex to check these arguments against"
    assert time.monotonic() - started < 5
    broken = {"properties": ["x"], "$defs": ["a"]}
    assert type_problem({"x": 1}, broken) == "the arguments: the schema's properties cannot be read"
    assert type_problem({"x": 1}, {"properties": {"x": {"$ref": "#/$defs/a"}}, "$defs": ["a"]}) is not None
